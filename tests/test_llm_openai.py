"""OpenAI-compatible backend pieces that need no server: candidate matching, parsing, prices, keys."""

from __future__ import annotations

import math

import pytest

from culturellm.errors import CultureLLMError, DataError
from culturellm.llm.openai_backend import OpenAIChatModel, _score_from_top, parse_choice
from culturellm.llm.pricing import load_prices


def test_score_from_top_logprobs() -> None:
    top = [("1", -0.5), (" 1", -2.0), ("2", -1.5), ("Ne", -3.0)]
    res = _score_from_top(("1", "2", "3", "Never"), top)
    assert res.logprobs[0] == pytest.approx(math.log(math.exp(-0.5) + math.exp(-2.0)))
    assert res.logprobs[1] == -1.5
    assert res.logprobs[2] == pytest.approx(-3.0 - math.log(2))  # floor below the lowest returned
    assert res.logprobs[3] == -3.0  # first-token (prefix) match
    assert res.num_tokens == (1, 1, 1, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 1),
        ("2.", 1),
        ("**3**", 2),
        ("The answer is 4.", 3),
        ("10", 4),
        ("1 or 2", None),
        ("I cannot answer that.", None),
        ("Rather important", None),
    ],
)
def test_parse_choice(text: str, expected: int | None) -> None:
    assert parse_choice(text, ("1", "2", "3", "4", "10")) == expected


def test_prices_and_user_override(tmp_path, monkeypatch) -> None:
    table = load_prices()
    assert table.lookup("gpt-4o-mini-2024-07-18") == table.lookup("gpt-4o-mini")
    assert table.lookup("gpt-4o-2024-08-06") == table.prices["gpt-4o"]
    assert table.lookup("ft:gpt-4o-mini-2024-07-18:org:culture:abc") == table.prices["ft:gpt-4o-mini"]
    assert table.lookup("llama3") is None and table.cost("llama3", 100, 100) == 0.0
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    user = tmp_path / "prices.toml"
    user.write_text('["gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n["llama3"]\ninput = 0.1\noutput = 0.1\n')
    t2 = load_prices(user)
    assert t2.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(1.0) and t2.lookup("llama3") == (0.1, 0.1)
    bad = tmp_path / "bad.json"
    bad.write_text('{"m": {"input": 1}}')
    with pytest.raises(DataError, match=r"bad\.json"):
        load_prices(bad)
    # the data_dir() file is picked up by default
    from culturellm import paths

    (paths.data_dir() / "prices.toml").write_text(user.read_text())
    try:
        assert load_prices().lookup("llama3") == (0.1, 0.1)
    finally:
        (paths.data_dir() / "prices.toml").unlink()


def test_official_api_needs_a_key(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(CultureLLMError, match="OPENAI_API_KEY"):
        OpenAIChatModel("gpt-4o-mini")
    m = OpenAIChatModel("llama3", base_url="http://127.0.0.1:9/v1/")
    assert m.base_url == "http://127.0.0.1:9/v1" and m.model_id == "llama3@http://127.0.0.1:9/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert OpenAIChatModel("x").base_url == "http://127.0.0.1:9/v1"


def test_unreachable_server_is_a_clear_error() -> None:
    from culturellm.llm import SamplingParams

    m = OpenAIChatModel("x", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=5)
    with pytest.raises(CultureLLMError, match=r"cannot reach http://127\.0\.0\.1:9/v1"):
        m.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=2))


def test_retries_on_429_and_5xx_then_succeeds() -> None:
    """A stdlib HTTP server on 127.0.0.1 that answers 429, then 503, then a completion."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from culturellm.llm import SamplingParams

    statuses = [429, 503]
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            status = statuses.pop(0) if statuses else 200
            seen.append(status)
            body = {"error": {"message": "busy", "type": "server_error", "param": None, "code": None}}
            if status == 200:
                body = {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": " ok "},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
                }
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if status == 429:
                self.send_header("retry-after-ms", "50")
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        m = OpenAIChatModel("gpt-4o-mini", base_url=url, max_retries=3, timeout=10)
        assert m.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=2)) == ["ok"]
        assert seen == [429, 503, 200]
        assert m.usage.prompt_tokens == 7 and m.usage.completion_tokens == 1
        assert m.usage.cost_usd == pytest.approx((7 * 0.15 + 1 * 0.60) / 1e6)
        statuses.extend([503, 503])
        few = OpenAIChatModel("gpt-4o-mini", base_url=url, max_retries=1, timeout=10)
        with pytest.raises(CultureLLMError, match="HTTP 503"):
            few.generate([[{"role": "user", "content": "hi"}]])
    finally:
        httpd.shutdown()


def test_urls_lose_credentials_before_they_are_stored() -> None:
    from culturellm.config import RunConfig
    from culturellm.llm import load_model
    from culturellm.llm.openai_backend import redact_url

    assert redact_url("http://user:PASS@host:8000/v1") == "http://host:8000/v1"
    assert redact_url("https://tok@[::1]/v1") == "https://[::1]/v1"
    assert redact_url("http://127.0.0.1:9/v1") == "http://127.0.0.1:9/v1"
    m = OpenAIChatModel("llama3", base_url="http://user:PASS@127.0.0.1:9/v1")
    assert "PASS" not in m.model_id and m.display_url == "http://127.0.0.1:9/v1"
    # the run config: [models] timeout reaches the backend; the run directory's copy has no password
    cfg = RunConfig.model_validate({"models": {"base_url": "http://u:PW@127.0.0.1:9/v1", "timeout": 7}})
    assert "PW" not in cfg.without_credentials().to_toml() and cfg.models.base_url.count("PW") == 1
    llm = load_model("openai:x", base_url=cfg.models.base_url, timeout=cfg.models.timeout, cache=False)
    assert llm.timeout == 7.0 and "PW" not in llm.model_id


def test_timeout_must_be_positive(monkeypatch) -> None:
    with pytest.raises(CultureLLMError, match="positive"):
        OpenAIChatModel("x", base_url="http://127.0.0.1:9/v1", timeout=0)
    # no environment channel: only the timeout passed (a command's --timeout, a run's [models]) counts
    monkeypatch.setenv("CULTURELLM_HTTP_TIMEOUT", "3.5")
    assert OpenAIChatModel("x", base_url="http://127.0.0.1:9/v1").timeout == 120.0
