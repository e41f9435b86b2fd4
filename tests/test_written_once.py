"""The helpers written once for every resumable stage: the resumable-rows file, the safe label-to-path
rule and the progress bar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturellm.jsonio import ResumableRows, read_jsonl, write_jsonl
from culturellm.names import is_safe_name, path_part


def test_rows_resume_append_and_finish_once(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"model": "a", "task": "t", "v": 1}, {"model": "b", "task": "t", "v": 2}])
    with open(path, "a") as f:
        f.write('{"model": "c", "ta')  # a kill mid-append
    rows = ResumableRows(path)
    assert [r["model"] for r in rows.previous] == ["a", "b"]  # the torn line is dropped
    rows.append([{"model": "b", "task": "t", "v": 3}])  # not glued to the torn line
    assert [r["v"] for r in read_jsonl(path)] == [1, 2, 3]
    rows.finish([{"model": "b", "task": "t", "v": 3, "resumed": True}], ("model", "task"), drop=("resumed",))
    assert read_jsonl(path) == [{"model": "b", "task": "t", "v": 3}, {"model": "a", "task": "t", "v": 1}]
    again = ResumableRows(path)
    again.finish([{"model": "c", "task": "t", "v": 4}], ("model", "task"), earlier_first=True)
    assert [r["model"] for r in read_jsonl(path)] == ["b", "a", "c"]


def test_a_missing_file_has_no_rows_and_appends_create_it(tmp_path: Path) -> None:
    rows = ResumableRows(tmp_path / "sub" / "rows.jsonl")
    assert rows.previous == []
    rows.append([{"x": 1}])
    assert json.loads((tmp_path / "sub" / "rows.jsonl").read_text()) == {"x": 1}


@pytest.mark.parametrize(
    ("label", "part"),
    [
        ("hf:/models/arabic", "hf_models_arabic"),
        ("openai:gpt-4o-mini", "openai_gpt-4o-mini"),
        (".hidden", "_.hidden"),
        ("..", "_.."),
        ("///", "model"),
        ("x" * 300, "x" * 100),
        ("base+culture-prompt", "base+culture-prompt"),
    ],
)
def test_any_label_becomes_one_safe_path_part(label: str, part: str) -> None:
    assert path_part(label) == part
    assert "/" not in part and not part.startswith(".")


def test_path_part_keeps_safe_names() -> None:
    for name in ("arabic", "culturellm-one", "spam_detect", "v1.2"):
        assert is_safe_name(name) and path_part(name) == name


def test_one_progress_bar() -> None:
    from rich.console import Console

    from culturellm.progress import progress_bar, progress_task

    con = Console(file=__import__("io").StringIO(), force_terminal=True, width=120)
    with progress_bar(console=con, transient=False, extra="loss {task.fields[loss]}") as p:
        task = p.add_task("fine-tuning", total=4, loss="0.5")
        p.advance(task, 4)
    out = con.file.getvalue()
    assert "fine-tuning" in out and "4/4" in out and "loss 0.5" in out
    with progress_task(None, 3, "silent") as advance:
        advance(3)  # no bar, no error
    off = Console(file=__import__("io").StringIO(), force_terminal=True, width=120)
    with progress_bar(False, console=off) as p:
        p.advance(p.add_task("hidden", total=1))
    assert off.file.getvalue() == ""
