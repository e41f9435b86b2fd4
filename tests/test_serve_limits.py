"""`culturellm serve` under hostile or careless clients (tiny random model, real server on 127.0.0.1):
API key, body size, token and time limits, bad numbers, client disconnects, short requests first."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from culturellm.errors import CultureLLMError
from culturellm.llm import SamplingParams
from culturellm.llm.openai_backend import OpenAIChatModel
from serve_helpers import http, serving, start_server, stop

pytestmark = pytest.mark.slow
KEY = "k-3f9c1d"
CHAT = [{"role": "user", "content": "Tell me a long story."}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir) -> Path:
    return Path(tiny_model_dir(tmp_path_factory.mktemp("limits") / "tiny", max_position_embeddings=8192)[3:])


@pytest.fixture(scope="module")
def guarded(tiny):
    yield from serving(
        "--model", f"hf:{tiny}", "--name", "tiny", "--max-body-bytes", "4000", "--max-request-tokens", "6000",
        env={"CULTURELLM_API_KEY": KEY},
    )  # fmt: skip


def body(max_tokens: int = 4, **kw) -> dict:
    return {"model": "tiny", "messages": CHAT, "max_tokens": max_tokens, "temperature": 0, **kw}


def test_api_key_is_required(guarded) -> None:
    url = f"{guarded}/chat/completions"
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY}):
        r = http("POST", url, body(), headers=headers)
        assert r.status_code == 401, headers
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["code"] == "invalid_api_key"
    assert http("GET", f"{guarded}/models").status_code == 401
    assert http("POST", guarded.removesuffix("/v1") + "/tokenize", {"prompt": "x"}).status_code == 401
    ok = http("POST", url, body(), headers={"authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["role"] == "assistant"
    assert http("GET", guarded.removesuffix("/v1") + "/health").status_code == 200  # probes need no key
    client = OpenAIChatModel("tiny", base_url=guarded, api_key=KEY, max_retries=0)
    assert len(client.generate([CHAT], SamplingParams(max_tokens=2))) == 1
    with pytest.raises(CultureLLMError, match="authentication failed"):
        OpenAIChatModel("tiny", base_url=guarded, api_key="nope", max_retries=0).generate([CHAT])


def test_bad_input_gets_400_or_413_never_a_traceback(guarded) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    url = f"{guarded}/chat/completions"
    cases = [
        (body(seed=1e23), 400, "seed"),
        (body(seed="x"), 400, "seed"),
        (body(temperature=float("inf")), 400, "temperature"),
        (body(max_tokens=7000), 400, "max_tokens"),  # over --max-request-tokens
        (body(n=10**9), 400, "n"),
        ({"model": "tiny", "prompt": [10**12], "max_tokens": 1}, 400, "prompt"),
    ]
    for payload, status, param in cases:
        target = url if "messages" in payload else f"{guarded}/completions"
        r = http("POST", target, content=json.dumps(payload).encode(), headers=auth)
        text = r._body.decode()
        assert r.status_code == status, (payload, text)
        assert "Traceback" not in text and param in r.json()["error"]["message"]
    big = {**body(), "messages": [{"role": "user", "content": "x" * 10_000}]}
    r = http("POST", url, big, headers=auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def _health(url: str) -> dict:
    return http("GET", url.removesuffix("/v1") + "/health", timeout=10).json()


def test_disconnected_request_frees_the_worker_within_a_second(guarded) -> None:
    """A client that sends a long generation and goes away: generation stops at the next decoding
    step after the server notices (it checks every 50 ms), so the worker is idle within a second."""
    host, port = guarded.removeprefix("http://").removesuffix("/v1").split(":")
    payload = json.dumps(body(max_tokens=6000)).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    before = _health(guarded)["cancelled"]
    sock = socket.create_connection((host, int(port)))
    sock.sendall(head + payload)
    deadline = time.monotonic() + 60
    while not _health(guarded)["busy"]:
        assert time.monotonic() < deadline, "the long request never started"
        time.sleep(0.05)
    time.sleep(0.5)
    assert _health(guarded)["busy"]  # still generating
    sock.close()
    gone = time.monotonic()
    while _health(guarded)["busy"]:
        assert time.monotonic() - gone < 10, "the worker kept generating for the vanished client"
        time.sleep(0.02)
    freed = time.monotonic() - gone
    assert freed < 1.0, f"worker freed {freed:.2f} s after the disconnect"
    assert _health(guarded)["cancelled"] == before + 1


def test_time_limit_and_short_requests_first(tiny) -> None:
    """--request-timeout cuts a long generation (finish_reason length); a short request queued behind
    a long one that is also waiting runs first."""
    proc, url = start_server(
        "--model", f"hf:{tiny}", "--name", "tiny", "--request-timeout", "2", "--max-request-tokens", "8000"
    )
    try:
        done: dict[str, float] = {}
        replies: dict[str, dict] = {}

        def call(tag: str, max_tokens: int) -> None:
            r = http("POST", f"{url}/chat/completions", body(max_tokens=max_tokens), timeout=120)
            replies[tag] = r.json()
            done[tag] = time.monotonic()

        first = threading.Thread(target=call, args=("long1", 7000))
        first.start()
        while not _health(url)["busy"]:
            time.sleep(0.02)
        later = [threading.Thread(target=call, args=("long2", 7000))]
        later[0].start()
        time.sleep(0.3)
        later.append(threading.Thread(target=call, args=("short", 2)))
        later[1].start()
        for t in [first, *later]:
            t.join(timeout=120)
        assert replies["long1"]["choices"][0]["finish_reason"] == "length"
        assert replies["long1"]["usage"]["completion_tokens"] < 7000  # cut by the time limit
        assert done["short"] < done["long2"], "the short request waited behind the long one"
    finally:
        stop(proc)
