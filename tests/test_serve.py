"""`culturellm serve` in a subprocess on 127.0.0.1, driven by the `openai` backend and the CLI."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

import pytest

from culturellm.errors import CultureLLMError
from culturellm.llm import SamplingParams, ScoreRequest, load_model
from culturellm.llm.cache import CachingBackend, ResponseCache
from culturellm.llm.openai_backend import OpenAIChatModel
from serve_helpers import cli_process, http, serving, start_server, stop

USER = [{"role": "user", "content": "How important is family in your life? Answer 1, 2, 3 or 4."}]


@pytest.fixture(scope="module")
def server():
    yield from serving("--model", "bundled")


@pytest.fixture(scope="module")
def remote(server):
    return load_model("openai:bundled", base_url=server, cache=False, concurrency=8, max_retries=1)


def test_models_endpoint(server) -> None:
    import openai

    client = openai.OpenAI(base_url=server, api_key="x")
    assert [m.id for m in client.models.list().data] == ["bundled"]


def test_generation_matches_local(remote, bundled_model) -> None:
    chat = [{"role": "user", "content": "What is the capital of France? One word."}]
    p = SamplingParams(max_tokens=12)
    assert remote.generate([chat], p) == bundled_model.generate([chat], p)
    assert remote.usage.prompt_tokens > 0 and remote.usage.completion_tokens > 0
    assert remote.usage.cost_usd == 0.0  # unknown model -> no price


def test_exact_scoring_matches_local(remote, bundled_model) -> None:
    """Over /tokenize + /v1/completions echo, every candidate token (and <|im_end|>) is scored as the
    local backend scores it, multi-token candidates included."""
    cands = ("1", "2", "3", "4", "Not at all important")
    got = remote.score([ScoreRequest(USER, cands)])[0]
    ref = bundled_model.score([ScoreRequest(USER, cands)])[0]
    assert got.method == "exact" and ref.method == "exact"
    assert got.num_tokens == ref.num_tokens and got.num_tokens[0] == 2 and got.num_tokens[-1] > 2
    assert got.logprobs == pytest.approx(ref.logprobs, abs=1e-3)
    raw = remote.score([ScoreRequest(USER, cands, end_of_turn=False)])[0]
    ref = bundled_model.score([ScoreRequest(USER, cands, end_of_turn=False)])[0]
    assert raw.logprobs == pytest.approx(ref.logprobs, abs=1e-3) and raw.num_tokens[0] == 1


def test_first_token_scoring_matches_local_first_token(server, bundled_model) -> None:
    m = load_model("openai:bundled", base_url=server, cache=False, score_mode="first-token")
    cands = ("1", "2", "3", "4")
    got = m.score([ScoreRequest(USER, cands)])[0]
    ref = bundled_model.score([ScoreRequest(USER, cands, end_of_turn=False)])[0]
    assert got.method == "first-token"
    assert got.logprobs == pytest.approx(ref.logprobs, abs=1e-3)
    assert got.num_tokens == (1, 1, 1, 1)


def test_align_over_http_equals_local(server, tmp_path) -> None:
    """`culturellm align --model openai:NAME --base-url URL --json` against `culturellm serve` gives
    the per-question distributions of `culturellm align --model bundled --json` (exact scoring), on
    12 seed questions (a split naming them as held out)."""
    from culturellm.wvs import load_questions

    split = tmp_path / "train.manifest.json"
    split.write_text(json.dumps({"heldout_questions": [q.id for q in load_questions()[:12]]}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CULTURELLM_NO_CACHE": "1", "OMP_NUM_THREADS": "1"}
    args = ["align", "--culture", "arabic", "--json", "--split", str(split)]
    http_run = cli_process(
        *args, "--model", "openai:bundled", "--base-url", server, "--timeout", "600", env=env, timeout=900
    )
    assert http_run.returncode == 0, http_run.stderr[-2000:]
    local_run = cli_process(*args, "--model", "bundled", env=env, timeout=900)
    assert local_run.returncode == 0, local_run.stderr[-2000:]
    over_http, local = json.loads(http_run.stdout), json.loads(local_run.stdout)
    assert over_http["scoring"] == "exact" and local["scoring"] == "exact"
    assert len(over_http["questions"]) == len(local["questions"]) > 10
    for a, b in zip(over_http["questions"], local["questions"], strict=True):
        assert a["question_id"] == b["question_id"] and a["scoring"] == "exact"
        assert a["model_distribution"].keys() == b["model_distribution"].keys()
        for code, p in a["model_distribution"].items():
            assert p == pytest.approx(b["model_distribution"][code], abs=1e-3)
    assert over_http["one_minus_jsd"] == pytest.approx(local["one_minus_jsd"], abs=1e-3)


def test_concurrent_requests_are_micro_batched(remote, server) -> None:
    chats = [[{"role": "user", "content": f"Write the number {i} in words."}] for i in range(8)]
    out = remote.generate(chats, SamplingParams(max_tokens=3))
    assert len(out) == 8 and all(isinstance(t, str) and t for t in out)
    health = http("GET", server.removesuffix("/v1") + "/health").json()
    assert health["largest_batch"] > 1
    # sampled requests with a seed replay
    s0 = SamplingParams(max_tokens=3, temperature=1.0, seed=5)
    assert remote.generate([chats[0]], s0) == remote.generate([chats[0]], s0)


def test_bad_requests_get_openai_errors(server, remote) -> None:
    r = http("POST", f"{server}/chat/completions", {"model": "bundled", "messages": [], "max_tokens": 3})
    assert r.status_code == 400
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["param"] == "messages"
    r = http("POST", f"{server}/chat/completions", {"model": "bundled", "messages": USER, "temperature": 9})
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"
    r = http("POST", f"{server}/chat/completions", {"model": "gpt-9", "messages": USER})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = http(
        "POST",
        f"{server}/chat/completions",
        content=b"{not json",
    )
    assert r.status_code == 400
    r = http(
        "POST", f"{server}/completions", {"model": "bundled", "prompt": "Paris is", "max_tokens": 100000}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    with pytest.raises(CultureLLMError, match="HTTP 400"):
        remote.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=100000))


def test_completions_endpoint(server) -> None:
    r = http(
        "POST",
        f"{server}/completions",
        {
            "model": "bundled",
            "prompt": ["The capital of France is"],
            "max_tokens": 3,
            "temperature": 0,
            "logprobs": 2,
        },
        timeout=120,
    )
    body = r.json()
    assert r.status_code == 200, body
    choice = body["choices"][0]
    assert "Paris" in choice["text"] and len(choice["logprobs"]["tokens"]) == 3
    assert body["usage"]["completion_tokens"] == 3


def test_cache_hits_and_misses_over_http(server) -> None:
    m = load_model("openai:bundled", base_url=server, cache=True)
    chat = [{"role": "user", "content": "Say yes."}]
    p = SamplingParams(max_tokens=4)
    a = m.generate([chat], p)
    b = m.generate([chat], p)
    assert a == b and m.usage.requests == 1 and m.usage.cache_hits == 1
    s1 = m.score([ScoreRequest(USER, ("1", "2"))])
    s2 = m.score([ScoreRequest(USER, ("1", "2"))])
    assert s1 == s2 and m.usage.cache_hits == 2


def test_cli_chat_and_cache_stats(server) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = cli_process(
        "chat", "--model", "openai:bundled", "--base-url", server, "--max-tokens", "12",
        "What is the capital of France?", env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout
    r = cli_process("cache", "stats", "--json", env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["entries"] >= 1 and stats["misses"] >= 1
    r = cli_process("chat", "--model", "no-such-model", "hi", env=env, timeout=60)
    assert r.returncode == 2 and "unknown model spec 'no-such-model'" in r.stderr
    assert "openai:MODEL" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # a real server process, killed
def test_server_dying_mid_run(tmp_path: Path, tiny_model_dir) -> None:
    """Kill the server while a request is in flight: a clear error naming the URL, nothing cached."""
    spec = tiny_model_dir(tmp_path / "tiny", max_position_embeddings=8192, tie_word_embeddings=False)
    proc, url = start_server("--model", spec, "--name", "tiny", "--max-request-tokens", "8000")
    try:
        cache = ResponseCache(tmp_path / "responses.sqlite")
        inner = OpenAIChatModel("tiny", base_url=url, max_retries=1, timeout=30, concurrency=2)
        m = CachingBackend(inner, cache)
        assert len(m.generate([USER], SamplingParams(max_tokens=2))) == 1
        assert cache.stats()["entries"] == 1
        errors: list[BaseException] = []

        def long_call() -> None:
            try:
                m.generate(
                    [[{"role": "user", "content": f"story {i}"}] for i in range(2)],
                    SamplingParams(max_tokens=6000),
                )
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=long_call)
        t.start()
        time.sleep(1.5)
        stop(proc)
        t.join(timeout=120)
        assert not t.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], CultureLLMError)
        assert url in str(errors[0])
        assert cache.stats()["entries"] == 1  # nothing from the failed call
        with pytest.raises(CultureLLMError, match="cannot reach"):
            m.generate([[{"role": "user", "content": "again"}]])
    finally:
        stop(proc)


def test_generate_and_parse_fallback(server) -> None:
    """Without logprobs, scoring generates a reply and parses the candidate it names."""
    m = load_model("openai:bundled", base_url=server, cache=False, score_mode="parse")
    cands = ("1", "2", "3", "4")
    res = m.score([ScoreRequest(USER, cands)])[0]
    assert m.usage.by_kind["score"] == 1 and m.usage.completion_tokens > 0
    if m.usage.by_kind.get("score_unparsed"):
        assert res.logprobs == pytest.approx(tuple(-math.log(4) for _ in cands))
    else:
        assert sorted(res.logprobs)[-1] == 0.0
        assert sorted(res.logprobs)[:-1] == [float("-inf")] * 3
