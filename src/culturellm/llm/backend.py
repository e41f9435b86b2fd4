"""The one base class of model backends.

A backend implements the two detailed calls, `generate_detailed` (one `Completion` per chat) and
`score_detailed` (one `Scored` per request), each with what it cost and without touching `usage`.
Everything around them lives here once: the public `generate`/`score` of the `ChatModel` protocol and
usage accounting. The response cache (`culturellm.llm.cache.CachingBackend`) wraps a backend and relies
on this contract only: `backend` (a class-level name), `model_id` (what the weights/endpoint are),
`score_tag` (what else changes score results) and the detailed calls. This module knows nothing of it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Literal

from culturellm.llm.base import Chat, SamplingParams, ScoreRequest, ScoreResult, Usage
from culturellm.llm.records import Completion, Scored, account

Kind = Literal["generate", "score"]


class Backend(ABC):
    """A chat model: subclasses set `backend` and implement `generate_detailed`/`score_detailed`.

    name: the model spec it was loaded from (its name in outputs); model_id: what the response cache
    keys on (weights fingerprint, endpoint...); score_tag: what else than the model changes the numbers
    `score` gives (an HTTP backend's scoring method), "" when nothing does; the response cache keys
    score entries on it; usage: what this object's calls cost.
    """

    backend: ClassVar[str] = "backend"
    score_tag: str = ""

    def __init__(self, name: str, model_id: str | None = None) -> None:
        self.name = name
        self.model_id = model_id or name
        self.usage = Usage()
        self._usage_lock = threading.Lock()

    @abstractmethod
    def generate_detailed(
        self, requests: Sequence[Chat], params: SamplingParams | None = None
    ) -> list[Completion]:
        """One `Completion` per chat request (the assistant reply and what it cost)."""

    @abstractmethod
    def score_detailed(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        """One `Scored` per request, candidates in the given order."""

    def generate(self, requests: Sequence[Chat], params: SamplingParams | None = None) -> list[str]:
        """One text per request (the assistant reply)."""
        return [c.text for c in self.answer("generate", requests, params or SamplingParams())]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """One ScoreResult per request, candidates in the given order."""
        return [s.result for s in self.answer("score", requests)]

    def answer(
        self,
        kind: Kind,
        requests: Sequence[Chat] | Sequence[ScoreRequest],
        params: SamplingParams | None = None,
    ) -> list[Completion] | list[Scored]:
        """The detailed answers of one call, counted in `usage` (cached answers as hits)."""
        requests = list(requests)
        if not requests:
            return []
        done: list[Completion] | list[Scored]
        if kind == "generate":
            done = self.generate_detailed(requests, params)  # type: ignore[arg-type]
        else:
            done = self.score_detailed(requests)  # type: ignore[arg-type]
        with self._usage_lock:
            account(self.usage, kind, done)
        return done
