"""Where and in what precision a local model runs: the `--device`, `--dtype` and `--batch-size`
options shared by every command that loads one (evaluate, align, chat, serve, run; finetune has its
own training equivalents). Remote models ignore them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

Device = Literal["auto", "cpu", "cuda", "mps"]
Dtype = Literal["auto", "float32", "bfloat16", "float16"]

DEVICE_HELP = "where local models run: auto (the accelerator when there is one), cpu, cuda, mps"
DTYPE_HELP = "precision of local models: auto (bf16 on a GPU that has it, else fp32), float32, bfloat16..."
BATCH_HELP = "prompts per forward pass of a local model (default: from free GPU memory; 16 on a CPU)"


def load_options(
    device: str | None = None, dtype: str | None = None, batch_size: int | None = None
) -> dict[str, Any]:
    """The load options given (None: not given, the loader's default)."""
    given = {"device": device, "dtype": dtype, "batch_size": batch_size}
    return {k: v for k, v in given.items() if v is not None}


_DEFAULTS: dict[str, Any] = {}


@contextlib.contextmanager
def local_defaults_applied(**options: Any) -> Iterator[None]:
    """Within the block, every local model loaded without its own device, dtype or batch size gets
    these (`--device`/`--dtype`/`--batch-size` of evaluate, align and run apply to all the models a
    command loads, its stages included). None values are not set; the previous defaults come back."""
    saved = dict(_DEFAULTS)
    _DEFAULTS.update({k: v for k, v in options.items() if v is not None})
    try:
        yield
    finally:
        _DEFAULTS.clear()
        _DEFAULTS.update(saved)


def local_defaults() -> dict[str, Any]:
    """The defaults in force (see `local_defaults_applied`)."""
    return dict(_DEFAULTS)
