"""One `culturellm serve` process, one base model in memory, several culture adapters routed by the
request's `model` name (as vLLM's `--lora-modules name=DIR`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturellm.llm import SamplingParams, ScoreRequest, parse_spec
from culturellm.llm.local_pool import load_local_chat
from culturellm.llm.openai_backend import OpenAIChatModel
from serve_helpers import cli_process, http, serving, torch_threads

pytestmark = pytest.mark.slow
QUESTION = [{"role": "user", "content": "How important is family in your life? Answer 1, 2, 3 or 4."}]


def write_adapter(base: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter of `base` with random (non-zero) weights: a stand-in for a culture fine-tune
    whose outputs really differ from the base's and from another seed's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(
        r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
    )
    peft = get_peft_model(model, cfg)
    peft.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("adapters")
    tiny = Path(tiny_model_dir(d / "tiny", max_position_embeddings=2048)[3:])
    return {
        "tiny": tiny,
        "arabic": write_adapter(tiny, d / "arabic", 1),
        "korean": write_adapter(tiny, d / "korean", 2),
    }


@pytest.fixture(scope="module")
def served(models):
    yield from serving(
        "--model", f"arabic={models['arabic']}", "--model", f"korean={models['korean']}",
        "--model", f"hf:{models['tiny']}", "--name", "arabic", "--name", "korean", "--name", "base",
    )  # fmt: skip


def test_one_server_answers_for_each_adapter_by_name(served, models) -> None:
    listed = [m["id"] for m in http("GET", f"{served}/models").json()["data"]]
    assert listed == ["arabic", "korean", "base"]
    health = http("GET", served.removesuffix("/v1") + "/health").json()
    assert health["models"] == listed and Path(health["base"]) == models["tiny"].resolve()
    params = SamplingParams(max_tokens=8)
    cands = ("1", "2", "3", "4")
    replies, scores = {}, {}
    for name in listed:
        m = OpenAIChatModel(name, base_url=served, max_retries=0)
        replies[name] = m.generate([QUESTION], params)[0]
        scores[name] = m.score([ScoreRequest(QUESTION, cands)])[0]
        assert scores[name].method == "exact"
    # the adapters were made to differ: different replies and answer distributions
    assert replies["arabic"] != replies["korean"]
    assert (
        max(abs(a - b) for a, b in zip(scores["arabic"].logprobs, scores["korean"].logprobs, strict=True))
        > 0.1
    )
    # each name is answered by its own weights: the same as loading that model alone (merged)
    for name, spec in (
        ("arabic", str(models["arabic"])),
        ("korean", str(models["korean"])),
        ("base", f"hf:{models['tiny']}"),
    ):
        alone = load_local_chat(parse_spec(spec))
        with torch_threads(1):
            assert alone.generate([QUESTION], params)[0] == replies[name], name
            ref = alone.score([ScoreRequest(QUESTION, cands)])[0]
        assert scores[name].logprobs == pytest.approx(ref.logprobs, abs=1e-4), name
    r = http("POST", f"{served}/chat/completions", {"model": "french", "messages": QUESTION})
    assert r.status_code == 404 and "'arabic', 'korean', 'base'" in r.json()["error"]["message"]


def test_adapters_of_different_bases_are_refused(models, tmp_path, tiny_model_dir) -> None:
    other_base = Path(tiny_model_dir(tmp_path / "other", seed=3)[3:])
    other = write_adapter(other_base, tmp_path / "other-adapter", 4)
    r = cli_process("serve", "--model", str(models["arabic"]), "--model", str(other))
    assert r.returncode == 2 and "one base model" in r.stderr and "Traceback" not in r.stderr
