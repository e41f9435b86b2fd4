"""The HTTP client against a fault-injecting proxy on 127.0.0.1 in front of a real `culturellm serve`
(tiny random model): 429, 500, hung replies, dropped connections, truncated JSON, empty choices and
dropped log-probabilities are retried within the bound, and the outputs equal a fault-free run; a
server that keeps failing gives one error naming the URL (credentials removed)."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from culturellm.errors import CultureLLMError
from culturellm.llm import SamplingParams, ScoreRequest
from culturellm.llm.cache import CachingBackend, ResponseCache
from culturellm.llm.openai_backend import OpenAIChatModel, redact_url
from serve_helpers import cli_process, serving, uvicorn_thread

pytestmark = pytest.mark.slow
FAULTS = ("429", "500", "hang", "drop", "truncated", "empty_choices", "no_logprobs")
HANG_S = 3.0
CLIENT_TIMEOUT = 2.0


class FaultProxy:
    """Forwards to `upstream`; the first time it sees a request body it answers with the next fault
    of `faults` (cycling) instead, unless `faults` is empty; `always` makes every reply that fault."""

    def __init__(self, upstream: str, faults: tuple[str, ...] = FAULTS, always: str | None = None) -> None:
        self.upstream = upstream.removesuffix("/v1")
        self.cycle = itertools.cycle(faults) if faults else None
        self.always = always
        self.seen: set[bytes] = set()
        self.injected: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length") or 0))
                with proxy.lock:
                    fault = proxy.always
                    if fault is None and proxy.cycle and data not in proxy.seen:
                        proxy.seen.add(data)
                        fault = next(proxy.cycle)
                    if fault:
                        proxy.injected.append(fault)
                if fault in ("429", "500"):
                    return self._send(int(fault), json.dumps({"error": {"message": "injected"}}).encode())
                if fault == "hang":
                    time.sleep(HANG_S)
                    return None
                if fault == "drop":
                    self.close_connection = True
                    return None
                status, body = self._upstream(data)
                if fault == "truncated":
                    body = body[: len(body) // 2]
                elif fault == "empty_choices":
                    body = json.dumps({**json.loads(body), "choices": []}).encode()
                elif fault == "no_logprobs":
                    d = json.loads(body)
                    for c in d.get("choices", []):
                        c["logprobs"] = None
                    d.pop("tokens", None)  # /tokenize
                    body = json.dumps(d).encode()
                return self._send(status, body)

            def _upstream(self, data: bytes) -> tuple[int, bytes]:
                req = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=data or None,
                    method=self.command,
                    headers={"content-type": "application/json"},
                )
                try:
                    with urllib.request.urlopen(req, timeout=300) as r:
                        return r.status, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.read()

            def _forward(self, data: bytes) -> None:
                self._send(*self._upstream(data))

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                if status == 429:
                    self.send_header("retry-after-ms", "20")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, tiny_model_dir):
    spec = tiny_model_dir(tmp_path_factory.mktemp("faults") / "tiny", max_position_embeddings=2048)
    yield from serving("--model", spec, "--name", "tiny")


CHATS = [[{"role": "user", "content": f"Question {i}: is this fine? Answer 1 or 2."}] for i in range(4)]
CANDS = ("1", "2", "Not offensive")


def client(url: str, **kw) -> OpenAIChatModel:
    return OpenAIChatModel("tiny", base_url=url, max_retries=4, timeout=CLIENT_TIMEOUT, concurrency=2, **kw)


@pytest.mark.parametrize("mode", ["exact", "first-token"])
def test_faults_are_retried_and_outputs_equal_a_fault_free_run(upstream, mode) -> None:
    reqs = [ScoreRequest(c, CANDS) for c in CHATS]
    params = SamplingParams(max_tokens=4)
    clean = client(upstream, score_mode=mode)
    want_gen, want_score = clean.generate(CHATS, params), clean.score(reqs)
    proxy = FaultProxy(upstream)
    try:
        faulty = client(proxy.url, score_mode=mode)
        assert faulty.generate(CHATS, params) == want_gen
        got = faulty.score(reqs)
        assert [r.method for r in got] == [mode] * len(reqs)
        for a, b in zip(got, want_score, strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-6) and a.num_tokens == b.num_tokens
        assert set(proxy.injected) == set(FAULTS)  # every kind of fault was met and survived
    finally:
        proxy.close()


@pytest.mark.parametrize("fault", ["empty_choices", "truncated", "no_logprobs", "500"])
def test_a_server_that_keeps_failing_is_one_clear_error(upstream, fault) -> None:
    proxy = FaultProxy(upstream, faults=(), always=fault)
    try:
        secret_url = proxy.url.replace("http://", "http://alice:S3CRET@")
        m = OpenAIChatModel("tiny", base_url=secret_url, max_retries=1, timeout=CLIENT_TIMEOUT)
        with pytest.raises(CultureLLMError) as err:
            if fault == "no_logprobs":
                m.score_mode = "first-token"
                m._works["first-token"] = True  # it worked before: now a fault, not a fallback
                m.score([ScoreRequest(CHATS[0], CANDS)])
            else:
                m.generate([CHATS[0]], SamplingParams(max_tokens=2))
        msg = str(err.value)
        assert proxy.url in msg and "S3CRET" not in msg and "alice" not in msg
        assert ("malformed reply after 2 attempts" in msg) == (fault != "500")
    finally:
        proxy.close()


def test_server_without_logprobs_falls_back_to_parsing(upstream) -> None:
    """A server that never returns log-probabilities (nor /tokenize) is scored by parsing replies,
    and each result says so."""
    proxy = FaultProxy(upstream, faults=(), always="no_logprobs")
    try:
        m = OpenAIChatModel("tiny", base_url=proxy.url, max_retries=0, timeout=CLIENT_TIMEOUT)
        res = m.score([ScoreRequest(CHATS[0], CANDS)])[0]
        assert res.method == "parse"
    finally:
        proxy.close()


def test_hung_server_fails_within_the_timeout_and_credentials_never_show(upstream, tmp_path: Path) -> None:
    proxy = FaultProxy(upstream, faults=(), always="hang")
    secret_url = proxy.url.replace("http://", "http://bob:PA55WORD@")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        t0 = time.monotonic()
        r = cli_process(
            "chat", "--model", "openai:tiny", "--base-url", secret_url, "--timeout", "0.5", "hello",
            env=env, timeout=120,
        )  # fmt: skip
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert proxy.url in r.stderr and "PA55WORD" not in r.stderr + r.stdout
        assert time.monotonic() - t0 < 60  # 6 attempts x 0.5 s plus backoff, not 6 x 120 s
    finally:
        proxy.close()
    # a working server behind a URL with credentials: nothing stored or printed holds them
    cache = ResponseCache(tmp_path / "responses.sqlite")
    good = upstream.replace("http://", "http://bob:PA55WORD@")
    m = CachingBackend(OpenAIChatModel("tiny", base_url=good, max_retries=0), cache)
    m.generate([CHATS[0]], SamplingParams(max_tokens=2))
    assert m.model_id == f"tiny@{upstream}" and redact_url(good) == upstream
    assert "PA55WORD" not in json.dumps(cache.stats())
    assert b"PA55WORD" not in (tmp_path / "responses.sqlite").read_bytes()


# --- issue #20: the review server against hostile HTTP (a real uvicorn on 127.0.0.1) ----------------


def _raw(port: int, request: bytes) -> int:
    """Send raw bytes, return the reply's status code."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        reply = b""
        while b"\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def test_review_server_host_check_and_body_limits(tmp_path: Path) -> None:
    """DNS rebinding (a foreign Host) gets 421; a declared or chunked body over the limit gets 413,
    and nothing reaches reviews.jsonl; a normal rating is saved."""
    from culturellm.review.app import make_app

    aug = tmp_path / "aug"
    aug.mkdir()
    rows = [{"id": "s", "question_id": "Q27", "step": "seed", "text": "t", "parent": None},
            {"id": "p", "question_id": "Q27", "step": "paraphrase", "text": "u", "parent": "s"}]  # fmt: skip
    (aug / "augmented.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with uvicorn_thread(make_app(aug)) as port:
        rating = json.dumps({"reviewer": "ann", "id": "p", "rating": "same"}).encode()
        post = b"POST /api/ratings HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        assert _raw(port, b"GET /api/items HTTP/1.1\r\nHost: evil.example\r\n\r\n") == 421
        big = post % b"127.0.0.1" + b"Content-Length: 100000000\r\n\r\n"
        assert _raw(port, big) == 413
        chunk = b"%x\r\n%s\r\n" % (60_000, b"x" * 60_000)
        chunked = post % b"127.0.0.1" + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 3 + b"0\r\n\r\n"
        assert _raw(port, chunked) == 413
        assert not (aug / "reviews.jsonl").exists()
        ok = post % f"127.0.0.1:{port}".encode() + b"Content-Length: %d\r\n\r\n%s" % (len(rating), rating)
        assert _raw(port, ok) == 200
        assert len((aug / "reviews.jsonl").read_text().splitlines()) == 1
