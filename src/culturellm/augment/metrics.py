"""Data metrics of an augmented set: similarity distribution, diversity gain, distinct-2."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from culturellm.augment.parse import normalize


def describe(values: Sequence[float]) -> dict[str, float | int]:
    """count, min, p10, median, mean, p90, max of a list of numbers (rounded to 4 places)."""
    if not len(values):
        return {"count": 0}
    a = np.asarray(values, dtype=np.float64)
    q = np.quantile(a, [0.1, 0.5, 0.9])
    return {
        "count": int(a.size),
        "min": round(float(a.min()), 4),
        "p10": round(float(q[0]), 4),
        "median": round(float(q[1]), 4),
        "mean": round(float(a.mean()), 4),
        "p90": round(float(q[2]), 4),
        "max": round(float(a.max()), 4),
    }


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n: unique word n-grams / all word n-grams over the texts (Li et al., 2016)."""
    total, uniq = 0, set()
    for t in texts:
        w = normalize(t).split()
        grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
        total += len(grams)
        uniq.update(grams)
    return round(len(uniq) / total, 4) if total else 0.0


def diversity_gain(new_emb: np.ndarray, seed_emb: np.ndarray) -> float:
    """Mean cosine distance of each new sample to its nearest seed (unit-norm rows)."""
    if new_emb.size == 0 or seed_emb.size == 0:
        return 0.0
    sims = new_emb @ seed_emb.T
    return round(float(np.mean(1.0 - sims.max(axis=1))), 4)
