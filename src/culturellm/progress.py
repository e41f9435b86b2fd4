"""The one rich progress bar of culturellm (evaluation, augmentation, WVS import, fine-tuning)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    enabled: bool = True,
    *,
    console: Console | None = None,
    transient: bool = True,
    percent: bool = False,
    extra: str | None = None,
) -> Progress:
    """A progress display: description, bar, done/total (`percent`: a percentage), the column `extra`
    when given (a rich text template, e.g. "loss {task.fields[loss]}"), elapsed and remaining time.
    Draws nothing when not `enabled`; `transient`: the bars vanish when done."""
    columns: list[Any] = [
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn() if percent else MofNCompleteColumn(),
    ]
    if extra:
        columns.append(TextColumn(extra))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=console, disable=not enabled, transient=transient)


@contextmanager
def progress_task(progress: Any, total: int, description: str) -> Iterator[Any]:
    """Yield an `advance(n)` callable; progress may be None or False (silent), True (an own bar) or a
    rich Progress to add the task to."""
    if not progress:
        yield lambda n=1: None
        return
    if progress is True:
        with progress_bar(transient=False) as p:
            task = p.add_task(description, total=total)
            yield lambda n=1: p.advance(task, n)
        return
    task = progress.add_task(description, total=total)
    yield lambda n=1: progress.advance(task, n)
