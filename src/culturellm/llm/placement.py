"""Where and in what precision a local model runs: the `--device`, `--dtype` and `--batch-size`
options shared by every command that loads one (evaluate, align, chat, serve, run; finetune has its
own training equivalents). Remote models ignore them. They travel in a `ModelAccess`
(culturellm.llm.access), never as a process-wide default."""

from __future__ import annotations

from typing import Any, Literal

Device = Literal["auto", "cpu", "cuda", "mps"]
Dtype = Literal["auto", "float32", "bfloat16", "float16"]

DEVICE_HELP = "where local models run: auto (the accelerator when there is one), cpu, cuda, mps"
DTYPE_HELP = (
    "precision of local models: auto (bf16 on a GPU that has it; on a CPU fp32 for scoring and bf16 "
    "mixed-precision training where the CPU has native bf16), float32, bfloat16..."
)
BATCH_HELP = "prompts per forward pass of a local model (default: from free GPU memory; 16 on a CPU)"


def load_options(
    device: str | None = None, dtype: str | None = None, batch_size: int | None = None
) -> dict[str, Any]:
    """The load options given (None: not given, the loader's default)."""
    given = {"device": device, "dtype": dtype, "batch_size": batch_size}
    return {k: v for k, v in given.items() if v is not None}
