"""Validation and cost estimate for a fine-tuning job, offline (`--dry-run`).

Prices are USD per 1M *training* tokens (tokens per epoch x epochs), from OpenAI's public price list
(checked 2025); the longest matching model-name prefix wins. Override with `--price-per-mtok`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from culturellm.errors import DataError
from culturellm.finetune.config import FinetuneConfig
from culturellm.finetune.data import TrainingRecord, count_tokens

# USD per 1M training tokens.
OPENAI_TRAINING_PRICES: dict[str, float] = {
    "gpt-4.1-nano": 1.50,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1": 25.00,
    "gpt-4o-mini": 3.00,
    "gpt-4o": 25.00,
    "gpt-3.5-turbo": 8.00,
    "davinci-002": 6.00,
    "babbage-002": 0.40,
}
# Training tokens allowed per example (context length of fine-tuning), by model-name prefix.
OPENAI_MAX_EXAMPLE_TOKENS: dict[str, int] = {
    "gpt-4.1": 65_536,
    "gpt-4o": 65_536,
    "gpt-3.5-turbo": 16_385,
    "davinci-002": 16_384,
    "babbage-002": 16_384,
}
DEFAULT_MAX_EXAMPLE_TOKENS = 65_536
# (records, base, config, tokens per record) -> the backend's part of the estimate
BackendEstimate = Callable[[Sequence[TrainingRecord], str, FinetuneConfig, list[int]], dict[str, Any]]
OPENAI_MIN_EXAMPLES = 10


def _by_prefix(table: dict[str, Any], model: str) -> Any:
    name = model.removeprefix("openai:").removeprefix("ft:")
    for key in sorted(table, key=len, reverse=True):
        if name.startswith(key):
            return table[key]
    return None


def price_per_mtok(model: str, override: float | None = None) -> float | None:
    """USD per 1M training tokens for a base model (None when unknown and not overridden)."""
    return override if override is not None else _by_prefix(OPENAI_TRAINING_PRICES, model)


def openai_epochs(config: FinetuneConfig) -> int:
    """The API takes a whole number of epochs (1..50)."""
    return max(1, min(50, math.ceil(config.epochs)))


def estimate_with(
    backend_estimate: BackendEstimate, records: Sequence[TrainingRecord], base: str, config: FinetuneConfig
) -> dict[str, Any]:
    """Examples and tokens, then the backend's own part (`TrainBackend.estimate`: epochs, steps, cost;
    it raises DataError for data the backend rejects)."""
    tokens, method = count_tokens(records, base.removeprefix("openai:"))
    out: dict[str, Any] = {
        "backend": config.backend,
        "base": base,
        "examples": len(records),
        "tokens_per_epoch": sum(tokens),
        "max_example_tokens": max(tokens),
        "token_counting": method,
    }
    return out | backend_estimate(records, base, config, tokens)


def openai_estimate(
    records: Sequence[TrainingRecord], base: str, config: FinetuneConfig, tokens: list[int]
) -> dict[str, Any]:
    """The OpenAI fine-tuning API: its limits checked, whole epochs, billed tokens and cost."""
    model = base.removeprefix("openai:")
    if len(records) < OPENAI_MIN_EXAMPLES:
        raise DataError(
            f"{records[0].source.rsplit(':', 1)[0]}: {len(records)} examples; "
            f"the OpenAI fine-tuning API needs at least {OPENAI_MIN_EXAMPLES}"
        )
    limit = _by_prefix(OPENAI_MAX_EXAMPLE_TOKENS, model) or DEFAULT_MAX_EXAMPLE_TOKENS
    for r, n in zip(records, tokens, strict=True):
        if n > limit:
            raise DataError(f"{r.source}: example has ~{n} tokens; {model} allows {limit} per example")
    epochs = openai_epochs(config)
    price = price_per_mtok(model, config.price_per_mtok)
    total = sum(tokens)
    return {
        "epochs": epochs,
        "billed_tokens": total * epochs,
        "price_per_mtok": price,
        "cost_usd": None if price is None else round(total * epochs * price / 1e6, 4),
    }


def local_estimate(
    records: Sequence[TrainingRecord], base: str, config: FinetuneConfig, tokens: list[int]
) -> dict[str, Any]:
    """Local LoRA training: epochs and optimizer steps, no cost."""
    per_step = config.batch_size * config.grad_accum
    steps = math.ceil(len(records) / per_step) * config.epochs
    return {"epochs": config.epochs, "steps": config.max_steps or math.ceil(steps), "cost_usd": 0.0}


def print_estimate(est: dict[str, Any], console: Console) -> None:
    table = Table(title="fine-tuning estimate (dry run: nothing was uploaded or trained)", show_header=False)
    for k, v in est.items():
        if k == "cost_usd" and v is None:
            v = "unknown price for this model: pass --price-per-mtok"
        table.add_row(k, str(v))
    console.print(table)
