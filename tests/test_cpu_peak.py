"""benchmarks/cpu_peak.py: the CPU peak the engines benchmark prints (cores x clock x FLOPs/cycle of
the ISA in /proc/cpuinfo) and the FLOPs it counts for the local model's forward passes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from cpu_peak import FlopCounter, peak_gflops


def _cpuinfo(vendor: str, flags: str, mhz: float = 2600.0) -> str:
    one = f"processor\t: 0\nvendor_id\t: {vendor}\ncpu MHz\t\t: {mhz}\nflags\t\t: {flags}\n"
    return one + one.replace("processor\t: 0", "processor\t: 1")


@pytest.mark.parametrize(
    ("vendor", "flags", "dtype", "per_cycle"),
    [
        ("AuthenticAMD", "fma avx2 avx512f avx512_bf16", "float32", 32),  # Zen 4: 256-bit halves
        ("AuthenticAMD", "fma avx2 avx512f avx512_bf16", "bfloat16", 64),
        ("AuthenticAMD", "fma avx2 avx512f avx512_vp2intersect avx512_bf16", "float32", 64),  # Zen 5
        ("GenuineIntel", "fma avx2 avx512f", "float32", 64),
        ("GenuineIntel", "fma avx2 avx512f", "bfloat16", 64),  # no native bf16: the fp32 rate
        ("GenuineIntel", "fma avx2 avx512f avx512_bf16 amx_bf16", "bfloat16", 1024),
        ("GenuineIntel", "fma avx2", "float32", 32),
    ],
)
def test_peak_is_cores_clock_and_flops_per_cycle(vendor, flags, dtype, per_cycle):
    peak, how = peak_gflops(dtype, 2, _cpuinfo(vendor, flags, 2500.0))
    assert peak == pytest.approx(2 * 2.5 * per_cycle)
    assert "2 cores x 2.50 GHz" in how and f"{per_cycle} {dtype} FLOPs/cycle" in how


def test_flop_counter_counts_every_token_and_only_the_kept_logits(smol_tokenizer, tiny_llama):
    model = tiny_llama(smol_tokenizer)
    emb = model.get_input_embeddings().weight.numel()
    with FlopCounter(model) as c, torch.inference_mode():
        model(input_ids=torch.ones((3, 7), dtype=torch.long), logits_to_keep=1)
        model(input_ids=torch.ones((2, 4), dtype=torch.long))
    assert (c.tokens, c.logit_rows) == (3 * 7 + 2 * 4, 3 + 2 * 4)
    assert c.body == sum(p.numel() for p in model.parameters()) - emb  # tied output layer
    assert c.flops == 2 * c.body * c.tokens + 2 * emb * c.logit_rows
    model(input_ids=torch.ones((1, 2), dtype=torch.long))  # removed on exit: no longer counted
    assert c.tokens == 29
