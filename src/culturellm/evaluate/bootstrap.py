"""Bootstrap confidence intervals over questions (the percentile bootstrap, numpy, seeded).

An alignment measure is a mean over items (held-out wordings and held-out questions); the items of one
question are not independent (a model that learned a question answers all its wordings alike), so the
resampling unit is the question: each replicate draws questions with replacement and takes every item
of each drawn question. `mean_ci` gives one measure's mean and CI; `difference_ci` the CI of a
difference of two measures on the same questions (paired: both sides resampled with the same draw),
which is what "own survey minus best other survey" needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


def _groups(questions: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct questions (first-seen order) and each item's question index."""
    order = list(dict.fromkeys(str(q) for q in questions))
    index = {q: i for i, q in enumerate(order)}
    return order, np.array([index[str(q)] for q in questions], dtype=int)


def _replicates(values: np.ndarray, groups: np.ndarray, n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """Replicate means of `values` (items x columns) resampling groups with replacement."""
    sums = np.zeros((n_groups, values.shape[1]))
    np.add.at(sums, groups, values)
    counts = np.bincount(groups, minlength=n_groups).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    weights = np.zeros((n_boot, n_groups))  # how often each question is drawn in each replicate
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)
    total_n = weights @ counts
    return (weights @ sums) / total_n[:, None]


def mean_ci(
    values: Sequence[float],
    questions: Sequence[str],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean of `values` (one per item) and its percentile-bootstrap CI resampling `questions` (the
    question id of each item). One question: the CI is the mean itself (nothing to resample)."""
    return difference_ci(values, [0.0] * len(values), questions, n_boot=n_boot, level=level, seed=seed)


def difference_ci(
    a: Sequence[float],
    b: Sequence[float],
    questions: Sequence[str],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """mean(a) − mean(b) over the same items and its CI, both sides resampled with the same draws of
    questions (a paired bootstrap). Returns {"mean", "lo", "hi", "n", "n_questions", "level"}."""
    if not (len(a) == len(b) == len(questions)):
        raise ValueError("a, b and questions differ in length")
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    n = len(a)
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "lo": nan, "hi": nan, "n": 0, "n_questions": 0, "level": level}
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    order, groups = _groups(questions)
    mean = float(diff.mean())
    if len(order) < 2:
        lo = hi = mean
    else:
        reps = _replicates(diff[:, None], groups, len(order), n_boot, seed)[:, 0]
        tail = (1.0 - level) / 2.0
        lo, hi = (float(x) for x in np.quantile(reps, [tail, 1.0 - tail]))
    return {"mean": mean, "lo": lo, "hi": hi, "n": n, "n_questions": len(order), "level": level}


def summary_cis(
    rows: Sequence[Mapping[str, Any]],
    measures: Sequence[str],
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per measure, the mean over per-question rows (an `align` result's "questions"; booleans count
    as 0/1) and its CI resampling question ids."""
    qids = [str(r["question_id"]) for r in rows]
    return {m: mean_ci([float(r[m]) for r in rows], qids, n_boot=n_boot, seed=seed) for m in measures}


def format_ci(ci: Mapping[str, Any], signed: bool = False) -> str:
    """'0.812 [0.770, 0.851]' (signed: '+0.120 [+0.030, +0.200]')."""
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(ci['mean'])} [{f.format(ci['lo'])}, {f.format(ci['hi'])}]"
