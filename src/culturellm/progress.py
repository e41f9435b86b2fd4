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
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second ("12.3 rows/s"), from rich's recent-speed estimate."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {self.unit}/s")


def progress_bar(
    enabled: bool = True,
    *,
    console: Console | None = None,
    transient: bool = True,
    percent: bool = False,
    extra: str | None = None,
    rate: str | None = None,
) -> Progress:
    """A progress display: description, bar, done/total (`percent`: a percentage), the column `extra`
    when given (a rich text template, e.g. "loss {task.fields[loss]}"), `rate` per second when given
    (its unit, e.g. "rows"), elapsed and remaining time.
    Draws nothing when not `enabled`; `transient`: the bars vanish when done."""
    columns: list[Any] = [
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn() if percent else MofNCompleteColumn(),
    ]
    if extra:
        columns.append(TextColumn(extra))
    if rate:
        columns.append(RateColumn(rate))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=console, disable=not enabled, transient=transient)


@contextmanager
def progress_task(progress: Any, total: int, description: str, *, rate: str | None = None) -> Iterator[Any]:
    """Yield an `advance(n)` callable; progress may be None or False (silent), True (an own bar, with
    `rate`: its items per second) or a rich Progress to add the task to."""
    if not progress:
        yield lambda n=1: None
        return
    if progress is True:
        with progress_bar(transient=False, rate=rate) as p:
            task = p.add_task(description, total=total)
            yield lambda n=1: p.advance(task, n)
        return
    task = progress.add_task(description, total=total)
    yield lambda n=1: progress.advance(task, n)
