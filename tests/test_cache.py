"""Response cache: hits/misses, keys, persistence, stats, failures cache nothing."""

from __future__ import annotations

import threading

import pytest

from culturellm.llm import SamplingParams, ScoreRequest, load_backend, parse_spec
from culturellm.llm.cache import CachingBackend, ResponseCache, generate_key, score_key
from culturellm.llm.fake import FakeBackend

CHAT = [{"role": "user", "content": "hello"}]


def fake(fail: bool = False) -> FakeBackend:
    """The `fake:` backend (deterministic; `calls` records what reaches it), loaded by its spec."""
    backend = load_backend(parse_spec("fake:echo-1"))
    if fail:

        def down(*_a, **_k):
            raise ConnectionError("backend down")

        backend.generate_detailed = backend.score_detailed = down  # type: ignore[method-assign]
    return backend


def reply(chat, params=None) -> str:
    """What the uncached fake backend answers."""
    return load_backend(parse_spec("fake:echo-1")).generate([chat], params)[0]


def test_generate_hits_and_misses(tmp_path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    inner = fake()
    m = CachingBackend(inner, cache)
    p = SamplingParams(max_tokens=5)
    other = [{"role": "user", "content": "bye now"}]
    hello, bye = reply(CHAT, p), reply(other, p)
    assert m.generate([CHAT, other, CHAT], p) == [hello, bye, hello]
    assert inner.calls == [("generate", 2)]  # duplicate computed once
    assert m.generate([other, CHAT], p) == [bye, hello]
    assert inner.calls == [("generate", 2)]
    assert m.usage.requests == 2 and m.usage.cache_hits == 3
    assert m.usage.prompt_tokens == 3 and inner.usage.requests == 0  # the view counts, not the backend
    # every sampling parameter is part of the key, the sample index included
    m.generate([CHAT], SamplingParams(max_tokens=5, temperature=0.7, sample_index=1))
    m.generate([CHAT], SamplingParams(max_tokens=5, temperature=0.7, sample_index=2))
    m.generate([CHAT], SamplingParams(max_tokens=6))
    assert inner.calls == [("generate", 2)] + [("generate", 1)] * 3
    stats = cache.stats()
    assert stats["entries"] == 5 and stats["hits"] == 3 and stats["misses"] == 5
    assert stats["tokens_saved"] == (2 + 5) + (1 + 5)  # the second call's two hits (a repeat saves none)
    # persists across processes/objects
    again = fake()
    assert CachingBackend(again, ResponseCache(tmp_path / "r.sqlite")).generate([CHAT], p) == [hello]
    assert again.calls == []


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
    inner = fake()
    m = CachingBackend(inner, ResponseCache(tmp_path / "r.sqlite"))
    reqs = [ScoreRequest(CHAT, ("a", "bbb")), ScoreRequest(CHAT, ("cc",), end_of_turn=False)]
    first = m.score(reqs)
    second = m.score(reqs)
    assert first == second == fake().score(reqs)
    assert inner.calls == [("score", 2)] and m.usage.cache_hits == 2


def test_failed_call_caches_nothing(tmp_path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    m = CachingBackend(fake(fail=True), cache)
    with pytest.raises(ConnectionError):
        m.generate([CHAT])
    with pytest.raises(ConnectionError):
        m.score([ScoreRequest(CHAT, ("a",))])
    assert cache.stats()["entries"] == 0 and m.usage.requests == 0


def test_thread_safe(tmp_path) -> None:
    inner = fake()
    m = CachingBackend(inner, ResponseCache(tmp_path / "r.sqlite"))
    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(40)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(k, 40, 4):
                assert m.generate([chats[i]]) == [reply(chats[i])]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert m.cache.stats()["entries"] == 40
    assert m.generate(chats) == [reply(c) for c in chats]
    assert sum(n for _, n in inner.calls) == 40


def test_clear(tmp_path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    m = CachingBackend(fake(), cache)
    m.generate([CHAT])
    assert cache.clear(model="other") == 0
    assert cache.clear() == 1 and cache.stats()["entries"] == 0 and cache.stats()["misses"] == 0


def test_bundled_cache_hit(tmp_path, bundled_model) -> None:
    """The real local backend behind the cache: a hit returns the same text without a forward pass."""
    inner = bundled_model
    m = CachingBackend(inner, ResponseCache(tmp_path / "r.sqlite"))
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

    m = CachingBackend(fake(), open_cache())
    m.generate([[{"role": "user", "content": "cli"}]])
    m.generate([[{"role": "user", "content": "cli"}]])
    runner = CliRunner()
    r = runner.invoke(app, ["cache", "stats"])
    assert r.exit_code == 0, r.output
    assert "hits" in r.output and "fake:echo-1" in r.output
    r = runner.invoke(app, ["cache", "clear", "--model", "fake:echo-1", "--yes"])
    assert r.exit_code == 0 and "deleted 1 entries" in r.output
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0 and "SmolLM2" in r.output and "openai:MODEL" in r.output
