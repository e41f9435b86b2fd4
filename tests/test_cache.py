"""Response cache: hits/misses, keys, persistence, stats, failures cache nothing."""

from __future__ import annotations

import threading

import pytest

from culturellm.llm import SamplingParams, ScoreRequest
from culturellm.llm.base import ScoreResult
from culturellm.llm.cache import CachedChatModel, ResponseCache, generate_key, score_key
from culturellm.llm.records import Completion, Scored

CHAT = [{"role": "user", "content": "hello"}]


class Echo:
    """A deterministic backend that records the calls that reach it (tests the cache itself)."""

    backend = "echo"

    def __init__(self, fail: bool = False) -> None:
        self.name = self.model_id = "echo-1"
        self.calls: list[int] = []
        self.fail = fail
        self.lock = threading.Lock()

    def generate_detailed(self, requests, params):
        if self.fail:
            raise ConnectionError("backend down")
        with self.lock:
            self.calls.append(len(requests))
        return [
            Completion(f"{r[-1]['content']}|{params.temperature}|{params.sample_index}", 3, 2, 0.01, 0.1)
            for r in requests
        ]

    def score_detailed(self, requests):
        if self.fail:
            raise ConnectionError("backend down")
        with self.lock:
            self.calls.append(len(requests))
        return [
            Scored(
                ScoreResult(tuple(-float(len(c)) for c in r.candidates), tuple(1 for _ in r.candidates)), 5
            )
            for r in requests
        ]


def test_generate_hits_and_misses(tmp_path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    inner = Echo()
    m = CachedChatModel(inner, cache)
    p = SamplingParams(max_tokens=5)
    other = [{"role": "user", "content": "bye"}]
    assert m.generate([CHAT, other, CHAT], p) == ["hello|0.0|0", "bye|0.0|0", "hello|0.0|0"]
    assert inner.calls == [2]  # duplicate computed once
    assert m.generate([other, CHAT], p) == ["bye|0.0|0", "hello|0.0|0"]
    assert inner.calls == [2]
    assert m.usage.requests == 2 and m.usage.cache_hits == 3
    assert m.usage.prompt_tokens == 6 and m.usage.cost_usd == pytest.approx(0.02)
    # every sampling parameter is part of the key, the sample index included
    m.generate([CHAT], SamplingParams(max_tokens=5, temperature=0.7, sample_index=1))
    m.generate([CHAT], SamplingParams(max_tokens=5, temperature=0.7, sample_index=2))
    m.generate([CHAT], SamplingParams(max_tokens=6))
    assert inner.calls == [2, 1, 1, 1]
    stats = cache.stats()
    assert stats["entries"] == 5 and stats["hits"] == 3 and stats["misses"] == 5
    assert stats["tokens_saved"] == 10 and stats["cost_saved_usd"] == pytest.approx(0.02)
    # persists across processes/objects
    again = CachedChatModel(Echo(), ResponseCache(tmp_path / "r.sqlite"))
    assert again.generate([CHAT], p) == ["hello|0.0|0"] and again.inner.calls == []


def test_keys() -> None:
    g = SamplingParams()
    assert generate_key("a", "m", CHAT, g) == generate_key("a", "m", [dict(CHAT[0])], SamplingParams())
    assert generate_key("a", "m", CHAT, g) != generate_key("b", "m", CHAT, g)
    assert generate_key("a", "m", CHAT, g) != generate_key("a", "m2", CHAT, g)
    # greedy decoding ignores seed and top_p; sampling does not
    assert generate_key("a", "m", CHAT, SamplingParams(seed=1)) == generate_key("a", "m", CHAT, g)
    t = SamplingParams(temperature=1.0)
    assert generate_key("a", "m", CHAT, t) != generate_key(
        "a", "m", CHAT, SamplingParams(temperature=1.0, seed=1)
    )
    s = ScoreRequest(CHAT, ("1", "2"))
    assert score_key("a", "m", s) != score_key("a", "m", ScoreRequest(CHAT, ("1", "2"), end_of_turn=False))
    assert score_key("a", "m", s) != score_key("a", "m", ScoreRequest(CHAT, ("2", "1")))


def test_score_cached(tmp_path) -> None:
    inner = Echo()
    m = CachedChatModel(inner, ResponseCache(tmp_path / "r.sqlite"))
    reqs = [ScoreRequest(CHAT, ("a", "bbb")), ScoreRequest(CHAT, ("cc",), end_of_turn=False)]
    first = m.score(reqs)
    second = m.score(reqs)
    assert first == second and first[0].logprobs == (-1.0, -3.0)
    assert inner.calls == [2] and m.usage.cache_hits == 2


def test_failed_call_caches_nothing(tmp_path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    m = CachedChatModel(Echo(fail=True), cache)
    with pytest.raises(ConnectionError):
        m.generate([CHAT])
    with pytest.raises(ConnectionError):
        m.score([ScoreRequest(CHAT, ("a",))])
    assert cache.stats()["entries"] == 0 and m.usage.requests == 0


def test_thread_safe(tmp_path) -> None:
    inner = Echo()
    m = CachedChatModel(inner, ResponseCache(tmp_path / "r.sqlite"))
    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(40)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(k, 40, 4):
                assert m.generate([chats[i]]) == [f"q{i}|0.0|0"]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert m.cache.stats()["entries"] == 40
    assert m.generate(chats) == [f"q{i}|0.0|0" for i in range(40)]
    assert sum(inner.calls) == 40


def test_clear(tmp_path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    m = CachedChatModel(Echo(), cache)
    m.generate([CHAT])
    assert cache.clear(model="other") == 0
    assert cache.clear() == 1 and cache.stats()["entries"] == 0 and cache.stats()["misses"] == 0


def test_bundled_cache_hit(tmp_path, bundled_model) -> None:
    """The real local backend behind the cache: a hit returns the same text without a forward pass."""
    inner = getattr(bundled_model, "inner", bundled_model)
    m = CachedChatModel(inner, ResponseCache(tmp_path / "r.sqlite"))
    p = SamplingParams(max_tokens=4)
    a = m.generate([CHAT], p)
    before = inner.usage.as_dict()
    b = m.generate([CHAT], p)
    assert a == b and m.usage.cache_hits == 1 and m.usage.requests == 1
    assert inner.usage.as_dict() == before
    s1 = m.score([ScoreRequest(CHAT, ("hi", "hello"))])
    s2 = m.score([ScoreRequest(CHAT, ("hi", "hello"))])
    assert s1 == s2 and m.usage.cache_hits == 2


def test_cache_cli(tmp_path) -> None:
    from typer.testing import CliRunner

    from culturellm.cli import app
    from culturellm.llm.cache import open_cache

    m = CachedChatModel(Echo(), open_cache())
    m.generate([[{"role": "user", "content": "cli"}]])
    m.generate([[{"role": "user", "content": "cli"}]])
    runner = CliRunner()
    r = runner.invoke(app, ["cache", "stats"])
    assert r.exit_code == 0, r.output
    assert "hits" in r.output and "echo-1" in r.output
    r = runner.invoke(app, ["cache", "clear", "--model", "echo-1", "--yes"])
    assert r.exit_code == 0 and "deleted 1 entries" in r.output
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0 and "SmolLM2" in r.output and "openai:MODEL" in r.output
