"""Token prices ($ per 1M tokens) for cost estimates, overridable by the user.

The bundled table covers common OpenAI models (list prices, standard tier; check them: prices
change). A user file `paths.data_dir()/prices.toml` (or `prices.json`) adds or overrides entries:

    ["gpt-4o-mini"]
    input = 0.15
    output = 0.60

A model id matches its exact entry, else the longest entry it starts with ("gpt-4o-mini-2024-07-18"
-> "gpt-4o-mini"); fine-tuned ids "ft:BASE:org::id" match "ft:BASE" entries. Unknown models cost 0
(local servers, vLLM, Ollama).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from culturellm import paths
from culturellm.errors import DataError

# $ per 1M tokens: (input, output)
BUNDLED_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o1-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    # fine-tuned models (inference)
    "ft:gpt-4.1": (3.00, 12.00),
    "ft:gpt-4.1-mini": (0.80, 3.20),
    "ft:gpt-4.1-nano": (0.20, 0.80),
    "ft:gpt-4o": (3.75, 15.00),
    "ft:gpt-4o-mini": (0.30, 1.20),
    "ft:gpt-3.5-turbo": (3.00, 6.00),
}


@dataclass(frozen=True)
class PriceTable:
    prices: dict[str, tuple[float, float]]

    def lookup(self, model: str) -> tuple[float, float] | None:
        """(input, output) $/1M tokens for a model id, or None when unknown."""
        if model in self.prices:
            return self.prices[model]
        key = model
        if model.startswith("ft:"):  # ft:gpt-4o-mini-2024-07-18:org:name:id -> ft:gpt-4o-mini...
            key = "ft:" + model[3:].split(":", 1)[0]
        best = max((k for k in self.prices if key.startswith(k)), key=len, default=None)
        return self.prices[best] if best else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        p = self.lookup(model)
        if p is None:
            return 0.0
        return (prompt_tokens * p[0] + completion_tokens * p[1]) / 1_000_000


def _read_user_file(path: Path) -> dict[str, tuple[float, float]]:
    try:
        raw = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(f"{path}: cannot read price table ({e})") from None
    out: dict[str, tuple[float, float]] = {}
    for model, entry in raw.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= set(entry):
            raise DataError(f"{path}: entry '{model}' needs 'input' and 'output' ($ per 1M tokens)")
        try:
            out[str(model)] = (float(entry["input"]), float(entry["output"]))
        except (TypeError, ValueError):
            raise DataError(f"{path}: entry '{model}': prices must be numbers") from None
    return out


def load_prices(user_file: str | Path | None = None) -> PriceTable:
    """The bundled table updated with the user's file (default: data_dir()/prices.toml or .json)."""
    prices = dict(BUNDLED_PRICES)
    if user_file is not None:
        prices.update(_read_user_file(Path(user_file)))
    else:
        for name in ("prices.toml", "prices.json"):
            f = paths.data_dir() / name
            if f.is_file():
                prices.update(_read_user_file(f))
    return PriceTable(prices)
