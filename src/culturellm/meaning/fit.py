"""Fitting and cross-validating the meaning verifier (culturellm.meaning.verifier) on labelled pairs.

The labels are `benchmarks/data/release_labels.jsonl` (550 real GPT-4 rewordings of the 50 seeds,
same / changed). The model is StandardScaler + LogisticRegression (scikit-learn) on `FEATURES`;
folds are grouped by seed question (GroupKFold on `q_id`), so no question is in both train and test.
A rewording is kept when its probability of a changed meaning is below the threshold; the threshold
is chosen on out-of-fold predictions for the precision of what is kept (`kept_changed`: the fraction
of kept rewordings that change the meaning) and the held-out numbers are nested (each outer fold's
threshold chosen on its own training part), with bootstrap CIs that resample questions.

`scripts/fit_verifier.py` runs `fit()` and writes the shipped parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from culturellm.meaning.judge import band_route

TARGET_KEPT_CHANGED = 0.10  # the issue asked 5 %; out of reach (docs/augmentation.md), 0.10 is the default
MIN_FAITHFUL_KEPT = 0.25  # never a threshold that keeps fewer faithful rewordings than this
# The judge's unsure band (verifier + judge, docs/augmentation.md): below its low bound the verifier
# alone keeps (at most BAND_SURE_KEPT_CHANGED of what it keeps there changes the meaning), from its high
# bound up it alone rejects (at least BAND_SURE_REJECTED_CHANGED of what it rejects there is changed).
BAND_SURE_KEPT_CHANGED = 0.05
BAND_SURE_REJECTED_CHANGED = 0.80


@dataclass
class Labelled:
    """Pairs with labels (1: changed) and groups (seed question)."""

    pairs: list[tuple[str, str]]
    y: np.ndarray
    groups: np.ndarray
    swaps: list[tuple[Any, Any]] | None = None  # (swaps, source) of a synonym-swap pair, for the checks
    kind: str = "gpt4"  # which kind of data (KINDS): each labelled file, or part of one, is one kind


# The kinds of labelled data a gate meets (benchmarks/data/README.md): GPT-4 rewordings of the release,
# the project's own synonym swaps, and the output of the local augmenters by their spec.
KINDS = ("gpt4", "project_synonyms", "bundled", "gemma3-270m")
AUGMENTER_LABELS = "augmenter_labels.jsonl"


def model(c: float = 0.5) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))


def rates(p: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float, float]:
    """(kept_changed, faithful_kept, kept share) when rewordings with p < t are kept."""
    keep = p < t
    kc = float(y[keep].mean()) if keep.any() else 0.0
    fk = float(keep[y == 0].mean()) if (y == 0).any() else 0.0
    return kc, fk, float(keep.mean())


def choose_threshold(
    p: np.ndarray, y: np.ndarray, target: float = TARGET_KEPT_CHANGED, floor: float = MIN_FAITHFUL_KEPT
) -> float:
    """The threshold that keeps the most faithful rewordings while at most `target` of what is kept
    changes the meaning; when no threshold keeping at least `floor` of the faithful ones reaches it,
    the one with the lowest kept_changed among those keeping at least `floor`."""
    cands = np.unique(np.concatenate([p, [1.0 + 1e-9]]))
    best, best_fk, fallback, fb_kc = None, -1.0, float(cands[-1]), 2.0
    for t in cands:
        kc, fk, share = rates(p, y, float(t))
        if share == 0:
            continue
        if kc <= target and fk > best_fk:
            best, best_fk = float(t), fk
        if fk >= floor and kc < fb_kc:
            fallback, fb_kc = float(t), kc
    return best if best is not None and best_fk >= floor else fallback


def choose_band(
    p: np.ndarray,
    y: np.ndarray,
    sure_kept: float = BAND_SURE_KEPT_CHANGED,
    sure_rejected: float = BAND_SURE_REJECTED_CHANGED,
) -> tuple[float, float]:
    """The unsure band [low, high) of P(changed) where the judge decides: `low` keeps the most pairs
    while at most `sure_kept` of those below it changed; `high` is the lowest probability from which at
    least `sure_rejected` of the pairs at or above it changed (1.0: none such, the judge sees the top)."""
    cands = np.unique(np.concatenate([p, [1.0 + 1e-9]]))
    low = 0.0
    for t in cands:
        below = p < t
        if below.any() and y[below].mean() <= sure_kept:
            low = float(t)
    high = 1.0
    for t in cands[::-1]:
        above = p >= t
        if above.any() and y[above].mean() >= sure_rejected and t >= low:
            high = min(high, float(t))
    return low, high  # not rounded: a rounded bound could move a pair on the edge across it


def nested_band(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float = 0.5
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Held-out routes (band_route) and each outer fold's band, chosen on its training part's own
    grouped out-of-fold predictions (never on the test fold)."""
    route, bands = np.zeros(len(y), dtype=int), []
    for tr, te in group_folds(groups):
        band = choose_band(oof_probabilities(x[tr], y[tr], groups[tr], c), y[tr])
        route[te] = band_route(model(c).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1], band)
        bands.append(band)
    return route, bands


def group_folds(groups: np.ndarray, n_splits: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold splits: every question's pairs in exactly one test fold."""
    from sklearn.model_selection import GroupKFold

    return list(GroupKFold(n_splits=n_splits).split(np.zeros(len(groups)), groups=groups))


def oof_probabilities(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float = 0.5) -> np.ndarray:
    """Out-of-fold P(changed), folds grouped by question."""
    p = np.zeros(len(y))
    for tr, te in group_folds(groups):
        p[te] = model(c).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
    return p


def nested_keep(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float = 0.5, target: float = TARGET_KEPT_CHANGED
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out verdicts (True: kept) and probabilities: each outer fold is scored by a model fitted on
    the other folds, with a threshold chosen on those folds' own grouped out-of-fold predictions."""
    keep, prob = np.zeros(len(y), dtype=bool), np.zeros(len(y))
    for tr, te in group_folds(groups):
        inner = oof_probabilities(x[tr], y[tr], groups[tr], c)
        t = choose_threshold(inner, y[tr], target)
        prob[te] = model(c).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
        keep[te] = prob[te] < t
    return keep, prob


def bootstrap(
    keep: np.ndarray, y: np.ndarray, groups: np.ndarray, n: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """kept_changed and faithful_kept of verdicts `keep`, with 95 % CIs resampling questions."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    idx = {g: np.flatnonzero(groups == g) for g in uniq}

    def stats(ix: np.ndarray) -> tuple[float, float]:
        k, yy = keep[ix], y[ix]
        kc = float(yy[k].mean()) if k.any() else 0.0
        return kc, float(k[yy == 0].mean()) if (yy == 0).any() else 0.0

    kc, fk = stats(np.arange(len(y)))
    draws = np.array([stats(np.concatenate([idx[g] for g in rng.choice(uniq, len(uniq))])) for _ in range(n)])
    lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
    return {
        "kept": int(keep.sum()),
        "n": len(y),
        "kept_changed": round(kc, 4),
        "kept_changed_ci": [round(float(lo[0]), 4), round(float(hi[0]), 4)],
        "faithful_kept": round(fk, 4),
        "faithful_kept_ci": [round(float(lo[1]), 4), round(float(hi[1]), 4)],
    }


def auc(p: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def curve(p: np.ndarray, y: np.ndarray) -> list[dict[str, float]]:
    """kept_changed / faithful_kept / kept share at a grid of thresholds (for the plot and the docs)."""
    out = []
    for t in np.round(np.arange(0.02, 1.0001, 0.02), 2):
        kc, fk, share = rates(p, y, float(t))
        out.append({"threshold": float(t), "kept_changed": kc, "faithful_kept": fk, "kept": share})
    return out


def fit(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    c: float = 0.5,
    target: float = TARGET_KEPT_CHANGED,
) -> dict[str, Any]:
    """The shipped parameters: scaler and coefficients fitted on all pairs, the threshold chosen on
    grouped out-of-fold predictions, and the held-out (nested) numbers."""
    oof = oof_probabilities(x, y, groups, c)
    t = choose_threshold(oof, y, target)
    keep, _ = nested_keep(x, y, groups, c, target)
    pipe = model(c).fit(x, y)
    scaler, lr = pipe[0], pipe[-1]
    return {
        "features": list(names),
        "mean": [round(float(v), 8) for v in scaler.mean_],
        "scale": [round(float(v), 8) for v in scaler.scale_],
        "coef": [round(float(v), 8) for v in lr.coef_[0]],
        "intercept": round(float(lr.intercept_[0]), 8),
        "threshold": round(t, 6),
        "judge_band": list(choose_band(oof, y)),
        "C": c,
        "target_kept_changed": target,
        "cv": {
            "folds": "GroupKFold(5) by q_id; threshold nested in each training part",
            "auc_oof": round(auc(oof, y), 4),
            "oof_at_threshold": dict(
                zip(("kept_changed", "faithful_kept", "kept"), rates(oof, y, t), strict=True)
            ),
            "heldout": bootstrap(keep, y, groups),
        },
    }


def load_labelled(path: Any, kind: str = "gpt4", rows: list[dict[str, Any]] | None = None) -> Labelled:
    """`release_labels.jsonl` (label same|changed, q_id) or `meaning_pairs.jsonl` (label
    equivalent|changed|broken; the seed text is the group), or those `rows` of such a file."""
    import json
    from pathlib import Path

    if rows is None:
        text = Path(path).read_text(encoding="utf-8")
        rows = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    return Labelled(
        [(r["seed"], r["candidate"]) for r in rows],
        np.array([int(r["label"] not in ("same", "equivalent")) for r in rows]),
        np.array([str(r.get("q_id") or r["seed"]) for r in rows]),
        [(r.get("swaps") or (), r.get("source")) for r in rows],
        kind,
    )


def _norm(t: str) -> str:
    return "".join(ch for ch in t.lower() if ch.isalnum())


def load_kinds(data_dir: Any) -> dict[str, Labelled]:
    """Every labelled file of benchmarks/data by name: release (550 GPT-4), more (933 GPT-4), old (the
    project's 144 synonym swaps, grouped by the release question of their seed where it has one) and,
    when labelled, the augmenters' pairs (one entry per `augmenter`, named by it)."""
    import json
    from pathlib import Path

    d = Path(data_dir)
    out = {
        "release": load_labelled(d / "release_labels.jsonl"),
        "more": load_labelled(d / "release_labels_more.jsonl"),
        "old": load_labelled(d / "meaning_pairs.jsonl", "project_synonyms"),
    }
    gpt4 = (out["release"], out["more"])
    qid = {_norm(s): str(g) for m in gpt4 for (s, _), g in zip(m.pairs, m.groups, strict=True)}
    out["old"].groups = np.array([qid.get(_norm(s), s) for s, _ in out["old"].pairs])
    if (d / AUGMENTER_LABELS).is_file():
        text = (d / AUGMENTER_LABELS).read_text(encoding="utf-8")
        rows = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        for aug in sorted({str(r["augmenter"]) for r in rows}):
            out[aug] = load_labelled(None, aug, [r for r in rows if str(r["augmenter"]) == aug])
    return out


def check_flags(data: Labelled, embed: Any) -> tuple[list[str], np.ndarray]:
    """One 0/1 column per lexical meaning check (culturellm.meaning.checks) at its default setting."""
    from culturellm.meaning import DEFAULT_T_STANDIN as t
    from culturellm.meaning.checks import CHECKS, MeaningChecks

    extra = data.swaps or [((), None)] * len(data.pairs)
    items = [(s, c, sw, src) for (s, c), (sw, src) in zip(data.pairs, extra, strict=True)]
    cols = [
        [bool(f) for f in MeaningChecks([ch], embed=embed, t_standin=t).check_many(items)] for ch in CHECKS
    ]
    return [f"chk_{c}" for c in CHECKS], np.array(cols, dtype=np.float64).T
