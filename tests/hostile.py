"""Helpers for the hostile-input and fuzz tests: run the real CLI in-process, snapshot a directory tree
to prove nothing outside an output root was written and no pre-existing file was changed.

`run_cli` goes through `culturellm.cli.main`, i.e. the one error printer, exactly as the console
script does."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> CliResult:
    """`culturellm ARGS` in this process, through main() (its exit code, stdout, stderr)."""
    from culturellm.cli import main

    monkeypatch.setattr(sys, "argv", ["culturellm", *args])
    capsys.readouterr()
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def assert_clear_error(res: CliResult, *needles: str) -> str:
    """Exit code 2, exactly one `error: ...` line on stderr (warnings aside), no traceback; returns it."""
    assert res.code == 2, (res.code, res.err[-2000:])
    assert "Traceback" not in res.err, res.err
    errors = [line for line in res.err_lines if line.startswith("error: ")]
    assert len(errors) == 1, res.err
    others = [line for line in res.err_lines if not line.startswith(("error: ", "warning: "))]
    assert not others, res.err
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root (symlinks not followed)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def changes(before: dict[str, str], after: dict[str, str], allowed: tuple[str, ...] = ()) -> dict:
    """Files created outside the allowed prefixes, and pre-existing files changed or deleted."""
    created = [p for p in after if p not in before and not p.startswith(allowed)]
    changed = [p for p in before if after.get(p) != before[p]]
    return {"created_outside": created, "changed": changed}
