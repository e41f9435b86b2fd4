"""`culturellm serve` when clients misbehave (issue 20): a disconnect cancels that request only and the
worker survives it; time and size limits hold per request across all of its prompts, log-prob (echo)
requests included; /health says when the worker is dead. Real servers on 127.0.0.1, tiny random model."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from serve_helpers import http, start_server, stop, uvicorn_thread

pytestmark = pytest.mark.slow
CHAT = [{"role": "user", "content": "Tell me a long story."}]
SEQ_LEN = 600  # token ids per echo prompt: one forward pass each over a 49k vocabulary (~0.1 GB logits)
LONG_LEN = 1000  # the time-limit test's: 64 of them take several seconds even on a fast machine


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir) -> Path:
    return Path(tiny_model_dir(tmp_path_factory.mktemp("faults") / "tiny", max_position_embeddings=8192)[3:])


def _root(url: str) -> str:
    return url.removesuffix("/v1")


def _health(url: str) -> tuple[int, dict]:
    r = http("GET", _root(url) + "/health", timeout=10)
    return r.status_code, r.json()


def _echo_prompts(n: int, length: int = SEQ_LEN) -> list[list[int]]:
    """`n` token-id prompts that share no prefix (each runs its own forward pass)."""
    return [[(i * 7919 + j * 104729) % 40000 + 100 for j in range(length)] for i in range(n)]


def _drop_while_busy(url: str, path: str, payload: dict) -> None:
    """Send a request on a raw socket, wait until the worker runs it, then drop the connection."""
    host, port = _root(url).removeprefix("http://").split(":")
    data = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((host, int(port)))
    try:
        sock.sendall(head + data)
        deadline = time.monotonic() + 60
        while not _health(url)[1]["busy"]:
            assert time.monotonic() < deadline, "the request never started"
            time.sleep(0.01)
    finally:
        sock.close()
    deadline = time.monotonic() + 30
    while _health(url)[1]["busy"]:  # the worker notices and stops this request only
        assert time.monotonic() < deadline, "the worker kept running the dropped request"
        time.sleep(0.02)


def test_twenty_disconnects_leave_the_server_answering(tiny) -> None:
    """10 clients drop mid-generation and 10 mid-log-prob; the next request answers in its normal
    time (today: the worker thread died at the first drop and every later request hung)."""
    proc, url = start_server(
        "--model",
        f"hf:{tiny}",
        "--name",
        "tiny",
        "--max-request-tokens",
        "8000",
        "--max-body-bytes",
        "4000000",
    )
    try:
        plain = {"model": "tiny", "messages": CHAT, "max_tokens": 4, "temperature": 0}
        t0 = time.monotonic()
        assert http("POST", f"{url}/chat/completions", plain, timeout=60).status_code == 200
        normal = time.monotonic() - t0
        generate = {**plain, "max_tokens": 7000}
        echo = {"model": "tiny", "prompt": _echo_prompts(24), "max_tokens": 0, "echo": True, "logprobs": 0}
        before = _health(url)[1]["cancelled"]
        for _ in range(10):
            _drop_while_busy(url, "/v1/chat/completions", generate)
            _drop_while_busy(url, "/v1/completions", echo)
        status, health = _health(url)
        assert status == 200 and health["status"] == "ok" and health["queued"] == 0
        assert health["cancelled"] - before == 20
        t0 = time.monotonic()
        r = http("POST", f"{url}/chat/completions", plain, timeout=60)
        took = time.monotonic() - t0
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"
        assert took < max(5.0, 5 * normal), f"the next request took {took:.1f} s (normally {normal:.1f} s)"
    finally:
        stop(proc)


def test_limits_hold_per_request_across_its_prompts(tiny) -> None:
    """--request-timeout bounds a request of many prompts (generation batches after the first do not
    start once its time is up) and an echo request (scoring stops between forward passes), each with
    one clear error; new tokens, prompts and echo prompt tokens are counted over the whole request."""
    timeout = 2.0
    proc, url = start_server(
        "--model",
        f"hf:{tiny}",
        "--name",
        "tiny",
        "--request-timeout",
        str(timeout),
        "--max-request-tokens",
        "100000",
        "--max-body-bytes",
        "4000000",
        "--max-request-prompts",
        "64",
        "--max-prompt-tokens",
        str(64 * LONG_LEN),
    )
    try:
        many = {"model": "tiny", "prompt": [f"Story number {i}:" for i in range(24)], "max_tokens": 4000}
        echo = {
            "model": "tiny",
            "prompt": _echo_prompts(64, LONG_LEN),
            "max_tokens": 0,
            "echo": True,
            "logprobs": 0,
        }
        for payload in ({**many, "temperature": 0}, echo):
            t0 = time.monotonic()
            r = http("POST", f"{url}/completions", payload, timeout=120)
            took = time.monotonic() - t0
            assert r.status_code == 400 and r.json()["error"]["code"] == "request_timeout", r._body[:300]
            assert "--request-timeout" in r.json()["error"]["message"]
            assert took < timeout + 6, f"a request of many prompts ran {took:.1f} s under a {timeout} s limit"
        assert _health(url)[0] == 200
        over = [  # 20 x 8000 > 100000 new tokens; 40 x 2 > 64 prompts x n; 32 x 2001 > 64 x 1000 tokens
            ({"model": "tiny", "prompt": ["a"] * 20, "max_tokens": 8000}, "max_tokens"),
            ({"model": "tiny", "prompt": ["a"] * 40, "max_tokens": 1, "n": 2}, "prompts"),
            ({**echo, "prompt": _echo_prompts(32, 2 * LONG_LEN + 1)}, "prompt tokens"),
        ]
        for payload, words in over:
            r = http("POST", f"{url}/completions", payload, timeout=60)
            assert r.status_code == 400 and words in r.json()["error"]["message"], r._body[:300]
    finally:
        stop(proc)


def test_health_reports_a_dead_worker(tiny) -> None:
    """/health answers 503 with status "dead" once the worker thread is gone, and a request gets 503
    at once instead of waiting forever."""
    from culturellm.llm import parse_spec
    from culturellm.llm.local_pool import load_local_chat
    from culturellm.serve import make_app

    app = make_app(load_local_chat(parse_spec(f"hf:{tiny}")), "tiny")
    with uvicorn_thread(app) as port:
        url = f"http://127.0.0.1:{port}/v1"
        assert _health(url)[0] == 200 and _health(url)[1]["status"] == "ok"
        worker = app.app.state.worker
        worker.close()  # the thread ends, as it would if anything killed it
        worker._thread.join(10)
        status, health = _health(url)
        assert status == 503 and health["status"] == "dead"
        t0 = time.monotonic()
        r = http("POST", f"{url}/chat/completions", {"model": "tiny", "messages": CHAT, "max_tokens": 2})
        assert r.status_code == 503 and "worker" in r.json()["error"]["message"], r._body[:300]
        assert time.monotonic() - t0 < 5
