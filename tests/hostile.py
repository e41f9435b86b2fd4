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

    def __iter__(self):  # code, out, err = cli(...)
        return iter((self.code, self.out, self.err))

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
    """Exit code 2, exactly one `error: ...` line on stderr, the last one, no traceback; returns it."""
    assert res.code == 2, (res.code, res.err[-2000:])
    assert "Traceback" not in res.err, res.err
    errors = [line for line in res.err_lines if line.startswith("error: ")]
    assert len(errors) == 1 and res.err_lines[-1] == errors[0], res.err  # progress lines may precede
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


def user_tasks(home: Path, **fields: object) -> Path:
    """`HOME/data/tasks.toml` with one user task `arabic/mine` (an offensive-detection file
    `Arabic/mine.jsonl`), its fields overridden by `fields`: the path written."""
    import tomli_w

    entry = {
        "name": "arabic/mine",
        "culture": "arabic",
        "type": "offensive",
        "path": "Arabic/mine.jsonl",
        "text_fields": ["tweet"],
        "labels": {"labels": {"OFF": "offensive", "NOT": "not offensive"}},
    } | fields
    path = home / "data" / "tasks.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps({"tasks": [entry]}), encoding="utf-8")
    return path


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


# --- fuzz bookkeeping: tests/test_fuzz.py (and HTTP-reply fault cases) report through this ---------


@dataclass
class FuzzStats:
    """Counts of one fuzz suite run, printed at the end of tests/test_fuzz.py."""

    tried: int = 0
    ok: int = 0
    clear_errors: int = 0
    crashes: int = 0
    written_outside: int = 0
    preexisting_changed: int = 0

    def line(self) -> str:
        return (
            f"fuzz: {self.tried} inputs tried, {self.ok} accepted, {self.clear_errors} clear errors, "
            f"{self.crashes} crashes, {self.written_outside} files written outside roots, "
            f"{self.preexisting_changed} pre-existing files changed"
        )


STATS = FuzzStats()


def check_case(
    res: CliResult,
    before: dict[str, str],
    after: dict[str, str],
    allowed: tuple[str, ...],
    protected: tuple[str, ...] = (),
    stats: FuzzStats = STATS,
) -> None:
    """Record and assert one fuzz case of a command run inside a sandbox directory.

    res: the CLI result; before/after: `snapshot` of the sandbox around the command; allowed: path
    prefixes (relative to the sandbox) where the command may create files (its output root, the user
    data/cache home); protected: pre-existing files that must not change even inside allowed roots
    (inputs, a user's own files); stats: where the case is counted (a module with its own counts line).
    Exit code must be 0 or 2; a 2 must be exactly one `error:` line."""
    stats.tried += 1
    diff = changes(before, after, allowed)
    changed = [p for p in diff["changed"] if p in protected or not p.startswith(allowed)]
    stats.written_outside += len(diff["created_outside"])
    stats.preexisting_changed += len(changed)
    crashed = res.code not in (0, 2) or "Traceback" in res.err
    if res.code == 2:
        errors = [line for line in res.err_lines if line.startswith("error: ")]
        crashed = crashed or len(errors) != 1
        stats.clear_errors += not crashed
    elif res.code == 0:
        stats.ok += not crashed
    stats.crashes += crashed
    assert not crashed, (res.code, res.err[-3000:])
    assert not diff["created_outside"], diff
    assert not changed, diff
