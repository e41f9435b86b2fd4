"""Model specs parsed once (`ModelSpec`), the spec-kind registry, the `Backend` base class, the `fake:`
backend, and the local loader's device/dtype options (tiny random models; no bundled model)."""

from __future__ import annotations

import pytest
import torch

from culturellm.errors import CultureLLMError, DataError, UnknownNameError
from culturellm.llm import (
    Backend,
    ModelSpec,
    SamplingParams,
    ScoreRequest,
    SpecKind,
    load_backend,
    load_model,
    parse_spec,
    register_kind,
)
from culturellm.llm.base import ScoreResult
from culturellm.llm.modelref import ModelRef, write_modelref
from culturellm.llm.records import Completion, Scored
from culturellm.llm.registry import spec_forms, spec_kinds, unregister_kind

USER = [{"role": "user", "content": "How important is family in your life? Answer with a number."}]


def test_every_form_parses_once(tmp_path, tiny_model_dir) -> None:
    assert parse_spec("bundled") == ModelSpec("bundled", "bundled", name="bundled", local=True)
    assert parse_spec(" gemma3-270m ").kind == "gemma3-270m"
    assert parse_spec("openai:gpt-4o-mini") == ModelSpec("openai:gpt-4o-mini", "openai", name="gpt-4o-mini")
    assert parse_spec("fake:demo").name == "demo" and not parse_spec("fake:demo").local
    base = tmp_path / "base"
    tiny_model_dir(base)
    assert parse_spec(f"hf:{base}") == ModelSpec(f"hf:{base}", "hf", path=base, local=True)
    assert parse_spec(str(base)).path == base and parse_spec(str(base)).local
    # culture models: a merged model, an adapter on a base (the base parsed too), a remote fine-tune
    write_modelref(base, ModelRef(kind="merged", base="bundled"))
    assert parse_spec(base / "culturellm.json").path == base
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    write_modelref(adapter, ModelRef(kind="peft-adapter", base="bundled"))
    spec = parse_spec(str(adapter))
    assert spec.adapter == adapter.resolve() and spec.base == parse_spec("bundled") and spec.local
    remote = tmp_path / "remote"
    remote.mkdir()
    write_modelref(remote, ModelRef(kind="openai", base="gpt-4o-mini", model="ft:x", base_url="http://h/v1"))
    spec = parse_spec(str(remote))
    assert (spec.kind, spec.name, spec.base_url) == ("openai", "ft:x", "http://h/v1")
    # a parsed spec is returned as it is; options ride along
    assert parse_spec(spec) is spec
    assert parse_spec("bundled", dtype="bfloat16").options == {"dtype": "bfloat16"}


def test_bad_specs_get_one_clear_error(tmp_path) -> None:
    for bad in ("nope", "", "openai:", "fake:", str(tmp_path)):
        with pytest.raises(UnknownNameError, match=r"Valid forms: .*fake:NAME"):
            parse_spec(bad)
    with pytest.raises(CultureLLMError, match="not a Hugging Face model directory"):
        parse_spec(f"hf:{tmp_path}")
    adapter = tmp_path / "a"
    adapter.mkdir()
    write_modelref(adapter, ModelRef(kind="peft-adapter", base="bundled"))
    with pytest.raises(DataError, match=r"has no adapter_config.json"):
        parse_spec(str(adapter))
    (tmp_path / "bad.json").write_text('{"kind": "nonsense"}')
    with pytest.raises(DataError, match=r"bad.json: invalid model reference"):
        parse_spec(str(tmp_path / "bad.json"))


def test_a_plugin_kind_is_registered_like_the_builtins() -> None:
    """A kind registered through the hook plugins use: its prefix parses, loads, and is listed."""

    class Upper(Backend):
        backend = "upper"

        def generate_detailed(self, requests, params=None):
            return [
                Completion(r[-1]["content"].upper(), prompt_tokens=1, completion_tokens=1) for r in requests
            ]

        def score_detailed(self, requests):
            return [
                Scored(ScoreResult((-1.0,) * len(r.candidates), (1,) * len(r.candidates))) for r in requests
            ]

    def parse(text: str) -> ModelSpec | None:
        return ModelSpec(text, "upper", name=text[6:]) if text.startswith("upper:") else None

    register_kind(SpecKind("upper", ("upper:NAME (test)",), parse, lambda s: Upper(s.text)), before="dir")
    try:
        names = [k.name for k in spec_kinds()]
        assert names.index("upper") == names.index("dir") - 1  # before the directory catch-all
        assert "upper:NAME (test)" in spec_forms()
        model = load_model("upper:x", cache=False)
        assert isinstance(model, Upper) and model.generate([USER]) == [USER[0]["content"].upper()]
        # the base class did the accounting
        assert model.usage.requests == 1 and model.usage.by_kind == {"generate": 1}
    finally:
        unregister_kind("upper")


def test_fake_backend_is_deterministic_and_loads_no_weights(fake_model) -> None:
    from culturellm.llm.local_pool import _LOADED

    loaded = dict(_LOADED)
    other = load_backend(parse_spec("fake:other"))
    reqs = [
        ScoreRequest(USER, ("1", "2", "3", "4")),
        ScoreRequest(USER, ("yes", "no way"), end_of_turn=False),
    ]
    a, b = fake_model.score(reqs), fake_model.score(list(reversed(reqs)))[::-1]
    assert a == b and a != other.score(reqs)  # order-free, and each name is another model
    assert all(lp < 0 for r in a for lp in r.logprobs) and a[1].num_tokens == (1, 2)
    greedy = SamplingParams(max_tokens=6)
    assert fake_model.generate([USER], greedy) == fake_model.generate(
        [USER], SamplingParams(max_tokens=6, seed=9)
    )
    s0 = [
        fake_model.generate([USER], SamplingParams(max_tokens=6, temperature=1, sample_index=i))
        for i in range(4)
    ]
    assert len({tuple(x) for x in s0}) > 1  # sampling varies with the sample index
    text = fake_model.generate([USER], greedy)[0]
    assert 1 <= len(text.split()) <= 6 and set(text.split()) <= set(USER[0]["content"].split())
    cut = text.split()[1]
    assert cut not in fake_model.generate([USER], SamplingParams(max_tokens=6, stop=(cut,)))[0].split()
    assert fake_model.usage.requests == 8 + len(s0) and fake_model.calls[0] == ("score", 2)
    assert dict(_LOADED) == loaded  # nothing local was loaded


def test_fake_evaluate_end_to_end(tmp_path) -> None:
    """`culturellm evaluate --model fake:...` runs the whole evaluation with no weights loaded."""
    from typer.testing import CliRunner

    from culturellm.cli import app
    from culturellm.jsonio import read_jsonl
    from culturellm.llm.local_pool import _LOADED

    loaded = dict(_LOADED)
    out = tmp_path / "eval"
    args = ["evaluate", "--model", "fake:e2e", "--culture", "english", "--limit", "5", "-o", str(out)]
    r = CliRunner().invoke(app, [*args, "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = read_jsonl(out / "results.jsonl")
    assert rows and all(row["model"] == "fake:e2e" and row["n"] == 5 for row in rows)
    again = tmp_path / "again"
    r = CliRunner().invoke(app, [*args[:-1], str(again), "--no-progress"])
    assert r.exit_code == 0, r.output

    def results(rows: list[dict]) -> list[dict]:  # what the model answered; not time or cache counts
        volatile = ("seconds", "requests", "cache_hits")
        return [{k: v for k, v in row.items() if k not in volatile} for row in rows]

    assert results(read_jsonl(again / "results.jsonl")) == results(rows)  # deterministic
    assert dict(_LOADED) == loaded


def test_device_and_dtype_options(tmp_path, tiny_model_dir) -> None:
    from culturellm.llm.loading import load_local, resolve_device, resolve_dtype
    from culturellm.llm.local_pool import load_local_chat

    assert resolve_device("cpu") == "cpu" and resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16 and resolve_dtype("float16", "cuda") == torch.float16
    if not torch.cuda.is_available():
        assert resolve_device("auto") in ("cpu", "mps")
        with pytest.raises(CultureLLMError, match="no CUDA device"):
            resolve_device("cuda")
    for bad in (lambda: resolve_device("tpu"), lambda: resolve_dtype("int3")):
        with pytest.raises(CultureLLMError, match="unknown"):
            bad()
    spec = parse_spec(tiny_model_dir(tmp_path / "m"))
    model, _ = load_local(spec, dtype="bfloat16", device="cpu")
    assert next(model.parameters()).dtype == torch.bfloat16
    model, _ = load_local(parse_spec(spec, device_map="auto"))  # accelerate places it (CPU here)
    assert next(model.parameters()).device.type in ("cpu", "cuda", "mps")
    fp32 = load_local_chat(spec)
    bf16 = load_local_chat(spec, dtype="bfloat16")
    assert fp32 is not bf16 and fp32 is load_local_chat(spec, dtype="float32")  # auto is fp32 on CPU
    assert bf16.model_id == fp32.model_id + ":bfloat16" and ":" not in fp32.model_id.split("@")[1]
    a, b = fp32.score([ScoreRequest(USER, ("1", "2"))])[0], bf16.score([ScoreRequest(USER, ("1", "2"))])[0]
    assert a.logprobs == pytest.approx(b.logprobs, abs=0.1)  # bf16 rounding on a random tiny model


def test_finetune_base_refuses_remote_and_adapter_specs(tmp_path) -> None:
    from culturellm.finetune.local import load_base

    with pytest.raises(CultureLLMError, match="--backend openai --base gpt-4o"):
        load_base("openai:gpt-4o")
    adapter = tmp_path / "a"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    write_modelref(adapter, ModelRef(kind="peft-adapter", base="bundled"))
    with pytest.raises(CultureLLMError, match="is a LoRA adapter on 'bundled'"):
        load_base(str(adapter))
