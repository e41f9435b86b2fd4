"""Precision of local models: the bundled model scored in bfloat16 agrees with float32.

Tolerance (measured on 18 requests: survey questions with 4 options under two culture prompts and
yes/no questions): the candidates' renormalised probabilities, which evaluation and alignment use,
differ by at most 0.068 and the chosen candidate never changed; summed log-probabilities of unlikely
candidates differ by up to 0.67 nats (bf16 keeps 8 bits of mantissa). The test allows 0.12 in
probability and 1.5 nats, and at most one changed choice in 18."""

from __future__ import annotations

import numpy as np
import pytest

from culturellm.llm.base import ScoreRequest
from culturellm.prompts import culture_system_prompt, survey_messages
from survey_chats import OPTIONS, STATEMENTS

PROB_TOL = 0.12
LOGPROB_TOL = 1.5


def _requests() -> list[ScoreRequest]:
    cultures = ("Arabic", "Korean")
    survey = [survey_messages(t, OPTIONS, culture_system_prompt(c)) for t in STATEMENTS for c in cultures]
    reqs = [ScoreRequest(messages=m, candidates=tuple(OPTIONS)) for m in survey]
    reqs += [
        ScoreRequest(
            messages=[{"role": "user", "content": f"Is this text offensive? '{t}' Answer yes or no."}],
            candidates=("yes", "no"),
        )
        for t in STATEMENTS
    ]
    return reqs


def _probs(logprobs: tuple[float, ...]) -> np.ndarray:
    x = np.asarray(logprobs, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.mark.slow
def test_bf16_scores_agree_with_fp32(bundled_model):
    import torch

    from culturellm.llm import load_model

    bf16 = load_model("bundled", cache=False, dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert next(bundled_model.model.parameters()).dtype == torch.float32
    reqs = _requests()
    ref, got = bundled_model.score(reqs), bf16.score(reqs)
    changed = 0
    for r, g in zip(ref, got, strict=True):
        assert g.logprobs == pytest.approx(r.logprobs, abs=LOGPROB_TOL)
        assert np.abs(_probs(g.logprobs) - _probs(r.logprobs)).max() <= PROB_TOL
        changed += int(np.argmax(g.logprobs) != np.argmax(r.logprobs))
    assert changed <= 1


def test_batch_size_from_free_memory():
    """KV cache of Llama 3.1 8B in bf16: 2 x 32 layers x 8 heads x 128 x 2 bytes = 128 KiB per token
    (docs/gpu.md); the batch is 60 % of the free memory over one 512-token row, clamped to [1, 256];
    on a CPU the default."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from culturellm.llm.memory import auto_batch_size, kv_bytes_per_token, row_bytes

    llama8b = LlamaConfig(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256,
    )  # fmt: skip
    assert kv_bytes_per_token(llama8b) == 131072
    row = row_bytes(llama8b, 512)
    assert row == 131072 * 512 + 512 * (4 * 4096 + 2 * 14336) * 2 + 2 * 128256 * 4
    small = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    tiny = LlamaForCausalLM(small).to(torch.bfloat16)
    tiny.config = llama8b  # the 8B's shapes, priced at the tiny model's bf16 width
    gib = 2**30
    assert auto_batch_size(tiny, "cuda", free_bytes=8 * gib) == int(8 * gib * 0.6 // row) == 45
    assert auto_batch_size(tiny, "cuda", free_bytes=200 * gib) == 256
    assert auto_batch_size(tiny, "cuda", free_bytes=10**6) == 1
    if not torch.cuda.is_available():
        assert auto_batch_size(tiny, "cuda") == auto_batch_size(tiny, "cpu") == 16


@pytest.mark.slow
def test_cli_evaluate_in_bf16_writes_calibrated_rows(tmp_path):
    """`culturellm evaluate --model bundled --dtype bfloat16 --limit 5`: the model is loaded in bf16
    and the calibrated macro-F1 rows are written."""
    from typer.testing import CliRunner

    from culturellm.cli import app
    from culturellm.jsonio import read_jsonl
    from culturellm.llm import parse_spec
    from culturellm.llm.local_pool import load_local_chat

    out = tmp_path / "eval"
    args = ["evaluate", "--model", "bundled", "--dtype", "bfloat16", "--limit", "5", "--culture", "arabic",
            "--task", "arabic/spam_detect", "--out", str(out), "--no-progress"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    (row,) = read_jsonl(out / "results.jsonl")
    assert row["n"] == 5 and row["calibration"]["method"] == "contextual"
    assert row["dtype"] == "bfloat16"  # the row says in which precision it was scored
    assert 0.0 <= row["macro_f1"] <= 1.0 and "macro_f1_uncalibrated" in row
    assert (
        load_local_chat(parse_spec("bundled"), dtype="bfloat16").dtype_name == "bfloat16"
    )  # the model it used


def test_access_placement_goes_beneath_a_specs_own_options(tmp_path):
    """`load_model(spec, access)`: the command's or run's device / dtype / batch size reach a local
    spec beneath its own options, never a remote one; no process-wide default is left behind."""
    from culturellm.llm import ModelAccess, ModelSpec, SpecKind, load_model
    from culturellm.llm.fake import FakeBackend
    from culturellm.llm.registry import register_kind, unregister_kind

    seen = []

    def parse(text):
        return ModelSpec(text, "probe", name=text[6:]) if text.startswith("probe:") else None

    def load(spec):
        seen.append(dict(spec.options))
        return FakeBackend(spec.text)

    register_kind(SpecKind("probe", ("probe:NAME",), parse, load, lambda spec: tmp_path), before="dir")
    try:
        access = ModelAccess(device="cpu", dtype="bfloat16", batch_size=3, cache=False)
        load_model("probe:a", access)
        load_model(ModelSpec("probe:b", "probe", name="b", local=True, options={"dtype": "float16"}), access)
        load_model("probe:c", cache=False)  # no access: nothing from the calls before
    finally:
        unregister_kind("probe")
    assert seen == [
        {"device": "cpu", "dtype": "bfloat16", "batch_size": 3},
        {"dtype": "float16", "device": "cpu", "batch_size": 3},
        {},
    ]
    assert load_model("fake:x", access).name  # a remote kind: the placement is not applied


def test_auto_dtype_rule():
    """--dtype auto: training in bf16 where the device computes it natively (a CPU with AVX512-BF16 or
    AMX included), scoring in fp32 on every CPU (bf16 changed 3-6 % of labels, docs/models.md)."""
    from culturellm.llm.loading import auto_dtype, native_bf16

    zen4 = ["fpu", "sse2", "avx2", "avx512f", "avx512bw", "avx512_bf16", "avx512_vnni"]
    sapphire_rapids = ["avx2", "avx512f", "amx_bf16", "amx_tile", "amx_int8"]
    skylake = ["fpu", "sse2", "avx2", "avx512f", "avx512bw", "avx512_vnni"]
    assert native_bf16(zen4) and native_bf16(sapphire_rapids) and native_bf16(["AVX512_BF16"])
    assert not native_bf16(skylake) and not native_bf16([]) and not native_bf16(["avx2"])
    assert auto_dtype("cpu", bf16=True, training=True) == "bfloat16"
    assert auto_dtype("cpu", bf16=False, training=True) == "float32"
    assert auto_dtype("cpu", bf16=True) == auto_dtype("cpu", bf16=False) == "float32"  # scoring
    assert auto_dtype("cuda", bf16=True) == auto_dtype("cuda:1", bf16=True, training=True) == "bfloat16"
    assert auto_dtype("cuda", bf16=False) == "float16" and auto_dtype("mps") == "float16"
    assert auto_dtype("cuda", bf16=False, training=True) == "float32"


def test_this_machines_cpu_flags_are_read():
    """cpu_flags() holds what /proc/cpuinfo says (Linux), and native bf16 follows them."""
    from pathlib import Path

    from culturellm.llm.loading import cpu_flags, cpu_has_native_bf16, native_bf16, resolve_dtype

    info = Path("/proc/cpuinfo")
    if info.is_file():
        line = next((x for x in info.read_text().splitlines() if x.startswith("flags")), "flags :")
        assert set(line.split(":", 1)[1].split()) <= cpu_flags()
    assert cpu_has_native_bf16() == native_bf16(cpu_flags())
    assert str(resolve_dtype("auto", "cpu")) == "torch.float32"  # scoring stays fp32 on any CPU
