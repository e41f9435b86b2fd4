"""Local backend: exact, batched scoring; batched generation; spec resolution; memoised loading."""

from __future__ import annotations

import math

import pytest
import torch

from culturellm.errors import CultureLLMError, UnknownNameError
from culturellm.llm import SamplingParams, ScoreRequest, load_model, parse_spec
from culturellm.llm.loading import load_local
from culturellm.llm.local import LocalChatModel
from culturellm.llm.registry import weights_dir

SMALL = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
SMALL["num_key_value_heads"] = 1
USER = [{"role": "user", "content": "How important is family in your life? Answer with a number."}]


@pytest.fixture(scope="module")
def tiny(smol_tokenizer, tiny_llama) -> LocalChatModel:
    """A random 2-layer Llama (hidden 32) with the real SmolLM2 tokenizer and chat template."""
    return LocalChatModel(tiny_llama(smol_tokenizer), smol_tokenizer, name="tiny", batch_size=3, score_rows=5)


def score(chat: LocalChatModel, reqs, mode: str = "kv"):
    return [s.result for s in chat.score_detailed(reqs, mode=mode)]


def manual_logprob(chat: LocalChatModel, messages, candidate: str, end_of_turn: bool) -> float:
    """Unbatched reference: one forward pass over prompt+candidate, log-softmax sum."""
    prompt = chat.prompt_ids(messages)
    cand = chat.candidate_ids(candidate, end_of_turn)
    with torch.no_grad():
        logits = chat.model(torch.tensor([prompt + cand])).logits[0]
    lp = torch.log_softmax(logits.double(), dim=-1)
    return sum(float(lp[len(prompt) - 1 + k, t]) for k, t in enumerate(cand))


def _requests() -> list[ScoreRequest]:
    short = [{"role": "user", "content": "Hi"}]
    longer = [
        {"role": "system", "content": "You are a person from the Arabic culture."},
        {
            "role": "user",
            "content": "Is homosexuality justifiable? 1. Never 10. Always. Reply with a number.",
        },
    ]
    return [
        ScoreRequest(USER, ("1", "2", "3", "4", "10")),
        ScoreRequest(short, ("yes", "no", "maybe not")),
        ScoreRequest(longer, ("1", "10", "Never, not at all")),
        ScoreRequest(USER, ("1", "2", "3"), end_of_turn=False),
        ScoreRequest(short, ("a", "b"), end_of_turn=False),
    ]


@pytest.mark.parametrize("mode", ["kv", "full"])
def test_score_is_exact(tiny: LocalChatModel, mode: str) -> None:
    reqs = _requests()
    results = score(tiny, reqs, mode)
    assert len(results) == len(reqs)
    for req, res in zip(reqs, results, strict=True):
        assert len(res.logprobs) == len(req.candidates) == len(res.num_tokens)
        for cand, lp, n in zip(req.candidates, res.logprobs, res.num_tokens, strict=True):
            ref = manual_logprob(tiny, req.messages, cand, req.end_of_turn)
            assert lp == pytest.approx(ref, abs=2e-4), (mode, cand)
            assert n == len(tiny.candidate_ids(cand, req.end_of_turn))
            assert lp < 0


def test_score_order_and_batching_do_not_matter(tiny: LocalChatModel) -> None:
    reqs = _requests()
    together = tiny.score(reqs)
    alone = [tiny.score([r])[0] for r in reversed(reqs)][::-1]
    for a, b in zip(together, alone, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=2e-4)


def test_end_of_turn_separates_prefixes(tiny: LocalChatModel) -> None:
    eot = tiny.eot_ids
    assert tiny.tokenizer.convert_ids_to_tokens(eot) == ["<|im_end|>"]
    with_eot = tiny.score([ScoreRequest(USER, ("1", "10"))])[0]
    without = tiny.score([ScoreRequest(USER, ("1", "10"), end_of_turn=False)])[0]
    assert with_eot.num_tokens == (2, 3)
    assert without.num_tokens == (1, 2)
    # without an end-of-turn token, "10" can never beat its own prefix "1"
    assert without.logprobs[1] < without.logprobs[0]


def test_normalized_logprobs(tiny: LocalChatModel) -> None:
    res = tiny.score([ScoreRequest(USER, ("maybe not", "yes"))])[0]
    assert res.normalized == pytest.approx(
        tuple(lp / n for lp, n in zip(res.logprobs, res.num_tokens, strict=True))
    )


def test_generate_batched_matches_unbatched_greedy(tiny: LocalChatModel) -> None:
    reqs = [
        [{"role": "user", "content": "Hi"}],
        USER,
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."}],
    ]
    params = SamplingParams(max_tokens=6)
    batched = tiny.generate(reqs, params)
    single = [tiny.generate([r], params)[0] for r in reqs]
    assert batched == single
    assert all(isinstance(t, str) for t in batched)
    # a random model rarely stops early, so tokens were generated and counted
    assert tiny.usage.completion_tokens > 0
    assert tiny.usage.by_kind["generate"] == 6


def test_sampling_is_seeded(tiny: LocalChatModel) -> None:
    reqs = [USER, USER]
    p0 = SamplingParams(max_tokens=8, temperature=1.0, seed=3)
    a = tiny.generate(reqs, p0)
    b = tiny.generate(reqs, p0)
    c = tiny.generate(reqs, SamplingParams(max_tokens=8, temperature=1.0, seed=3, sample_index=1))
    assert a == b
    assert a != c


def test_stop_strings(tiny: LocalChatModel) -> None:
    text = tiny.generate([USER], SamplingParams(max_tokens=8))[0]
    if len(text) > 2:
        cut = text[1:3]
        stopped = tiny.generate([USER], SamplingParams(max_tokens=8, stop=(cut,)))[0]
        assert cut not in stopped[1:] and text.startswith(stopped)


def test_empty_candidate_rejected(tiny: LocalChatModel) -> None:
    with pytest.raises(CultureLLMError):
        tiny.score([ScoreRequest(USER, ("",), end_of_turn=False)])
    with pytest.raises(CultureLLMError):
        tiny.score([ScoreRequest(USER, ())])


def test_tokenizer_without_template_gets_chatml(smol_tokenizer, tiny_llama) -> None:
    import copy

    tok = copy.deepcopy(smol_tokenizer)
    tok.chat_template = None
    chat = LocalChatModel(tiny_llama(tok, **SMALL), tok, name="t")
    assert chat.eot_ids == [tok.convert_tokens_to_ids("<|im_end|>")]
    assert len(chat.generate([USER], SamplingParams(max_tokens=2))) == 1


def test_unknown_specs(tmp_path) -> None:
    for bad in ("nonsense-model", str(tmp_path), "openai:", "fake:", ""):
        with pytest.raises(UnknownNameError) as e:
            parse_spec(bad)
        assert "bundled" in str(e.value) and "openai:MODEL" in str(e.value) and "fake:NAME" in str(e.value)
    with pytest.raises(CultureLLMError):
        load_local(parse_spec(f"hf:{tmp_path}"))
    with pytest.raises(CultureLLMError, match="no local weights"):
        load_local(parse_spec("openai:gpt-4o"))
    assert parse_spec("openai:gpt-4o").kind == "openai" and not parse_spec("openai:gpt-4o").local
    assert parse_spec("bundled").local and parse_spec("bundled").name == "bundled"


@pytest.mark.slow
def test_bundled_generate_and_score(bundled_model) -> None:
    assert load_model("bundled", cache=False) is bundled_model  # memoised
    out = bundled_model.generate(
        [[{"role": "user", "content": "What is the capital of France? Answer in one word."}]],
        SamplingParams(max_tokens=12),
    )
    assert "Paris" in out[0]
    res = bundled_model.score([ScoreRequest(USER, ("1", "2", "3", "4"))])[0]
    assert len(res.logprobs) == 4 and all(lp < 0 for lp in res.logprobs)
    probs = [math.exp(lp) for lp in res.logprobs]
    assert 0 < sum(probs) <= 1.0 + 1e-6


@pytest.mark.slow
def test_bundled_score_matches_manual_forward(bundled_model) -> None:
    inner = bundled_model
    req = ScoreRequest(USER, ("1", "10"))
    res = inner.score([req, ScoreRequest([{"role": "user", "content": "Hi"}], ("Hello",))])[0]
    for cand, lp in zip(req.candidates, res.logprobs, strict=True):
        assert lp == pytest.approx(manual_logprob(inner, USER, cand, True), abs=1e-3)


def test_adapter_dirs_load_on_base(tmp_path, tiny_model_dir) -> None:
    """A PEFT adapter on a local HF base: via culturellm.json and as a plain adapter dir."""
    from peft import LoraConfig, get_peft_model

    from culturellm.llm.modelref import ModelRef, write_modelref

    base_dir = tmp_path / "base"
    tiny_model_dir(base_dir, seed=1, **SMALL)
    base_model, _ = load_local(parse_spec(f"hf:{base_dir}"))
    peft_model = get_peft_model(
        base_model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    write_modelref(adapter, ModelRef(kind="peft-adapter", base=f"hf:{base_dir}"))

    merged = load_model(str(adapter), cache=False)
    plain_base = load_model(f"hf:{base_dir}", cache=False)
    a = merged.score([ScoreRequest(USER, ("1", "2"))])[0]
    b = plain_base.score([ScoreRequest(USER, ("1", "2"))])[0]
    assert a.logprobs != pytest.approx(b.logprobs, abs=1e-6)  # the adapter changes the model
    from peft import PeftModel

    model, _tok = load_local(parse_spec(str(adapter)))
    assert isinstance(model, PeftModel)
    # a plain PEFT adapter directory: base from adapter_config.json's base_model_name_or_path
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in adapter.iterdir():
        if f.name != "culturellm.json":
            (plain / f.name).write_bytes(f.read_bytes())
    plain_spec = parse_spec(str(plain))
    assert plain_spec.adapter == plain and plain_spec.base is not None and plain_spec.base.path == base_dir
    c = load_model(plain_spec, cache=False).score([ScoreRequest(USER, ("1", "2"))])[0]
    assert c.logprobs == pytest.approx(a.logprobs, abs=1e-5)
    # the cache key of an adapter differs from its base's
    assert merged.model_id != plain_base.model_id


def test_long_prompts_score_in_smaller_chunks(tiny: LocalChatModel) -> None:
    small = LocalChatModel(tiny.model, tiny.tokenizer, name="tiny", batch_size=2, score_tokens=10)
    assert small._rows_per_pass(40) == 1
    reqs = _requests()
    for mode in ("kv", "full"):
        for a, b in zip(score(small, reqs, mode), tiny.score(reqs), strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=2e-4)


def test_gemma_style_tokenizer_gets_gemma_template(smol_tokenizer, tiny_llama) -> None:
    import copy

    from culturellm.llm.hf_compat import GEMMA_TEMPLATE

    tok = copy.deepcopy(smol_tokenizer)
    tok.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    tok.chat_template = None
    chat = LocalChatModel(tiny_llama(tok, **SMALL), tok, name="g")
    assert tok.chat_template == GEMMA_TEMPLATE
    assert tok.convert_ids_to_tokens(chat.eot_ids) == ["<end_of_turn>"]
    text = tok.decode(chat.prompt_ids([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]))
    assert text.endswith("<start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n")


@pytest.mark.slow  # converts / loads the bundled GGUF
def test_converted_bundled_cache_is_keyed_by_the_gguf() -> None:
    import json

    from culturellm.llm.convert import BUNDLED, CONVERTER_VERSION, file_sha256

    d = weights_dir(parse_spec("bundled"))
    gguf = BUNDLED["bundled"].locate()
    source = json.loads((d / "culturellm-source.json").read_text())
    assert source["sha256"] == file_sha256(gguf) and source["converter"] == CONVERTER_VERSION
    assert d.name == f"smollm2-135m-instruct-{source['sha256'][:12]}-c{CONVERTER_VERSION}"
    assert (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file()
    assert weights_dir(parse_spec("bundled")) == d  # no second conversion


def test_shared_prefix_and_length_batching_stay_exact(tiny: LocalChatModel) -> None:
    """Prompts sharing a long system prompt + instruction (the prefix is computed once and reused) and
    of very different lengths (batches closed by score_max_pad) score as one full pass each."""
    system = {"role": "system", "content": "You are a person from the Arabic culture. " * 4}
    texts = ["ok", "this is a much longer text " * 12, "short one", "medium sized text " * 4, "x"]
    reqs = [
        ScoreRequest(
            [system, {"role": "user", "content": f"Is the following text offensive?\n\nText: {t}"}],
            ("offensive", "not offensive"),
        )
        for t in texts
    ]
    chat = LocalChatModel(tiny.model, tiny.tokenizer, name="tiny", batch_size=4, score_rows=3)
    plen, cache = chat._prefix_cache([chat.prompt_ids(r.messages) for r in reqs])
    assert plen >= 40 and cache is not None
    lengths = [len(chat.prompt_ids(r.messages)) - plen for r in reqs]
    assert len(chat._batches(lengths, 4, chat.score_max_pad)) > len(chat._batches(lengths, 4))
    off = LocalChatModel(
        tiny.model, tiny.tokenizer, name="tiny", batch_size=4, score_min_prefix=0, score_max_pad=None
    )
    for req, a, b in zip(reqs, chat.score(reqs), off.score(reqs), strict=True):
        for cand, lp in zip(req.candidates, a.logprobs, strict=True):
            assert lp == pytest.approx(manual_logprob(tiny, req.messages, cand, True), abs=2e-4)
        assert a.logprobs == pytest.approx(b.logprobs, abs=2e-4)


def test_shared_prefix_with_a_sliding_window_model_stays_exact(smol_tokenizer) -> None:
    """Gemma 3 has sliding-window layers: pads between a shared prefix and a short suffix would count as
    distance there, so batches longer than the window run whole prompts (left-padded) instead."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(
        vocab_size=len(smol_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=48,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=1024,
        pad_token_id=2,
        eos_token_id=2,
        bos_token_id=1,
    )
    chat = LocalChatModel(Gemma3ForCausalLM(cfg), smol_tokenizer, name="g", batch_size=4, score_max_pad=2.0)
    assert chat.sliding_window == 48
    system = {"role": "system", "content": "You answer as a person from Jordan would. " * 2}
    reqs = [
        ScoreRequest([system, {"role": "user", "content": f"Text: {t}"}], ("yes", "no way"))
        for t in ("a", "b c d e f g", "word " * 30, "word " * 45, "x y")
    ]
    for req, res in zip(reqs, chat.score(reqs), strict=True):
        for cand, lp in zip(req.candidates, res.logprobs, strict=True):
            assert lp == pytest.approx(manual_logprob(chat, req.messages, cand, True), abs=2e-4), cand


@pytest.mark.parametrize(
    "scale", [0.5, 4.0, 8.0, 16.0]
)  # flat (the nucleus beyond the top k: a sort) to peaked
def test_temperature_top_p_keeps_the_tokens_transformers_keeps(scale):
    """Sampling's warper (temperature, then top-p without a full sort per step) leaves the same logits
    as transformers' TemperatureLogitsWarper + TopPLogitsWarper, so sampled replies do not change."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from culturellm.llm.hf_compat import TemperatureTopP

    gen = torch.Generator().manual_seed(int(scale * 10))
    x = torch.randn(64, 49152, generator=gen) * scale
    want = TopPLogitsWarper(0.9)(None, TemperatureLogitsWarper(0.7)(None, x))
    got = TemperatureTopP(0.7, 0.9)(None, x)
    assert torch.equal(got, want)
    assert (want > -math.inf).sum() < x.numel()  # something was cut
