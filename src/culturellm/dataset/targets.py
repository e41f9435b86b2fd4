"""Answer targets of a training set, one registry: `Target(name, soft, params, build)`.

A target turns one seed question (its options, the culture's survey distribution, its majority) and
the number of its training wordings into the assistant answers of those records and, for a soft
target, the `target_distribution` every one of them carries. `soft` says whether records carry that
distribution (the fine-tuning backend must accept soft labels: `culturellm.finetune.backends`);
`params` names the `DatasetConfig` fields the target reads (recorded in the training set's manifest).

A new target is one `register_target(Target(...))`: `culturellm dataset --target`, a run's
`[dataset] target`, `culturellm ablate --target`, the dataset card and the benchmarks read this
registry.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from culturellm.errors import DataError
from culturellm.registries import Registry

# build(seed, n, rng, config) -> (n answer codes, the soft target or None). `seed` has `options`,
# `distribution` and `majority` (culturellm.seeds.Seed); `rng` is seeded per culture and question.
Build = Callable[[Any, int, random.Random, Any], tuple[list[str], dict[str, float] | None]]


@dataclass(frozen=True)
class Target:
    name: str
    soft: bool  # records carry a target_distribution (soft labels)
    params: tuple[str, ...]  # the DatasetConfig fields it reads
    build: Build
    description: str = ""


_TARGETS: Registry[Target] = Registry("target", "known targets")
register_target = _TARGETS.register  # add (or replace) a target; returns it
unregister_target = _TARGETS.unregister
target_names = _TARGETS.names
get_target = _TARGETS.get  # the registered target `name`; UnknownNameError listing the known ones


def largest_remainder(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Integer counts summing to `total`, proportional to `shares` (Hamilton / largest remainder).
    Ties in the remainders go to the code listed first."""
    if total <= 0 or not shares:
        return {c: 0 for c in shares}
    s = sum(max(v, 0.0) for v in shares.values())
    if s <= 0:
        raise DataError("answer distribution has no positive share")
    quotas = {c: max(v, 0.0) / s * total for c, v in shares.items()}
    counts = {c: int(q) for c, q in quotas.items()}
    rest = total - sum(counts.values())
    order = sorted(quotas, key=lambda c: (-(quotas[c] - counts[c]), list(shares).index(c)))
    for c in order[:rest]:
        counts[c] += 1
    return counts


def distribution_targets(distribution: Mapping[str, float], n: int, rng: random.Random) -> list[str]:
    """n answer codes whose frequencies match `distribution` (largest remainder), in a seeded random order."""
    counts = largest_remainder(distribution, n)
    codes = [c for c, k in counts.items() for _ in range(k)]
    rng.shuffle(codes)
    return codes


def survey_target(options: Mapping[str, str], distribution: Mapping[str, float]) -> dict[str, float]:
    """The survey's shares over every option code (0 for codes nobody chose), summing to 1, rounded."""
    raw = {str(c): max(float(distribution.get(c, 0.0)), 0.0) for c in options}
    total = sum(raw.values())
    if total <= 0:
        raise DataError("answer distribution has no positive share")
    return {c: round(v / total, 6) for c, v in raw.items()}


def _mixed(dist: dict[str, float], majority: str, config: Any) -> dict[str, float]:
    w = config.majority_weight
    return {c: (1.0 - w) * v + (w if c == str(majority) else 0.0) for c, v in dist.items()}


def _sharpened(dist: dict[str, float], majority: str, config: Any) -> dict[str, float]:
    powered = {c: v ** (1.0 / config.sharpen_temperature) if v > 0 else 0.0 for c, v in dist.items()}
    total = sum(powered.values())
    if total <= 0 or not all(v == v and v < float("inf") for v in powered.values()):
        raise DataError("sharpened target: the distribution underflows at this temperature")
    return {c: v / total for c, v in powered.items()}


_SOFT = {"distribution": lambda dist, majority, config: dist, "mixed": _mixed, "sharpened": _sharpened}


def soft_target(
    options: Mapping[str, str], distribution: Mapping[str, float], majority: str, config: Any
) -> dict[str, float]:
    """The `target_distribution` of a built-in soft target (`distribution`, `mixed`, `sharpened`) over
    every option code, summing to 1, rounded to 6 places."""
    if config.target not in _SOFT:
        raise ValueError(f"not a soft target: {config.target}")
    dist = _SOFT[config.target](survey_target(options, distribution), majority, config)
    return {c: round(v, 6) for c, v in dist.items()}


def _majority(seed: Any, n: int, rng: random.Random, config: Any) -> tuple[list[str], None]:
    return [str(seed.majority)] * n, None


def _sampled(seed: Any, n: int, rng: random.Random, config: Any) -> tuple[list[str], None]:
    return distribution_targets(seed.distribution, n, rng), None


def _soft(seed: Any, n: int, rng: random.Random, config: Any) -> tuple[list[str], dict[str, float]]:
    """Soft labels: the assistant turn is the majority code, every record carries the soft target."""
    return [str(seed.majority)] * n, soft_target(seed.options, seed.distribution, seed.majority, config)


register_target(Target("majority", False, (), _majority, "the most common answer (the paper)"))
register_target(
    Target("sampled", False, (), _sampled, "hard codes drawn so each question's wordings follow the survey")
)
register_target(Target("distribution", True, (), _soft, "soft labels: the survey's answer shares"))
register_target(
    Target("mixed", True, ("majority_weight",), _soft, "(1 - w) * distribution + w * one-hot majority")
)
register_target(
    Target("sharpened", True, ("sharpen_temperature",), _soft, "distribution ** (1 / T), renormalised")
)
