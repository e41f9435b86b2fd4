"""Loading local model specs into raw Hugging Face objects (used by the local chat model, serving and
fine-tuning): device and dtype resolution, the weights directory (through the spec kind's `weights`
hook, `culturellm.llm.registry.weights_dir`), `from_pretrained`, PEFT adapters on their base.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
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


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bf16 matmul units


def native_bf16(flags: Iterable[str]) -> bool:
    """Whether a CPU with these feature flags (as /proc/cpuinfo names them) computes bf16 natively:
    AVX512-BF16 (Intel Cooper Lake and later, AMD Zen 4 and later) or AMX-BF16 (Intel Sapphire
    Rapids and later). Elsewhere bf16 is emulated and slower than fp32."""
    return any(f.lower() in NATIVE_BF16_FLAGS for f in flags)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags: torch's own checks (they ask the CPU through cpuinfo, on every OS)
    where this torch has them, and the flags line of /proc/cpuinfo (Linux)."""
    import torch

    flags = set()
    for flag, check in (("avx512_bf16", "_is_avx512_bf16_supported"), ("amx_bf16", "_is_amx_tile_supported")):
        fn = getattr(torch.cpu, check, None)
        with contextlib.suppress(Exception):
            if fn is not None and fn():
                flags.add(flag)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
    return frozenset(flags)


def cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU computes bf16 natively (`native_bf16` of `cpu_flags`)."""
    return native_bf16(cpu_flags())


def auto_dtype(device: str, *, bf16: bool = False, training: bool = False) -> str:
    """What `--dtype auto` means on `device` (`bf16`: the device computes bf16 natively; on a CPU,
    `cpu_has_native_bf16`). Scoring and serving: bfloat16 on a CUDA device with bf16 (else float16),
    float16 on MPS, float32 on a CPU (bf16 weights changed 3 % to 6 % of the predicted labels of the
    bundled model, over the 1 % allowed: benchmarks/precision.py, docs/models.md). Training (mixed
    precision, fp32 master weights): bfloat16 where the device has it, the CPU included (1.69x fp32's
    speed, the same loss: benchmarks/finetune.py --precision), else float32."""
    if training:
        return "bfloat16" if bf16 else "float32"
    if device.startswith("cuda"):
        return "bfloat16" if bf16 else "float16"
    return "float16" if device.startswith("mps") else "float32"


def resolve_dtype(dtype: str | None, device: str = "cpu") -> Any:
    """The torch dtype a `dtype` option of a loaded (scored, served) model names; auto (or None):
    `auto_dtype` of the device."""
    import torch

    name = _DTYPE_ALIASES.get(str(dtype or "auto").lower(), str(dtype or "auto").lower())
    if name not in DTYPES:
        raise CultureLLMError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
    if name == "auto":
        name = auto_dtype(device, bf16=device.startswith("cuda") and torch.cuda.is_bf16_supported())
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
