"""`fake:NAME`: a deterministic backend registered like the real ones, for plumbing and tests.

No weights are loaded and nothing is sent anywhere. Replies are words of the last user message picked
by a hash of the request (the name, the messages and, when sampling, the seed and sample index), cut at
`max_tokens` words and at stop strings; scores are negative log-probabilities derived from a hash of
(name, messages, candidate, end_of_turn), so the same request always gets the same answer and
different models (names) disagree. Token counts are word counts. `reply(chat, params) -> str` replaces
the reply function (scripted tests); `calls` records (kind, number of requests) of every call that
reaches the backend (not those the response cache answers).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from culturellm.llm.backend import Backend
from culturellm.llm.base import Chat, SamplingParams, ScoreRequest, ScoreResult
from culturellm.llm.records import Completion, Scored

Reply = Callable[[Chat, SamplingParams], str]


def _rng(*parts: Any) -> random.Random:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return random.Random(int.from_bytes(hashlib.sha256(blob).digest()[:8], "big"))


class FakeBackend(Backend):
    """A `Backend` whose answers are a pure function of the request."""

    backend = "fake"

    def __init__(self, name: str = "fake:fake", *, reply: Reply | None = None, **options: Any) -> None:
        super().__init__(name, model_id=name)
        self.reply = reply or self.hashed_reply
        self.options = options  # accepted and ignored: device, dtype, batch_size... of real backends
        self.calls: list[tuple[str, int]] = []

    def hashed_reply(self, chat: Chat, params: SamplingParams) -> str:
        words = " ".join(m["content"] for m in chat if m["role"] == "user").split() or ["ok"]
        sampled = (params.seed, params.sample_index, params.temperature) if params.temperature > 0 else ()
        rng = _rng("generate", self.name, chat, sampled)
        return " ".join(rng.choice(words) for _ in range(min(12, max(1, params.max_tokens))))

    def generate_detailed(
        self, requests: Sequence[Chat], params: SamplingParams | None = None
    ) -> list[Completion]:
        params = params or SamplingParams()
        self.calls.append(("generate", len(requests)))
        out = []
        for chat in requests:
            text = " ".join(self.reply(chat, params).split(" ")[: max(1, params.max_tokens)])
            cut = min([text.find(s) for s in params.stop if s and s in text] or [len(text)])
            prompt_tokens = sum(len(m["content"].split()) for m in chat)
            out.append(
                Completion(
                    text[:cut].strip(),
                    prompt_tokens=prompt_tokens,
                    completion_tokens=len(text[:cut].split()),
                    finish_reason="stop" if cut < len(text) else "length",
                )
            )
        return out

    def score_detailed(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        self.calls.append(("score", len(requests)))
        out = []
        for r in requests:
            ntok = tuple(max(1, len(c.split())) + int(r.end_of_turn) for c in r.candidates)
            lps = tuple(
                -round(_rng("score", self.name, r.messages, c, r.end_of_turn).uniform(0.05, 6.0) * n, 6)
                for c, n in zip(r.candidates, ntok, strict=True)
            )
            prompt_tokens = sum(len(m["content"].split()) for m in r.messages)
            out.append(Scored(ScoreResult(lps, ntok), prompt_tokens=prompt_tokens + sum(ntok)))
        return out
