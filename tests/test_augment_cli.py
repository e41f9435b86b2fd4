"""`culturellm augment` user errors: one line on stderr, exit code 2, before any model is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--t1", "3"], "--t1: Input should be less than or equal to 1"),
        (["--synonym-requests", "word"], "--synonym-requests"),
        (["--question", "Q1"], "unknown question id(s) Q1"),
    ],
)
def test_augment_cli_errors(tmp_path, args, needle):
    p = subprocess.run(
        [sys.executable, "-m", "culturellm.cli", "augment", "--out", str(tmp_path / "o"), *args],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "o" / "augmented.jsonl").exists()
