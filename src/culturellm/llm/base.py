"""The protocols every model backend implements, and the records they exchange.

`ChatModel.generate` turns chat requests into texts; `ChatModel.score` gives the log-probability of
candidate completions of a chat prompt (how classification and WVS answers are scored).
`Embedder.encode` turns texts into a unit-norm matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
Chat = list[Message]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling parameters. temperature == 0 means greedy. `sample_index` distinguishes repeated
    samples of the same request (it is part of the cache key, so sampled runs replay exactly)."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    sample_index: int = 0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreRequest:
    """Score each candidate completion of the chat prompt `messages` (assistant turn).

    end_of_turn: local backends append the chat template's end-of-turn token to each candidate, so
    that a candidate that is a prefix of another ("1" vs "10") is not favoured. HTTP backends that
    only expose top logprobs of the first tokens ignore it (documented per backend).
    """

    messages: Chat
    candidates: tuple[str, ...]
    end_of_turn: bool = True


@dataclass(frozen=True)
class ScoreResult:
    """Per candidate: summed log-probability, number of scored tokens, and the mean per token.
    `method`: how the backend scored it: "exact" (every candidate token, as local backends do),
    "first-token" (an HTTP server's top log-probabilities of the first token), "parse" (a generated
    reply naming one candidate)."""

    logprobs: tuple[float, ...]
    num_tokens: tuple[int, ...]
    method: str = "exact"

    @property
    def normalized(self) -> tuple[float, ...]:
        return tuple(lp / max(n, 1) for lp, n in zip(self.logprobs, self.num_tokens, strict=True))


@dataclass
class Usage:
    """Counts for one model object: real (paid) requests and tokens, cache hits, estimated cost."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "by_kind": dict(self.by_kind),
        }


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: local (transformers) or remote (OpenAI-compatible)."""

    name: str  # the model spec it was loaded from ("bundled", "openai:gpt-4o", a path...)
    usage: Usage

    def generate(self, requests: Sequence[Chat], params: SamplingParams | None = None) -> list[str]:
        """One text per request (the assistant reply)."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """One ScoreResult per request, candidates in the given order."""
        ...


@runtime_checkable
class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 matrix (len(texts), dim), each row unit-norm."""
        ...
