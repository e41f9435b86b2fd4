"""Per-request results with their cost, shared by backends and the response cache."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from culturellm.llm.base import ScoreResult, Usage


@dataclass(frozen=True, kw_only=True)
class Cost:
    """What one request cost (keyword fields, shared by Completion and Scored)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached: bool = False  # answered from the response cache (costs nothing now)


@dataclass(frozen=True)
class Completion(Cost):
    """One generated reply with what it cost."""

    text: str
    finish_reason: str = "stop"  # "stop" (end of turn or stop string) or "length" (max_tokens)
    token_logprobs: list[dict[str, Any]] | None = None  # per token: token, logprob, top_logprobs


@dataclass(frozen=True)
class Scored(Cost):
    """One score result with what it cost."""

    result: ScoreResult


def account(usage: Usage, kind: str, done: Sequence[Cost]) -> None:
    """Add paid requests to `usage` (requests, tokens, cost by kind); cached answers count as hits."""
    hits = sum(1 for d in done if d.cached)
    usage.cache_hits += hits
    usage.requests += len(done) - hits
    if len(done) > hits:
        usage.by_kind[kind] = usage.by_kind.get(kind, 0) + len(done) - hits
    for d in done:
        if d.cached:
            continue
        usage.prompt_tokens += d.prompt_tokens
        usage.completion_tokens += d.completion_tokens
        usage.cost_usd += d.cost_usd
