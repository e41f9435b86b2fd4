"""Every model a command or a run touches is reached through its one `ModelAccess` (issue 32): a run's
`[models] base_url` and `timeout` reach the augmenter and the judge, and `align --timeout` reaches
the model without an environment variable. A real OpenAI-compatible server on 127.0.0.1 records what
it is sent (the openai client sends its timeout as the `x-stainless-read-timeout` header)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from culturellm.augment.prompts import PARAPHRASE_SYSTEM
from culturellm.meaning.judge import SYSTEM as JUDGE_SYSTEM
from culturellm.wvs import load_questions

QUESTION = "Q27"


def _top(tokens: list[tuple[str, float]]) -> dict[str, Any]:
    first = tokens[0]
    return {
        "content": [
            {
                "token": first[0],
                "logprob": first[1],
                "bytes": None,
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in tokens],
            }
        ]
    }


def _reply(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The judge says Yes, the augmenter rewords the seed, anything else answers option 1."""
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    if system == JUDGE_SYSTEM:
        return "Yes", _top([("Yes", -0.05), ("No", -3.0)])
    if system == PARAPHRASE_SYSTEM:
        seed = {q.id: q.text for q in load_questions()}[QUESTION]
        return f"1. {seed} Truly.\n2. Truly, {seed.lower()}\n3. {seed} Indeed.", None
    return "1", _top([(str(i), -float(i)) for i in range(1, 11)])


class Recorder:
    """What the server was sent: (system message, x-stainless-read-timeout) per chat request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []

    def systems(self) -> set[str]:
        return {s for s, _ in self.requests}

    def timeouts(self) -> set[str | None]:
        return {t for _, t in self.requests}


@contextmanager
def openai_server() -> Iterator[tuple[str, Recorder]]:
    seen = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if not self.path.endswith("/chat/completions"):  # no /tokenize: scored by first token
                self._send(404, {"error": {"message": "not here", "type": "not_found", "param": None,
                                           "code": None}})  # fmt: skip
                return
            system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
            seen.requests.append((system, self.headers.get("x-stainless-read-timeout")))
            text, logprobs = _reply(body)
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                      "logprobs": logprobs}  # fmt: skip
            usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
            choices = [choice] * int(body.get("n") or 1)
            self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                             "choices": choices, "usage": usage})  # fmt: skip

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", seen
    finally:
        httpd.shutdown()


def test_align_honours_timeout_without_an_environment_variable(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("CULTURELLM_HTTP_TIMEOUT", raising=False)
    with openai_server() as (url, seen):
        p = cli("align", "--model", "openai:x", "--base-url", url, "--timeout", "7", "-c", "arabic",
                "--no-cache", "--json", "--no-progress")  # fmt: skip
    assert p.code == 0, p.err
    assert seen.requests and seen.timeouts() == {"7.0"}


@pytest.mark.slow
def test_a_runs_judge_goes_to_the_runs_endpoint(tmp_path):
    """[models] base_url and timeout reach the augmenter and the judge (`[augment] judge =
    "openai:judge"`) of the run's augment stage; before, the judge was loaded without them."""
    from culturellm.config import RunConfig
    from culturellm.cultures import get_culture
    from culturellm.runlayout import RunLayout
    from culturellm.stages import STAGES, Run

    with openai_server() as (url, seen):
        cfg = RunConfig(
            cultures=["arabic"],
            models={"augmenter": "openai:aug", "base_url": url, "timeout": 9, "cache": False},
            augment={"questions": [QUESTION], "n": 2, "m": 0, "retries": 0, "checks": [], "t1": -1.0,
                     "check_negation": False, "dup_threshold": 1.0, "judge": "openai:judge",
                     "meaning_filter": "checks"},  # the judge sees every candidate, not the gate's band
        )  # fmt: skip
        run = Run(cfg, RunLayout(tmp_path), [get_culture("arabic")], ["arabic"], {"questions": "q"})
        next(s for s in STAGES if s.name == "augment").run(run)
    assert {PARAPHRASE_SYSTEM, JUDGE_SYSTEM} <= seen.systems()
    assert seen.timeouts() == {"9.0"}
    manifest = json.loads((run.layout.augment_dir / "manifest.json").read_text())
    assert "judge" in json.dumps(manifest)
