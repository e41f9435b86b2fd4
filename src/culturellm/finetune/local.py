"""Local LoRA fine-tuning with PEFT through TRL's SFTTrainer.

`train_local` turns validated chat records into TRL prompt/completion rows (answer-only loss),
trains a LoRA adapter, checkpoints every `save_steps` into DIR/checkpoints (resumable), and writes
the adapter (DIR/adapter_config.json, DIR/adapter_model.safetensors), the tokenizer and, with
`merge`, a merged full model in DIR/merged. The same code runs under `accelerate launch` /
`torchrun` for several GPUs or nodes: the HF Trainer does the distribution, only the main process
writes files.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from culturellm.errors import CultureLLMError
from culturellm.finetune.callbacks import LossLogCallback, NanGuardCallback, RichProgressCallback
from culturellm.finetune.config import FinetuneConfig
from culturellm.finetune.data import TrainingRecord, to_prompt_completion

CHECKPOINTS = "checkpoints"


def load_base(spec: str) -> tuple[Any, Any]:
    """The base model and tokenizer for a model spec, as raw HF objects (fp32 on CPU).

    A culturellm.json of kind "merged" is accepted as a base; a PEFT adapter or a remote model
    is not (one clear error line).
    """
    from culturellm.modelref import find_modelref, read_modelref

    if spec.startswith("openai:"):
        raise CultureLLMError(
            f"base '{spec}' is a remote model; fine-tune it with --backend openai --base {spec[7:]}"
        )
    if not spec.startswith("hf:"):
        ref_file = find_modelref(spec)
        if ref_file is not None:
            ref = read_modelref(ref_file)
            if ref.kind == "merged":
                spec = f"hf:{ref.resolve_path(ref_file)}"
            elif ref.kind == "peft-adapter":
                raise CultureLLMError(
                    f"base '{spec}' is a LoRA adapter on '{ref.base}': fine-tune '{ref.base}' instead, "
                    f"or merge the adapter first (--merge) and use DIR/merged as the base"
                )
            else:
                raise CultureLLMError(f"base '{spec}' is a remote {ref.kind} model; use --backend openai")
    from culturellm.llm.local import load_local

    model, tokenizer = load_local(spec)  # fp32 weights; mixed precision comes from the training args
    if hasattr(model, "peft_config"):  # a plain PEFT adapter directory
        raise CultureLLMError(
            f"base '{spec}' is a LoRA adapter: fine-tune its base model instead, or merge it first (--merge)"
        )
    _forget_gguf_quantization(model)
    return model, tokenizer


def _forget_gguf_quantization(model: Any) -> None:
    """A model loaded straight from a GGUF file is de-quantised to float on load, but transformers
    still marks it as quantised (and the Trainer refuses to train it). Its weights are plain tensors."""
    q = getattr(model, "hf_quantizer", None)
    method = str(getattr(getattr(q, "quantization_config", None), "quant_method", "")).lower()
    if q is not None and "gguf" in method:
        model.hf_quantizer = None
        if "is_quantized" in vars(model):
            model.is_quantized = False
        if getattr(model.config, "quantization_config", None) is not None:
            del model.config.quantization_config


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete DIR/checkpoints/checkpoint-N (one holding trainer_state.json)."""
    d = out / CHECKPOINTS
    if not d.is_dir():
        return None
    cks = [
        p
        for p in d.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(cks, key=lambda p: int(p.name.split("-")[-1])) if cks else None


def _precision(config: FinetuneConfig) -> dict[str, bool]:
    import torch

    if config.dtype == "bfloat16":
        return {"bf16": True, "fp16": False}
    if config.dtype == "float16":
        return {"bf16": False, "fp16": True}
    if config.dtype == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return {"bf16": True, "fp16": False}
    return {"bf16": False, "fp16": False}


def build_trainer(
    model: Any,
    tokenizer: Any,
    records: Sequence[TrainingRecord],
    out: Path,
    config: FinetuneConfig,
    callbacks: Sequence[Any] = (),
) -> Any:
    """An SFTTrainer that trains a LoRA adapter on the records' answers only."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # labels are padded with -100 by TRL's collator
    rows = to_prompt_completion(records, tokenizer)
    dataset = Dataset.from_list(rows)
    args = SFTConfig(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        report_to="none",
        disable_tqdm=True,
        max_length=config.max_length,
        completion_only_loss=True,
        activation_checkpointing=config.gradient_checkpointing,
        dataloader_num_workers=0,
        dataloader_pin_memory=_has_accelerator(),
        **_precision(config),
    )
    peft_config = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    _quiet_libraries()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )
    # Our rich progress bar and loss log replace the Trainer's stdout printer and tqdm bar.
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available()


def _quiet_libraries() -> None:
    """No tqdm bars from datasets' map() and transformers' weight loading inside our progress output."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def train_local(
    records: Sequence[TrainingRecord],
    base: str,
    out: Path,
    config: FinetuneConfig,
    *,
    resume_from: Path | None = None,
    progress: bool = True,
    console: Console | None = None,
    model_and_tokenizer: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter; write it (and the tokenizer) into `out`. Returns a training summary.

    `model_and_tokenizer` skips loading `base` (the caller already holds it); `resume_from` is a
    checkpoint directory to continue from.
    """
    console = console or Console(stderr=True)
    model, tokenizer = model_and_tokenizer or load_base(base)
    nan_guard = NanGuardCallback()
    callbacks: list[Any] = [LossLogCallback(out / "loss.jsonl"), nan_guard]
    if progress:
        callbacks.append(RichProgressCallback(console, description=f"fine-tuning {base}"))
    trainer = build_trainer(model, tokenizer, records, out, config, callbacks)
    t0 = time.monotonic()
    try:
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except (RuntimeError, ValueError) as e:
        if resume_from is not None and ("size mismatch" in str(e) or "Missing key" in str(e)):
            raise CultureLLMError(
                f"adapter/base mismatch: checkpoint {resume_from} does not fit base '{base}' "
                f"({_first_line(e)})"
            ) from None
        raise
    elapsed = time.monotonic() - t0
    nan_guard.check(config.lr)

    state = trainer.state
    losses = [h for h in state.log_history if "loss" in h]
    n_tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    summary: dict[str, Any] = {
        "base": base,
        "examples": len(records),
        "tokens_per_epoch": n_tokens,
        "steps": state.global_step,
        "epochs": round(float(state.epoch or 0.0), 4),
        "final_loss": losses[-1]["loss"] if losses else None,
        "first_loss": losses[0]["loss"] if losses else None,
        "train_loss": result.training_loss if math.isfinite(result.training_loss) else None,
        "final_token_accuracy": losses[-1].get("mean_token_accuracy") if losses else None,
        "runtime_s": round(elapsed, 2),
        "resumed_from": resume_from.name if resume_from else None,
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "total_params": sum(p.numel() for p in trainer.model.parameters()),
        "world_size": trainer.args.world_size,
    }
    if trainer.is_world_process_zero():
        trainer.model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        if config.merge:
            merged = trainer.model.merge_and_unload()
            merged.save_pretrained(out / "merged")
            tokenizer.save_pretrained(out / "merged")
            summary["merged"] = "merged"
        if not config.keep_checkpoints:
            shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    _wait_for_everyone()
    return summary


def _wait_for_everyone() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else type(e).__name__
