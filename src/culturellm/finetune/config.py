"""Fine-tuning configuration: one pydantic model, named presets, and a fingerprint for resuming.

Presets:

- ``cpu-small`` (default): measured for the bundled SmolLM2-135M-Instruct on 2 CPU cores. The
  model only learns survey answers with a high learning rate (2e-3 and above; at 5e-4 the answer
  loss stays at chance, ln 4, for three epochs), so this preset uses lr 3e-3, 3 epochs, r 16 on all
  linear projections, batch 8. See docs/finetuning.md for the measurements.
- ``paper``: the CultureLLM paper's settings for large models, as in its reference fine-tuning
  script for Llama-2-70B (LoRA r 64, alpha 16, dropout 0.1, lr 2e-4 constant after 3 % warm-up,
  6 epochs, batch 4, weight decay 0.001, gradient clipping 0.3, paged AdamW).
- ``paper-qlora``: ``paper`` on a 4-bit NF4 base (double quantisation, bf16 compute): QLoRA, how
  the paper trained Llama-2-70B.
- ``smoke``: a few steps, for checking that a set-up works end to end.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from culturellm.errors import UnknownNameError
from culturellm.hashing import stable_hash
from culturellm.redact import check_url
from culturellm.settings import Flag, StageConfig, Unkeyed, comma_list, flags, resolve

# Marks the fields that do not change the trained model: outside `fingerprint()`.
RUN_CONTROL = Unkeyed("run control: does not change the trained weights")

Quantize = Literal["none", "4bit", "8bit"]
ReportTo = Literal["none", "tensorboard", "wandb"]


PAPER: dict[str, Any] = {
    "epochs": 6.0,
    "lr": 2e-4,
    "batch_size": 4,
    "lora_r": 64,
    "lora_alpha": 16,
    "lora_dropout": 0.1,
    "target_modules": ["q_proj", "v_proj"],
    "warmup_ratio": 0.03,
    "lr_scheduler": "constant_with_warmup",
    "weight_decay": 0.001,
    "max_grad_norm": 0.3,
    "optim": "adamw_torch",  # the script's paged AdamW needs bitsandbytes: paper-qlora uses it
}

PRESETS: dict[str, dict[str, Any]] = {
    # Bundled SmolLM2-135M on a laptop CPU: high lr is required (see module docstring).
    "cpu-small": {
        "epochs": 3.0,
        "lr": 3e-3,
        "batch_size": 8,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "warmup_ratio": 0.03,
    },
    # The CultureLLM paper (Li et al., 2024) for 7B+ models: the settings of its reference
    # fine-tuning script (llama_finetune.py, Llama-2-70B; LoRA on PEFT's default Llama targets).
    "paper": PAPER,
    # The same on a 4-bit NF4 base with double quantisation and bf16 compute (QLoRA).
    "paper-qlora": {
        **PAPER,
        "quantize": "4bit",
        "quant_type": "nf4",
        "double_quant": True,
        "dtype": "bfloat16",
        "optim": "paged_adamw_32bit",
    },
    # A handful of steps: checks the whole path (load, train, save, model reference).
    "smoke": {
        "epochs": 1.0,
        "lr": 3e-3,
        "batch_size": 4,
        "max_steps": 5,
        "lora_r": 8,
        "lora_alpha": 16,
    },
}

Preset = Literal["cpu-small", "paper", "paper-qlora", "smoke"]
FinetuneDtype = Literal["auto", "float32", "bfloat16", "float16"]
FinetuneDevice = Literal["auto", "cpu", "cuda", "mps"]


def _target_modules(text: str) -> str | list[str]:
    """--target-modules: all-linear, or module names, comma-separated (one name is a list too: PEFT
    matches a bare string as a pattern for the whole module path)."""
    return text if text.strip() == "all-linear" else comma_list(text)


class FinetuneConfig(StageConfig):
    """Everything that decides what a fine-tuning run produces (and a few things that do not).

    Each field is a flag of `culturellm finetune`. Fields not marked RUN_CONTROL are part of
    `fingerprint()`; a directory that already holds a finished adapter with the same data hash, base
    and fingerprint is not trained again.
    """

    model_config = ConfigDict(validate_assignment=True)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = PRESETS

    preset: Annotated[Preset, RUN_CONTROL] = Field(
        "cpu-small",
        description="where the other defaults come from: cpu-small (bundled model on a CPU), paper, "
        "paper-qlora (4-bit base), smoke",
    )
    backend: str = Field(
        "local",
        description="local (LoRA through TRL + PEFT), openai (the OpenAI fine-tuning API), or a registered "
        "backend (culturellm.finetune.backends)",
    )

    # --- optimisation -------------------------------------------------------------------------
    epochs: float = Field(3.0, gt=0, description="passes over the training set")
    lr: float = Field(3e-3, gt=0, description="peak learning rate (linear decay after warm-up)")
    batch_size: int = Field(8, ge=1, description="examples per optimiser step (per device)")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="fraction of the steps spent warming up")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_length: int = Field(512, ge=8, description="longer examples are truncated (prompt end kept)")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping (global L2 norm)")
    lr_scheduler: Literal["linear", "constant_with_warmup", "cosine"] = Field(
        "linear", description="learning-rate schedule after warm-up"
    )
    optim: str = Field(
        "adamw_torch", description="optimizer name of transformers' Trainer (e.g. paged_adamw_32bit)"
    )
    seed: int = Field(0, description="random seed")

    # --- quantised base (QLoRA; needs bitsandbytes: pip install 'culturellm[qlora]') -------------
    quantize: Quantize = Field("none", description="load the frozen base in 4-bit or 8-bit (bitsandbytes)")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type")
    double_quant: bool = Field(True, description="4-bit: also quantise the quantisation constants")

    # --- LoRA -------------------------------------------------------------------------------------
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (the update is scaled by alpha / r)")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA path")
    target_modules: Annotated[str | list[str], Flag(parse=_target_modules)] = Field(
        "all-linear",
        description="PEFT target modules, comma-separated; all-linear = every linear layer but the head",
    )

    # --- run control (not part of the fingerprint) --------------------------------------------
    save_steps: Annotated[int, RUN_CONTROL] = Field(
        50, ge=1, description="checkpoint every N steps (kept for --resume)"
    )
    save_total_limit: Annotated[int, RUN_CONTROL] = Field(2, ge=1, description="checkpoints kept")
    logging_steps: Annotated[int, RUN_CONTROL] = Field(1, ge=1, description="log every N steps")
    merge: Annotated[bool, RUN_CONTROL] = Field(
        False, description="also write a merged full model to DIR/merged"
    )
    dtype: FinetuneDtype = Field(
        "auto",
        description="training dtype; auto = bf16 on a GPU or CPU that computes it natively, else fp32",
    )
    device: Annotated[FinetuneDevice, RUN_CONTROL] = Field(
        "auto", description="where to train; auto = the accelerator when there is one, else the CPU"
    )
    gradient_checkpointing: Annotated[bool, RUN_CONTROL] = Field(
        False, description="recompute activations in the backward pass (less memory, slower)"
    )
    report_to: Annotated[ReportTo, RUN_CONTROL] = Field(
        "none", description="training tracker: tensorboard (event files in DIR/logs) or wandb"
    )
    keep_checkpoints: Annotated[bool, RUN_CONTROL] = Field(
        False, description="keep DIR/checkpoints after a finished run (for a later --resume)"
    )
    resume: Annotated[bool, RUN_CONTROL] = Field(
        False,
        description="continue from DIR's last checkpoint even if training options changed "
        "(data and base must match); a run with unchanged options resumes without it",
    )

    # --- OpenAI backend ---------------------------------------------------------------------------
    base_url: Annotated[str | None, RUN_CONTROL] = Field(
        None, description="openai backend: OpenAI-compatible base URL (else OPENAI_BASE_URL)"
    )
    price_per_mtok: Annotated[float | None, RUN_CONTROL] = Field(
        None, ge=0, description="openai backend: USD per 1M training tokens (else the built-in table)"
    )
    poll_interval: Annotated[float, RUN_CONTROL] = Field(
        10.0, gt=0, description="openai backend: seconds between job status polls"
    )
    suffix: str | None = Field(None, description="suffix for the fine-tuned model name (OpenAI)")

    @field_validator("optim")
    @classmethod
    def _known_optim(cls, value: str) -> str:
        if value == "adamw_torch":  # the default: no need to import transformers to know it
            return value
        from transformers.training_args import OptimizerNames

        known = [o.value for o in OptimizerNames]
        if value not in known:
            examples = ", ".join(known[:4])
            raise ValueError(f"unknown optimizer (one of transformers' {len(known)}, e.g. {examples})")
        return value

    @field_validator("base_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @classmethod
    def from_preset(cls, name: str = "cpu-small", **overrides: Any) -> FinetuneConfig:
        """A preset with some fields overridden (None values are ignored)."""
        key = name.lower()
        if key not in PRESETS:
            raise UnknownNameError(f"unknown fine-tuning preset '{name}'; known: {', '.join(PRESETS)}")
        return resolve(cls, flags({**overrides, "preset": key}))

    def fingerprint(self) -> str:
        """Hash of the fields that change the trained weights."""
        return stable_hash(self.keyed())
