"""Trainer callbacks: a rich progress bar, a loss log (DIR/loss.jsonl) and a NaN guard."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from transformers import TrainerCallback

from culturellm.errors import CultureLLMError
from culturellm.jsonio import append_jsonl, iter_jsonl, write_jsonl
from culturellm.progress import progress_bar


class TrainingDivergedError(CultureLLMError):
    """The training loss became NaN or infinite."""


class RichProgressCallback(TrainerCallback):
    """A rich progress bar over optimiser steps, showing the latest loss (main process only)."""

    def __init__(self, console: Console | None = None, description: str = "fine-tuning"):
        self.console = console or Console(stderr=True)
        self.description = description
        self._progress: Progress | None = None
        self._task: Any = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self._progress = progress_bar(console=self.console, transient=False, extra="loss {task.fields[loss]}")
        self._progress.start()
        self._task = self._progress.add_task(
            f"[bold]{self.description}", total=state.max_steps, completed=state.global_step, loss="-"
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._progress is not None and logs and "loss" in logs:
            self._progress.update(self._task, loss=f"{logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)
            self._progress.stop()
            self._progress = None


class LossLogCallback(TrainerCallback):
    """Appends every training log (step, epoch, loss, learning rate, ...) to a JSONL file, flushed.

    On resume, rows logged after the checkpoint's step are dropped first, so the file never holds
    the same step twice.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not self.path.exists():
            return
        rows = iter_jsonl(self.path, tolerate_torn_tail=True)
        write_jsonl(self.path, [r for r in rows if r.get("step", 0) <= state.global_step])

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row: dict[str, Any] = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        for k, v in logs.items():
            row[k] = v if isinstance(v, int | str) else (float(v) if _is_number(v) else str(v))
        append_jsonl(self.path, [row])


def _is_number(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


class NanGuardCallback(TrainerCallback):
    """Stops training (without saving) as soon as a logged loss is NaN or infinite.

    The caller checks `diverged_at` after `trainer.train()` and raises TrainingDivergedError; the
    last good checkpoint stays on disk. Needs `logging_nan_inf_filter=False` in the training
    arguments (otherwise the Trainer replaces NaN losses before they are logged).
    """

    def __init__(self) -> None:
        self.diverged_at: int | None = None
        self.bad_value: float | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = state.global_step
            self.bad_value = float(loss)
            control.should_training_stop = True
            control.should_save = False

    def check(self, lr: float) -> None:
        if self.diverged_at is not None:
            raise TrainingDivergedError(
                f"training diverged: loss became {self.bad_value} at step {self.diverged_at} "
                f"(learning rate {lr:g}; try a lower --lr)"
            )
