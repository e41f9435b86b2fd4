"""The one base class of model backends.

A backend implements the two detailed calls, `generate_detailed` (one `Completion` per chat) and
`score_detailed` (one `Scored` per request), each with what it cost and without touching `usage`.
Everything around them lives here once: the public `generate`/`score` of the `ChatModel` protocol,
usage accounting, and the response-cache hook (`with_cache`). This is the contract the cache relies on:
`backend` (a class-level name), `model_id` (what the weights/endpoint are), and the detailed calls.
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from culturellm.llm.base import Chat, SamplingParams, ScoreRequest, ScoreResult, Usage
from culturellm.llm.records import Completion, Scored, account

if TYPE_CHECKING:
    from typing import Self

    from culturellm.llm.cache import ResponseCache

Kind = Literal["generate", "score"]


class Backend(ABC):
    """A chat model: subclasses set `backend` and implement `generate_detailed`/`score_detailed`.

    name: the model spec it was loaded from (its name in outputs); model_id: what the response cache
    keys on (weights fingerprint, endpoint...); usage: what this object's calls cost.
    """

    backend: ClassVar[str] = "backend"
    cache: ResponseCache | None = None

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
        """The detailed answers of one call, from the cache where it has them, counted in `usage`."""
        requests = list(requests)
        if not requests:
            return []
        done: list[Completion] | list[Scored]
        if self.cache is not None:
            done = self.cache.answer(self, kind, requests, params)
        elif kind == "generate":
            done = self.generate_detailed(requests, params)  # type: ignore[arg-type]
        else:
            done = self.score_detailed(requests)  # type: ignore[arg-type]
        with self._usage_lock:
            account(self.usage, kind, done)
        return done

    def with_cache(self, cache: ResponseCache | None) -> Self:
        """This backend answering through `cache` (None: not cached), with usage of its own; the
        weights, client and locks are shared with this object."""
        view = copy.copy(self)
        view.cache = cache
        view.usage = Usage()
        view._usage_lock = threading.Lock()
        return view
