"""Loading local model specs into raw Hugging Face objects (used by the local chat model, serving and
fine-tuning): device and dtype resolution, the weights directory (through the spec kind's `weights`
hook, `culturellm.llm.registry.weights_dir`), `from_pretrained`, PEFT adapters on their base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from culturellm.errors import CultureLLMError
from culturellm.llm.adapter_files import check_adapter_dir
from culturellm.llm.hf_compat import ensure_chat_template
from culturellm.llm.registry import resolve_spec, weights_dir
from culturellm.llm.spec import ModelSpec

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def resolve_device(device: str | None = None) -> str:
    """The torch device a `device` option names: auto (or None) is CUDA when there is one, else MPS,
    else the CPU; an explicit accelerator that is not present is an error."""
    import torch

    name = (device or "auto").strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in DEVICES:
        raise CultureLLMError(f"unknown device '{device}': use one of {', '.join(DEVICES)}")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise CultureLLMError(f"device '{name}': no CUDA device is available to torch {torch.__version__}")
    if kind == "mps" and not has_mps:
        raise CultureLLMError(f"device '{name}': the MPS backend is not available")
    return name


def resolve_dtype(dtype: str | None, device: str = "cpu") -> Any:
    """The torch dtype a `dtype` option names; auto (or None): bfloat16 on a CUDA device that supports
    it (float16 on one that does not), float16 on MPS, float32 on the CPU."""
    import torch

    name = _DTYPE_ALIASES.get(str(dtype or "auto").lower(), str(dtype or "auto").lower())
    if name not in DTYPES:
        raise CultureLLMError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.startswith("mps") else torch.float32
    return getattr(torch, name)


def load_local(spec: ModelSpec, *, merge: bool = False, **options: Any) -> tuple[Any, Any]:
    """Load raw HF objects `(model, tokenizer)` for a parsed local model spec (its weights directory
    from its kind's `weights` hook).

        Adapters are loaded on top of their base as a `peft.PeftModel` (merged into the base weights when
        `merge=True`). Options (here or in the spec's options): `device` (auto|cpu|cuda|mps, default auto:
        the accelerator when there is one), `dtype` (auto|float32|bfloat16|float16, default auto: bf16 on
        an accelerator that supports it, fp32 on the CPU), `device_map` (e.g. "auto": accelerate places the
        layers over the devices there are; `device` is then not used), `quantization_config` (a
        transformers BitsAndBytesConfig: the weights are loaded quantised, placed by `device_map`).
        Only a Hub id (`hf:ORG/NAME`) that is not in the Hugging Face cache is downloaded, and only when
        online (HF_HUB_OFFLINE unset).
    """
    spec = resolve_spec(spec.with_options(**options) if options else spec)  # a Hub adapter repo: its base
    directory = weights_dir(spec)  # raises for remote models
    if spec.adapter is not None:
        check_adapter_dir(spec.adapter)  # one clear error for a damaged adapter, before the base loads
    device = resolve_device(spec.options.get("device"))
    dtype = resolve_dtype(spec.options.get("dtype"), device)
    device_map = spec.options.get("device_map")
    extra = {
        k: spec.options[k] for k in ("device_map", "quantization_config") if spec.options.get(k) is not None
    }
    model, tokenizer = _from_pretrained(directory, dtype=dtype, **extra)
    if spec.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(spec.adapter))
        if merge:
            model = model.merge_and_unload()
    if device_map is None and device != "cpu":
        model = model.to(device)
    model.eval()
    return model, tokenizer


def _from_pretrained(directory: Path, **kw: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar for a 3 s load; restored below
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, **kw)
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as e:
        raise CultureLLMError(f"{directory}: cannot load model: {e}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    ensure_chat_template(tokenizer)
    return model, tokenizer
