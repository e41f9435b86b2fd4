"""How close a model's answer distribution is to a survey's, two ways.

- `one_minus_jsd`: 1 − Jensen-Shannon distance (base 2), in [0, 1]. It ignores the order of the
  options: answering "strongly agree" where the survey says "agree" costs as much as "strongly
  disagree".
- `one_minus_wasserstein`: 1 − the earth mover's (Wasserstein-1) distance between the two
  distributions over the ordered options, divided by the span of the scale, in [0, 1]. This is the
  ordinal measure of SubPOP (Suh et al., ACL 2025). WVS answer codes are ordered scales (1..4, 1..5,
  1..10, and 0..2 for agree / hard to say / disagree), so options are placed at their rank in
  numeric code order: equally spaced, the lowest code at 0 and the highest at 1.

Both take distributions over the same codes in the same order (as `dict` values or sequences).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _normalised(p: Sequence[float]) -> np.ndarray:
    a = np.asarray(p, dtype=float)
    if a.ndim != 1 or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("a distribution must be finite and non-negative")
    total = a.sum()
    if total <= 0:
        raise ValueError("a distribution must have positive mass")
    return a / total


def one_minus_jsd(p: Sequence[float], q: Sequence[float]) -> float:
    """1 − Jensen-Shannon distance (base 2) between two distributions over the same options."""
    from scipy.spatial.distance import jensenshannon

    return 1.0 - float(jensenshannon(_normalised(p), _normalised(q), base=2))


def ordinal_positions(codes: Sequence[str]) -> np.ndarray:
    """Each code's place on the scale: its rank in numeric order, scaled to [0, 1] (one option: 0).

    Codes that are not numbers keep their given order."""
    try:
        order = sorted(range(len(codes)), key=lambda i: float(codes[i]))
    except ValueError:
        order = list(range(len(codes)))
    pos = np.empty(len(codes))
    span = max(len(codes) - 1, 1)
    for rank, i in enumerate(order):
        pos[i] = rank / span
    return pos


def one_minus_wasserstein(p: Sequence[float], q: Sequence[float], codes: Sequence[str]) -> float:
    """1 − Wasserstein-1 distance over the ordered options, normalised by the scale's span."""
    from scipy.stats import wasserstein_distance

    if not (len(p) == len(q) == len(codes)):
        raise ValueError("p, q and codes differ in length")
    pos = ordinal_positions(codes)
    return 1.0 - float(wasserstein_distance(pos, pos, _normalised(p), _normalised(q)))


def similarity(model: Mapping[str, float], survey: Mapping[str, float]) -> dict[str, float]:
    """Both measures for a model distribution and a survey distribution keyed by answer code.

    Codes missing from `model` count as probability 0."""
    codes = list(survey)
    p = [float(model.get(c, 0.0)) for c in codes]
    q = [float(survey[c]) for c in codes]
    return {"one_minus_jsd": one_minus_jsd(p, q), "one_minus_wasserstein": one_minus_wasserstein(p, q, codes)}
