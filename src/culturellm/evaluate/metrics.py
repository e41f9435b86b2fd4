"""Classification metrics: macro-F1 over the task's full label set, accuracy, per-class F1, a seeded
bootstrap confidence interval, and the expected macro-F1 of the majority-class and uniform-random
baselines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

UNPARSEABLE = "<unparseable>"  # the prediction of a reply the parser could not map to a label


def _codes(y_true: Sequence[str], y_pred: Sequence[str | None], labels: Sequence[str]) -> tuple[Any, Any]:
    index = {lab: i for i, lab in enumerate(labels)}
    k = len(labels)
    t = np.array([index[y] for y in y_true], dtype=np.int64)
    p = np.array([index.get(y, k) if y is not None else k for y in y_pred], dtype=np.int64)  # k = none
    return t, p


def _f1_from_codes(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """Per-class F1 for integer codes (prediction code k = no label); zero_division=0."""
    tp = np.bincount(t[t == p], minlength=k + 1)[:k].astype(float)
    support = np.bincount(t, minlength=k + 1)[:k].astype(float)
    predicted = np.bincount(p, minlength=k + 1)[:k].astype(float)
    denom = support + predicted
    return np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str | None],
    labels: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """macro-F1 (scikit-learn, labels = the full label set, zero_division=0), accuracy, per-class F1 and a
    percentile bootstrap CI of macro-F1 (`n_boot` resamples of the examples, seeded).

    Predictions outside `labels` (None, or UNPARSEABLE) count as wrong for every class."""
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(labels)
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    n = len(y_true)
    if n == 0:
        return {
            "macro_f1": None,
            "macro_f1_ci": None,
            "accuracy": None,
            "per_class_f1": {lab: None for lab in labels},
            "n": 0,
        }
    pred = [y if y is not None else UNPARSEABLE for y in y_pred]
    per = f1_score(y_true, pred, labels=labels, average=None, zero_division=0)
    macro = float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0))
    acc = float(accuracy_score(y_true, pred))
    lo = hi = macro
    if n_boot > 0 and n > 1:
        t, p = _codes(y_true, y_pred, labels)
        rng = np.random.default_rng(seed)
        k = len(labels)
        stats = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, n)
            stats[b] = _f1_from_codes(t[idx], p[idx], k).mean()
        alpha = (1 - ci) / 2
        lo, hi = (float(x) for x in np.quantile(stats, [alpha, 1 - alpha]))
    return {
        "macro_f1": macro,
        "macro_f1_ci": [lo, hi],
        "accuracy": acc,
        "per_class_f1": {lab: float(f) for lab, f in zip(labels, per, strict=True)},
        "n": n,
    }


def majority_baseline(y_true: Sequence[str], labels: Sequence[str]) -> float:
    """Macro-F1 of always predicting the most frequent label of these examples (ties: first in label
    order). Deterministic, so its expectation is its value: F1 = 2p/(1+p) on that class, 0 on the
    others, divided by the number of labels."""
    from sklearn.metrics import f1_score

    if not y_true:
        return 0.0
    counts = Counter(y_true)
    top = max(labels, key=lambda lab: (counts.get(lab, 0), -list(labels).index(lab)))
    return float(f1_score(y_true, [top] * len(y_true), labels=list(labels), average="macro", zero_division=0))


def _binom_support(n: int, q: float, eps: float = 1e-13) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import binom

    if n == 0:
        return np.array([0]), np.array([1.0])
    lo, hi = (int(x) for x in binom.ppf([eps, 1 - eps], n, q))
    lo, hi = max(lo - 1, 0), min(hi + 1, n)
    ks = np.arange(lo, hi + 1)
    return ks, binom.pmf(ks, n, q)


def random_baseline(y_true: Sequence[str], labels: Sequence[str]) -> float:
    """Expected macro-F1 of guessing each label uniformly at random (1/K each), computed exactly.

    For a class with n_c true examples out of n: TP ~ Bin(n_c, 1/K) and FP ~ Bin(n - n_c, 1/K) are
    independent, F1_c = 2 TP / (n_c + TP + FP) (0 when the denominator is 0), and E[F1_c] is summed over
    their joint distribution (binomial tails below 1e-13 are dropped). This is not 1/K: e.g. two
    balanced classes give about 0.5 only for large n, and a class absent from the data contributes 0."""
    n = len(y_true)
    if n == 0:
        return 0.0
    k = len(labels)
    q = 1.0 / k
    counts = Counter(y_true)
    total = 0.0
    for lab in labels:
        nc = counts.get(lab, 0)
        tp, ptp = _binom_support(nc, q)
        fp, pfp = _binom_support(n - nc, q)
        denom = nc + tp[:, None] + fp[None, :]
        f1 = np.divide(2.0 * tp[:, None], denom, out=np.zeros(denom.shape), where=denom > 0)
        total += float((ptp[:, None] * pfp[None, :] * f1).sum())
    return total / k
