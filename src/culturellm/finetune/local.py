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
from culturellm.finetune.data import TrainingRecord, has_soft_targets, has_weights, to_prompt_completion
from culturellm.llm.spec import ModelSpec

CHECKPOINTS = "checkpoints"
TB_LOGS = "logs"


def load_base(spec: ModelSpec | str, config: FinetuneConfig | None = None, **options: Any) -> tuple[Any, Any]:
    """The base model and tokenizer for a model spec, as raw HF objects.

    Weights are loaded in float32 and left on the CPU (the Trainer moves them to its device; mixed
    precision comes from the training arguments) unless `options` say otherwise (`dtype`, `device`,
    `device_map`, see `culturellm.llm.loading.load_local`). With `config.quantize` 4bit/8bit they are
    bitsandbytes-quantised on the accelerator of this process (or the CPU). A merged culture model is
    accepted as a base; a PEFT adapter or a remote model is not (one clear error line).
    """
    from culturellm.llm.convert import forget_gguf_quantization
    from culturellm.llm.loading import load_local
    from culturellm.llm.registry import parse_spec

    spec = parse_spec(spec, **{"dtype": "float32", "device": "cpu", **options})
    if not spec.local:
        hint = f"--backend openai --base {spec.name}" if spec.kind == "openai" else "--backend openai"
        raise CultureLLMError(f"base '{spec.text}' is a remote model; fine-tune it with {hint}")
    if spec.adapter is not None:
        base = spec.base.text if spec.base else "its base"
        raise CultureLLMError(
            f"base '{spec.text}' is a LoRA adapter on '{base}': fine-tune '{base}' instead, "
            "or merge the adapter first (--merge) and use DIR/merged as the base"
        )
    quant = quantization_config(config) if config is not None else None
    if quant is None and config is not None and "dtype" not in options:
        spec = spec.with_options(dtype=_base_dtype(config))
    if quant is not None:
        device = _process_device(config.device)
        spec = spec.with_options(
            quantization_config=quant, device_map=None if device is None else {"": device}
        )
    model, tokenizer = load_local(spec)
    forget_gguf_quantization(model)  # a model loaded straight from a GGUF is still marked quantised
    return model, tokenizer


def _base_dtype(config: FinetuneConfig) -> str:
    """The frozen base's weights: the 16-bit training dtype on an accelerator (half the memory; the
    LoRA weights stay fp32), fp32 on the CPU (where 16-bit weights would slow the matmuls down)."""
    p = _precision(config)
    if p["use_cpu"]:
        return "float32"
    return "bfloat16" if p["bf16"] else "float16" if p["fp16"] else "float32"


def _require_bitsandbytes(quantize: str) -> None:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise CultureLLMError(
            f"--quantize {quantize} needs bitsandbytes: pip install 'culturellm[qlora]'"
        ) from None


def compute_dtype(config: FinetuneConfig) -> Any:
    """The dtype mixed-precision training computes in (and a 4-bit base de-quantises to)."""
    import torch

    p = _precision(config)
    return torch.bfloat16 if p["bf16"] else torch.float16 if p["fp16"] else torch.float32


def quantization_config(config: FinetuneConfig) -> Any | None:
    """transformers' BitsAndBytesConfig for `config.quantize` (None for "none").

    4bit: NF4 (or FP4) weights, double quantisation by default, computing in the training dtype;
    the quantised weights are stored in that dtype too when it is 16-bit, so that FSDP can shard them.
    """
    if config.quantize == "none":
        return None
    _require_bitsandbytes(config.quantize)
    from transformers import BitsAndBytesConfig

    if config.quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    dtype = compute_dtype(config)
    import torch

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=config.quant_type,
        bnb_4bit_use_double_quant=config.double_quant,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_quant_storage=dtype if dtype != torch.float32 else torch.uint8,
    )


def _process_device(device: str = "auto") -> Any:
    """Where this process's copy of a quantised model lives: its own GPU under accelerate/torchrun;
    None under FSDP or DeepSpeed, which place (and shard) the weights themselves."""
    import torch

    if _sharding_engine():
        return None
    if _use_cpu(device):
        return "cpu"
    if torch.cuda.is_available():
        return int(os.environ.get("LOCAL_RANK", "0"))
    return "mps"


def quantization_of(model: Any) -> str:
    """ "4bit", "8bit" or "none": how the base weights of a loaded model are stored."""
    if getattr(model, "is_loaded_in_4bit", False):
        return "4bit"
    if getattr(model, "is_loaded_in_8bit", False):
        return "8bit"
    return "none"


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
    """Device and mixed-precision flags of the training arguments.

    The CPU (`use_cpu`) with `device` cpu, or auto without a CUDA or MPS device: several processes
    under `accelerate launch` / `torchrun` then train together over gloo instead of each on its own.
    bf16 works on both (torch's CPU autocast); "auto" is bf16 on a GPU that supports it and on a CPU
    with native bf16 (AVX512-BF16 or AMX), else fp32 (`culturellm.llm.loading.auto_dtype`).
    """
    from transformers.utils import is_torch_bf16_gpu_available

    from culturellm.llm.loading import auto_dtype, cpu_has_native_bf16

    cpu = _use_cpu(config.device)
    gpu_bf16 = not cpu and is_torch_bf16_gpu_available()
    native = cpu_has_native_bf16() if cpu else gpu_bf16
    auto = auto_dtype("cpu" if cpu else "cuda", bf16=native, training=True)
    bf16 = config.dtype == "bfloat16" or (config.dtype == "auto" and auto == "bfloat16")
    if bf16 and not cpu and not gpu_bf16:
        raise CultureLLMError("dtype bfloat16: this GPU does not support bf16 training; use float16")
    return {"bf16": bf16, "fp16": config.dtype == "float16", "use_cpu": cpu}


def check_device(device: str) -> None:
    """Raises one clear error when `device` names an accelerator this machine does not have, or when
    the launcher asked for FSDP / DeepSpeed (which shard over GPUs) on a machine without one."""
    import torch

    cpu = _use_cpu(device)
    engine = _sharding_engine()
    if engine and (cpu or not torch.cuda.is_available()):
        raise CultureLLMError(
            f"{engine} shards the model over GPUs and this machine has none; launch without its "
            "accelerate config (e.g. --multi_gpu) to train on the CPU"
        )


def _sharding_engine() -> str | None:
    """ "FSDP" or "DeepSpeed" when `accelerate launch` was given such a config, else None."""
    for var, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if os.environ.get(var, "").lower() == "true":
            return name
    return None


def _use_cpu(device: str = "auto") -> bool:
    """Whether training runs on the CPU; an accelerator that is named but absent is an error."""
    import torch

    has_cuda, has_mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if device == "cuda" and not has_cuda:
        raise CultureLLMError(f"device cuda: no CUDA device is available to torch {torch.__version__}")
    if device == "mps" and not has_mps:
        raise CultureLLMError("device mps: the MPS backend is not available")
    return device == "cpu" or (device == "auto" and not has_cuda and not has_mps)


def build_trainer(
    model: Any,
    tokenizer: Any,
    records: Sequence[TrainingRecord],
    out: Path,
    config: FinetuneConfig,
    callbacks: Sequence[Any] = (),
) -> Any:
    """An SFTTrainer that trains a LoRA adapter on the records' answers only; records with a target
    distribution train the answer on it (soft labels, culturellm.finetune.soft); records with a loss
    weight have their loss multiplied by it (the same trainer)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTTrainer

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # labels are padded with -100 by TRL's collator
    if quantization_of(model) != "none" and not hasattr(model, "peft_config"):
        from peft import prepare_model_for_kbit_training

        # norms and head to fp32, input gradients on, (optional) activation checkpointing: QLoRA
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing
        )
    rows = to_prompt_completion(records, tokenizer)
    dataset = Dataset.from_list(rows)
    soft = has_soft_targets(records) or has_weights(records)  # weights ride on the soft-label trainer
    args = _training_args(out, config, soft=soft)
    peft_config = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    _quiet_libraries()
    trainer_cls, extra = SFTTrainer, {}
    if soft:
        trainer_cls, extra["data_collator"] = _soft_trainer(tokenizer)
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
        **extra,
    )
    # Our rich progress bar and loss log replace the Trainer's stdout printer and tqdm bar.
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    _tensorboard_into(trainer, out / TB_LOGS)
    return trainer


def _training_args(out: Path, config: FinetuneConfig, *, soft: bool) -> Any:
    """TRL's SFTConfig for `config`: answer-only loss, checkpoints in DIR/checkpoints, no tqdm."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        optim=config.optim,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        report_to=config.report_to,
        run_name=out.name or None,
        disable_tqdm=True,
        max_length=config.max_length,
        completion_only_loss=True,
        activation_checkpointing=config.gradient_checkpointing,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every LoRA parameter is used in every step
        dataloader_pin_memory=_has_accelerator(),
        remove_unused_columns=not soft,  # keep the soft_target and weight columns for the collator
        **_precision(config),
    )


def _soft_trainer(tokenizer: Any) -> tuple[Any, Any]:
    """The trainer class and data collator that train answers on target distributions."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from culturellm.finetune.data import end_of_turn_token
    from culturellm.finetune.soft import SoftTargetCollator, soft_trainer_class

    eot_id = tokenizer.convert_tokens_to_ids(end_of_turn_token(tokenizer))
    trl_collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    return soft_trainer_class(), SoftTargetCollator(trl_collator, tokenizer, eot_id)


def _tensorboard_into(trainer: Any, logs: Path) -> None:
    """TensorBoard event files go to DIR/logs (not DIR/checkpoints/runs, which is removed at the end),
    unless TENSORBOARD_LOGGING_DIR says otherwise."""
    from transformers.integrations import TensorBoardCallback

    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback) and cb.logging_dir is None:
            cb.logging_dir = str(logs)


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
    model, tokenizer = model_and_tokenizer or load_base(base, config)
    nan_guard = NanGuardCallback()
    callbacks: list[Any] = [LossLogCallback(out / "loss.jsonl"), nan_guard]
    if progress:
        callbacks.append(RichProgressCallback(console, description=f"fine-tuning {base}"))
    trainer = build_trainer(model, tokenizer, records, out, config, callbacks)
    t0 = time.monotonic()
    result = _train(trainer, base, resume_from)
    elapsed = time.monotonic() - t0
    nan_guard.check(config.lr)

    summary = _summary(
        trainer,
        result,
        records,
        base,
        config,
        quantization=_quantization_summary(config, model),
        runtime_s=round(elapsed, 2),
        resumed_from=resume_from.name if resume_from else None,
    )
    _save_adapter(trainer, out)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(out)
        if config.merge:
            _merge(trainer.model, base, out, tokenizer, quantized=quantization_of(model) != "none")
            summary["merged"] = "merged"
        if not config.keep_checkpoints:
            shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    wait_for_everyone(config.device)
    return summary


def _train(trainer: Any, base: str, resume_from: Path | None) -> Any:
    """trainer.train(), from `resume_from` if given; a checkpoint of another base is one clear error."""
    try:
        return trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except (RuntimeError, ValueError) as e:
        if resume_from is not None and ("size mismatch" in str(e) or "Missing key" in str(e)):
            raise CultureLLMError(
                f"adapter/base mismatch: checkpoint {resume_from} does not fit base '{base}' "
                f"({_first_line(e)})"
            ) from None
        raise


def _summary(
    trainer: Any,
    result: Any,
    records: Sequence[TrainingRecord],
    base: str,
    config: FinetuneConfig,
    *,
    quantization: str,
    runtime_s: float,
    resumed_from: str | None,
) -> dict[str, Any]:
    """The training summary (train_summary.json) of a finished `trainer.train()`."""
    state = trainer.state
    losses = [h for h in state.log_history if "loss" in h]
    n_tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    return {
        "base": base,
        "examples": len(records),
        "tokens_per_epoch": n_tokens,
        "steps": state.global_step,
        "epochs": round(float(state.epoch or 0.0), 4),
        "final_loss": losses[-1]["loss"] if losses else None,
        "first_loss": losses[0]["loss"] if losses else None,
        "train_loss": result.training_loss if math.isfinite(result.training_loss) else None,
        "final_token_accuracy": losses[-1].get("mean_token_accuracy") if losses else None,
        "runtime_s": runtime_s,
        "resumed_from": resumed_from,
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "total_params": sum(p.numel() for p in trainer.model.parameters()),
        "world_size": trainer.args.world_size,
        "quantization": quantization,
        "precision": _precision_name(trainer.args),
        "device": str(trainer.args.device),
        "report_to": config.report_to,
    }


def _save_adapter(trainer: Any, out: Path) -> None:
    """The adapter into `out`, by the main process. Under FSDP or DeepSpeed ZeRO-3 the weights are
    sharded, so every process takes part in gathering them (the Trainer's save_model does that)."""
    if getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False):
        if getattr(trainer, "is_fsdp_enabled", False):
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(out))
        if trainer.is_world_process_zero():
            (out / "training_args.bin").unlink(missing_ok=True)
    elif trainer.is_world_process_zero():
        trainer.model.save_pretrained(out)


def _merge(model: Any, base: str, out: Path, tokenizer: Any, *, quantized: bool) -> None:
    """DIR/merged: the adapter merged into the base. An adapter trained on a 4-bit or 8-bit base is
    merged into the unquantised base weights (merging into quantised weights would round them again)."""
    if quantized:
        from peft import PeftModel

        full, _ = load_base(base)
        merged = PeftModel.from_pretrained(full, str(out)).merge_and_unload()
    else:
        merged = model.merge_and_unload()
    merged.save_pretrained(out / "merged")
    tokenizer.save_pretrained(out / "merged")


def _quantization_summary(config: FinetuneConfig, model: Any) -> str:
    q = quantization_of(model)
    if q == "4bit":
        return f"4bit {config.quant_type}" + (" double-quant" if config.double_quant else "")
    return q


def _precision_name(args: Any) -> str:
    return "bf16 mixed" if args.bf16 else "fp16 mixed" if args.fp16 else "fp32"


def wait_for_everyone(device: str = "auto") -> None:
    """A barrier across the processes of an `accelerate launch` / `torchrun` run (no-op alone)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        # the same device choice as the training arguments, so the Trainer reuses this process group
        PartialState(cpu=_use_cpu(device)).wait_for_everyone()


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else type(e).__name__
