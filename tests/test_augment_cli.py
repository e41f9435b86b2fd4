"""`culturellm augment` user errors: one line on stderr, exit code 2, before any model is loaded."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--t1", "3"], "--t1: Input should be less than or equal to 1"),
        (["--synonym-requests", "word"], "--synonym-requests"),
        (["--question", "Q1"], "unknown question id(s) Q1"),
    ],
)
def test_augment_cli_errors(cli, tmp_path, args, needle):
    res = cli("augment", "--out", str(tmp_path / "o"), *args)
    assert res.code == 2, res.err
    assert needle in res.err and "Traceback" not in res.err
    assert not (tmp_path / "o" / "augmented.jsonl").exists()
