"""The CPU's peak floating-point rate and the achieved rate of a model's forward passes, for the
engines benchmark (`benchmarks/evaluate.py --engines`): how much of the hardware local scoring uses.

Peak = cores x clock x FLOPs per cycle per core, for the widest instructions /proc/cpuinfo lists:
  fp32: 2 FLOPs (an FMA) x lanes x FMA units per core: AVX-512 on Intel: 16 lanes x 2 units = 64;
        AVX-512 on AMD Zen 4 (executed as two 256-bit halves): 16 x 1 = 32; Zen 5 (avx512_vp2intersect
        beside avx512f, full-width units): 64; AVX2 + FMA: 8 lanes x 2 units = 32; else SSE: 8.
  bf16: avx512_bf16's VDPBF16PS does a 2-element dot product per fp32 lane: twice the fp32 rate;
        AMX (amx_bf16): 1024 FLOPs per cycle per core (one TMUL tile multiply-add per 16 cycles).
The clock is cpufreq's cpuinfo_max_freq when the kernel shows it, else the largest "cpu MHz" (a
virtual machine often shows only its nominal clock, so the peak is an estimate either way).

Achieved = (2 x tokens run x matmul parameters per token + 2 x logit rows x vocabulary x hidden) /
seconds, counted by a forward hook: every token of every forward pass (padding included) runs all
weight matrices but the embeddings; the output layer runs only where logits are asked for. Attention
score products are left out (short prompts: a few per cent).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def cpu_flags(cpuinfo: str | None = None) -> tuple[str, set[str]]:
    """(vendor_id, flags) of the first processor in /proc/cpuinfo."""
    text = cpuinfo if cpuinfo is not None else _read("/proc/cpuinfo")
    vendor, flags = "", set()
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip() == "vendor_id" and not vendor:
            vendor = val.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(val.split())
    return vendor, flags


def flops_per_cycle(dtype: str, vendor: str, flags: set[str]) -> tuple[int, str]:
    """FLOPs per cycle per core for `dtype` (float32 / bfloat16) and how they were chosen."""
    amd = "AMD" in vendor
    if "avx512f" in flags:
        units = 1 if amd and "avx512_vp2intersect" not in flags else 2
        fp32, isa = 2 * 16 * units, f"AVX-512 FMA, 16 fp32 lanes x {units} unit{'s' * (units > 1)}"
        if amd and units == 1:
            isa += " (Zen 4: 512-bit ops run as two 256-bit halves)"
    elif "avx2" in flags and "fma" in flags:
        fp32, isa = 32, "AVX2 FMA, 8 fp32 lanes x 2 units"
    else:
        fp32, isa = 8, "SSE, 4 fp32 lanes x 2 (mul + add)"
    if dtype == "bfloat16":
        if "amx_bf16" in flags:
            return 1024, "AMX bf16 tiles, 1024 per cycle"
        if "avx512_bf16" in flags:
            return 2 * fp32, f"avx512_bf16 VDPBF16PS: 2 x the fp32 rate ({isa})"
        return fp32, f"no native bf16: the fp32 rate ({isa})"
    return fp32, isa


def clock_ghz(cpuinfo: str | None = None) -> tuple[float, str]:
    """The clock in GHz and where it was read."""
    f = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if cpuinfo is None and f.is_file():
        return int(f.read_text()) / 1e6, "cpufreq cpuinfo_max_freq"
    text = cpuinfo if cpuinfo is not None else _read("/proc/cpuinfo")
    mhz = [float(v) for k, _, v in (ln.partition(":") for ln in text.splitlines()) if k.strip() == "cpu MHz"]
    return (max(mhz) / 1000 if mhz else 0.0), "/proc/cpuinfo cpu MHz"


def peak_gflops(dtype: str, cores: int, cpuinfo: str | None = None) -> tuple[float, str]:
    """(peak GFLOP/s, how it was computed) for `cores` cores."""
    vendor, flags = cpu_flags(cpuinfo)
    per, isa = flops_per_cycle(dtype, vendor, flags)
    ghz, where = clock_ghz(cpuinfo)
    peak = cores * ghz * per
    return peak, f"{cores} cores x {ghz:.2f} GHz ({where}) x {per} {dtype} FLOPs/cycle ({isa}) = {peak:.0f}"


class FlopCounter:
    """Counts the FLOPs of a HF causal LM's forward passes while installed (a context manager)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        emb_in = model.get_input_embeddings().weight
        emb_out = model.get_output_embeddings().weight
        seen = {p.data_ptr(): p.numel() for p in model.parameters()}
        self.body = (
            sum(seen.values())
            - emb_in.numel()
            - (0 if emb_out.data_ptr() == emb_in.data_ptr() else emb_out.numel())
        )
        self.head = emb_out.numel()
        self.tokens = self.logit_rows = 0
        self._handle: Any = None

    def _hook(self, module: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.tokens += int(ids.numel())
        logits = getattr(out, "logits", None)
        if logits is not None:
            self.logit_rows += int(logits.shape[0] * logits.shape[1])

    @property
    def flops(self) -> float:
        return 2.0 * self.body * self.tokens + 2.0 * self.head * self.logit_rows

    def __enter__(self) -> FlopCounter:
        self._handle = self.model.register_forward_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.remove()


def cores_used(threads: int) -> int:
    return max(1, min(threads, len(os.sched_getaffinity(0))))


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
