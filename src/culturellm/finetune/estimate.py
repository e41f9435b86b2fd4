"""Validation and cost estimate for a fine-tuning job, offline (`--dry-run`).

Prices are USD per 1M *training* tokens (tokens per epoch x epochs), from OpenAI's public price list
(checked 2025); the longest matching model-name prefix wins. Override with `--price-per-mtok`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def estimate(records: Sequence[TrainingRecord], base: str, config: FinetuneConfig) -> dict[str, Any]:
    """Examples, tokens, steps and (OpenAI backend) cost; raises DataError for data the API rejects."""
    model = base.removeprefix("openai:")
    tokens, method = count_tokens(records, model)
    total = sum(tokens)
    out: dict[str, Any] = {
        "backend": config.backend,
        "base": base,
        "examples": len(records),
        "tokens_per_epoch": total,
        "max_example_tokens": max(tokens),
        "token_counting": method,
    }
    if config.backend == "openai":
        soft = next((r for r in records if r.target is not None), None)
        if soft is not None:
            raise DataError(
                f"{soft.source}: a soft-label record (target_distribution); the OpenAI fine-tuning API "
                "takes hard labels only: build the set with `culturellm dataset --target sampled`"
            )
        weighted = next((r for r in records if r.weight is not None), None)
        if weighted is not None:
            raise DataError(
                f"{weighted.source}: the OpenAI fine-tuning API takes no per-example loss weight; build "
                'the set without one (`culturellm dataset`, weight "none") or train with --backend local'
            )
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
        out.update(
            epochs=epochs,
            billed_tokens=total * epochs,
            price_per_mtok=price,
            cost_usd=None if price is None else round(total * epochs * price / 1e6, 4),
        )
    else:
        epochs = config.epochs
        per_step = config.batch_size * config.grad_accum
        steps = math.ceil(len(records) / per_step) * epochs
        out.update(
            epochs=epochs,
            steps=config.max_steps or math.ceil(steps),
            cost_usd=0.0,
        )
    return out


def print_estimate(est: dict[str, Any], console: Console) -> None:
    table = Table(title="fine-tuning estimate (dry run: nothing was uploaded or trained)", show_header=False)
    for k, v in est.items():
        if k == "cost_usd" and v is None:
            v = "unknown price for this model: pass --price-per-mtok"
        table.add_row(k, str(v))
    console.print(table)
