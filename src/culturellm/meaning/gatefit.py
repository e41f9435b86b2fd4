"""Fitting and measuring the meaning gate on every kind of labelled data (issue #30): the 20 features
(culturellm.meaning.features) and the pair head (culturellm.meaning.pairhead) stacked in one logistic
regression, with a threshold per kind of data, chosen for the precision of what is kept.

Folds are grouped by question: GroupKFold(5) over the seed question ids of all kinds together, so a
question's pairs of every kind are in the same test fold. `scheme="kind"` also holds out the kind:
the test part of kind k is scored by a gate fitted on the *other* kinds only (and other questions), at
the default (GPT-4) threshold, as a new augmenter would be. Thresholds are nested: chosen on the
training part's own grouped out-of-fold predictions, never on the test fold. Imported by the fitting
script and the benchmarks only (scikit-learn).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from culturellm.meaning.fit import (
    MIN_FAITHFUL_KEPT,
    Labelled,
    choose_threshold,
    group_folds,
    model,
)
from culturellm.meaning.pairhead import pair_inputs

DEFAULT_KIND = "gpt4"  # the kind whose threshold a gate uses for data of an unknown augmenter
# The kinds the head and the regression are fitted on. The other kinds get only their threshold and
# calibration shift (from the gate's out-of-fold predictions on them): fitted on every kind, the
# slopes bent to the project's synonym swaps and the bundled model's output, and the gate gave
# near-copies of the seed ("Making my parents proud has been one of my main life goals") P(changed)
# 0.4 to 0.6, where fitted on GPT-4 rewordings alone it gives them 0.002.
SLOPE_KINDS = ("gpt4",)
# The fewest faithful rewordings a kind's threshold may keep (choose_threshold's floor): a quarter for
# GPT-4 class output; none for the small local augmenters, whose output is nearly all changed (329 of
# the bundled model's 342 labelled rewordings), so that only precision decides their threshold.
FLOORS = {"bundled": 0.0, "gemma3-270m": 0.0}
HEAD_C = 0.001  # chosen by grouped out-of-fold AUC: 0.05 0.674, 0.01 0.735, 0.001 0.784 on GPT-4 pairs
GATE_C = 0.5


@dataclass
class Pooled:
    """All labelled pairs together: features x, pair embeddings emb, labels y, questions, kinds."""

    x: np.ndarray
    emb: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    kinds: np.ndarray

    @classmethod
    def of(cls, data: dict[str, Labelled], z: dict[str, np.ndarray]) -> Pooled:
        names = list(data)
        return cls(
            np.vstack([z[f"{n}_x"] for n in names]),
            np.concatenate([z[f"{n}_emb"] for n in names]),
            np.concatenate([data[n].y for n in names]),
            np.concatenate([data[n].groups for n in names]),
            np.concatenate([[data[n].kind] * len(data[n].y) for n in names]),
        )

    def take(self, ix: np.ndarray) -> Pooled:
        return Pooled(self.x[ix], self.emb[ix], self.y[ix], self.groups[ix], self.kinds[ix])


def head_model(c: float = HEAD_C) -> Any:
    return model(c)


class Gate:
    """One fitted gate of a kind `what`: "features" (the 20 features), "head" (the pair head alone) or
    "combined" (features + the head's out-of-fold logit, stacked)."""

    def __init__(self, what: str = "combined", head_c: float = HEAD_C, c: float = GATE_C) -> None:
        self.what, self.head_c, self.c = what, head_c, c

    def fit(self, d: Pooled) -> Gate:
        slopes = np.isin(d.kinds, SLOPE_KINDS)
        d = d.take(np.flatnonzero(slopes)) if slopes.any() else d  # (no GPT-4 pairs: the other kinds)
        if self.what != "features":
            self.head = head_model(self.head_c).fit(pair_inputs(d.emb), d.y)
        if self.what == "combined":
            h = oof_head_logit(d, self.head_c)
            self.top = model(self.c).fit(np.hstack([d.x, h[:, None]]), d.y)
        elif self.what == "features":
            self.top = model(self.c).fit(d.x, d.y)
        return self

    def head_logit(self, d: Pooled) -> np.ndarray:
        return self.head.decision_function(pair_inputs(d.emb))

    def proba(self, d: Pooled) -> np.ndarray:
        if self.what == "head":
            return 1.0 / (1.0 + np.exp(-self.head_logit(d)))
        x = d.x if self.what == "features" else np.hstack([d.x, self.head_logit(d)[:, None]])
        return self.top.predict_proba(x)[:, 1]


def oof_head_logit(d: Pooled, c: float = HEAD_C) -> np.ndarray:
    """The pair head's out-of-fold logits (folds grouped by question): the stacked input."""
    h = np.zeros(len(d.y))
    for tr, te in group_folds(d.groups):
        h[te] = head_model(c).fit(pair_inputs(d.emb[tr]), d.y[tr]).decision_function(pair_inputs(d.emb[te]))
    return h


def oof_proba(d: Pooled, what: str, **kw: Any) -> np.ndarray:
    """Out-of-fold P(changed) of gate `what`, folds grouped by question."""
    p = np.zeros(len(d.y))
    for tr, te in group_folds(d.groups):
        p[te] = Gate(what, **kw).fit(d.take(tr)).proba(d.take(te))
    return p


def kind_shifts(p: np.ndarray, d: Pooled) -> dict[str, float]:
    """Per kind, the shift of the logit that makes the mean of its pairs' P(changed) their share of
    changed pairs (calibration in the large: the bundled augmenter's output is 96 % changed, GPT-4's
    about half, and one regression over both would otherwise call the first's mean 0.19)."""
    logit = np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))
    out = {}
    for k in np.unique(d.kinds):
        m, lo, hi = d.kinds == k, -10.0, 10.0
        rate = float(d.y[m].mean())
        for _ in range(60):  # bisection: the mean of sigmoid(logit + b) grows with b
            b = (lo + hi) / 2
            lo, hi = (b, hi) if float(np.mean(1 / (1 + np.exp(-(logit[m] + b))))) < rate else (lo, b)
        out[str(k)] = round((lo + hi) / 2, 6)
    return out


def shifted(p: np.ndarray, kinds: np.ndarray, shifts: dict[str, float]) -> np.ndarray:
    """P(changed) with each pair's kind's logit shift (kinds without one: the default kind's)."""
    b = np.array([shifts.get(str(k), shifts.get(DEFAULT_KIND, 0.0)) for k in kinds])
    logit = np.log(np.clip(p, 1e-12, 1 - 1e-12) / np.clip(1 - p, 1e-12, 1))
    return 1 / (1 + np.exp(-(logit + b)))


def kind_thresholds(p: np.ndarray, d: Pooled, target: dict[str, float]) -> dict[str, float]:
    """One threshold per kind present (chosen on that kind's pairs for its `target` kept_changed; the
    default target for kinds not named)."""
    out = {}
    for k in np.unique(d.kinds):
        m = d.kinds == k
        floor = FLOORS.get(str(k), MIN_FAITHFUL_KEPT)
        out[str(k)] = choose_threshold(p[m], d.y[m], target.get(str(k), target[DEFAULT_KIND]), floor)
    return out


def heldout(
    d: Pooled, what: str, target: dict[str, float], scheme: str = "question", **kw: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out verdicts (True: kept) and probabilities of every pair. scheme "question": each test
    fold scored by a gate fitted on the other questions (all kinds), at its kind's threshold chosen on
    the training part; "kind": each kind's test fold scored by a gate fitted on the other kinds and
    questions only, at the default kind's threshold (a kind it never saw)."""
    keep, prob = np.zeros(len(d.y), dtype=bool), np.zeros(len(d.y))
    for tr, te in group_folds(d.groups):
        kinds = np.unique(d.kinds[te]) if scheme == "kind" else [None]
        for k in kinds:
            trk = tr if k is None else tr[d.kinds[tr] != k]
            tek = te if k is None else te[d.kinds[te] == k]
            if k is not None and not len(np.unique(d.kinds[trk])):
                continue
            train = d.take(trk)
            inner = oof_proba(train, what, **kw)
            shifts = kind_shifts(inner, train)
            ts = kind_thresholds(shifted(inner, train.kinds, shifts), train, target)
            prob[tek] = shifted(Gate(what, **kw).fit(train).proba(d.take(tek)), d.kinds[tek], shifts)
            t = np.array([ts.get(str(kk), ts.get(DEFAULT_KIND, 0.5)) for kk in d.kinds[tek]])
            keep[tek] = prob[tek] < t
    return keep, prob


def fit_gate(d: Pooled, target: dict[str, float], **kw: Any) -> dict[str, Any]:
    """The shipped gate's parameters: the head and the stacked regression fitted on every pair, a
    threshold per kind chosen on grouped out-of-fold predictions."""
    g = Gate("combined", **kw).fit(d)
    raw = oof_proba(d, "combined", **kw)
    shifts = kind_shifts(raw, d)
    oof = shifted(raw, d.kinds, shifts)
    head_scaler, head_lr = g.head[0], g.head[-1]
    scaler, lr = g.top[0], g.top[-1]
    r = lambda a: [round(float(v), 8) for v in a]  # noqa: E731
    return {
        "mean": r(scaler.mean_),
        "scale": r(scaler.scale_),
        "coef": r(lr.coef_[0]),
        "intercept": round(float(lr.intercept_[0]), 8),
        "thresholds": {k: round(v, 6) for k, v in kind_thresholds(oof, d, target).items()},
        "logit_shift": shifts,
        "pair_head": {
            "inputs": "[u * v, |u - v|] of the bundled MiniLM's unit-norm embeddings of seed, candidate",
            # full precision: some of the 768 inputs vary by less than 1e-8 (rounded, a scale of 0)
            "mean": [float(v) for v in head_scaler.mean_],
            "scale": [float(v) for v in head_scaler.scale_],
            "coef": [float(v) for v in head_lr.coef_[0]],
            "intercept": float(head_lr.intercept_[0]),
            "C": g.head_c,
        },
        "_oof": oof,
    }


def per_kind(keep: np.ndarray, d: Pooled, kinds: Sequence[str] | None = None) -> dict[str, dict]:
    """bootstrap() numbers of verdicts `keep` for each kind (CIs resampling questions)."""
    from culturellm.meaning.fit import bootstrap

    out = {}
    for k in kinds or [str(k) for k in np.unique(d.kinds)]:
        m = d.kinds == k
        if m.any():
            out[k] = bootstrap(keep[m], d.y[m], d.groups[m])
    return out
