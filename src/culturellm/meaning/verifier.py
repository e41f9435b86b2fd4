"""The meaning gate (the verifier): P(a rewording changes the seed's meaning) from the features of
culturellm.meaning.features and, when the parameters hold one, the logit of the pair head on MiniLM
embeddings (culturellm.meaning.pairhead), combined by a logistic regression fitted on every kind of
labelled pair (benchmarks/data: GPT-4 rewordings, the project's synonym swaps, the local augmenters'
output; refit with scripts/fit_verifier.py). The fitted parameters ship in culturellm/data/verifier.json
with the cross-validated numbers they were chosen by.

A rewording is kept when its probability is below the threshold: one per kind of data (`thresholds`,
picked by the augmenter's spec: `threshold_for`), the GPT-4 one for anything else; the verdict's
reasons are the features that pushed it most towards "changed" (standardised value times coefficient).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from culturellm.errors import DataError
from culturellm.meaning.features import DESCRIBE, EMBEDDING, FEATURES, PairFeatures
from culturellm.meaning.pairhead import PAIR_FEATURE, head_logit, pair_embeddings

PARAMS_FILE = "verifier.json"
DESCRIBE = {**DESCRIBE, PAIR_FEATURE: "the pair model reads a change"}
COLUMNS = (*FEATURES, PAIR_FEATURE)  # what a parameter file may name


@dataclass(frozen=True)
class Verdict:
    """One pair's verdict: `probability` that the meaning changed, `keep` (below the threshold), and
    `reasons` (features pushing towards "changed", strongest first; empty when kept)."""

    probability: float
    keep: bool
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": "keep" if self.keep else "reject",
            "p_changed": round(self.probability, 4),
            "reasons": self.reasons,
            "features": {k: round(v, 4) for k, v in self.scores.items()},
        }


@dataclass(frozen=True)
class VerifierParams:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    info: dict[str, Any]

    @property
    def has_head(self) -> bool:
        return PAIR_FEATURE in self.features

    def threshold_for(self, augmenter: str | None) -> tuple[str, float]:
        """The kind of data and its threshold for rewordings made by the augmenter `augmenter` (a model
        spec: the local augmenters have their own, chosen on their labelled output); anything else
        (GPT-4, another API model, imported files): the default threshold."""
        kinds = self.info.get("thresholds") or {}
        if augmenter in kinds:
            return str(augmenter), float(kinds[augmenter])
        return str(self.info.get("default_kind", "default")), self.threshold

    def shift_for(self, kind: str) -> float:
        """The kind's logit shift (calibration in the large, `gatefit.kind_shifts`; 0 without one)."""
        return float((self.info.get("logit_shift") or {}).get(kind, 0.0))

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = PARAMS_FILE) -> VerifierParams:
        try:
            feats = tuple(str(f) for f in d["features"])
            arrays = [np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
            out = cls(feats, *arrays, float(d["intercept"]), float(d["threshold"]), d)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{where}: not verifier parameters ({e})") from None
        unknown = [f for f in feats if f not in COLUMNS]
        if PAIR_FEATURE in feats and not isinstance(d.get("pair_head"), dict):
            raise DataError(f"{where}: names {PAIR_FEATURE} but holds no pair_head")
        if unknown or any(len(a) != len(feats) for a in arrays):
            raise DataError(
                f"{where}: features {unknown or feats} do not match culturellm's ({len(FEATURES)})"
            )
        return out


@lru_cache(maxsize=4)
def load_params(path: str | None = None) -> VerifierParams:
    """The shipped parameters (culturellm/data/verifier.json), or those in `path`."""
    if path is None:
        text = resources.files("culturellm.data").joinpath(PARAMS_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        d = json.loads(text)
    except ValueError as e:
        raise DataError(f"{path or PARAMS_FILE}: not JSON ({e})") from None
    return VerifierParams.from_dict(d, str(path or PARAMS_FILE))


class Verifier:
    """Scores (seed, candidate) pairs. `embedder`: an `Embedder`; `lm`: the local model of the fluency
    features (`culturellm.meaning.features.load_lm`; None: those features at their mean, i.e. neutral);
    `threshold`: None for the shipped one."""

    def __init__(
        self,
        embedder: Any,
        lm: Any = None,
        *,
        threshold: float | None = None,
        params: VerifierParams | None = None,
        augmenter: str | None = None,
    ) -> None:
        self.params = params or load_params()
        self.kind, shipped = self.params.threshold_for(augmenter)
        self.shift = self.params.shift_for(self.kind)
        self.threshold = shipped if threshold is None else float(threshold)
        self.extractor = PairFeatures(embedder, lm)
        self.has_lm = lm is not None

    def probabilities(
        self, x: np.ndarray, emb: np.ndarray | None = None, head: np.ndarray | None = None
    ) -> np.ndarray:
        """P(changed) of feature rows in `FEATURES` order; when the parameters hold a pair head, the
        pairs' embeddings `emb` (`pair_embeddings`) or the head's logits `head`."""
        z = self._standardised(self._columns(x, emb, head))
        return 1.0 / (1.0 + np.exp(-(z @ self.params.coef + self.params.intercept + self.shift)))

    def _columns(self, x: np.ndarray, emb: np.ndarray | None, head: np.ndarray | None = None) -> np.ndarray:
        """The rows in `COLUMNS` order: the features, then the pair head's logit (0 without a head)."""
        x = np.asarray(x, dtype=np.float64)
        if not self.params.has_head:
            return np.hstack([x, np.zeros((len(x), 1))])
        if head is None and emb is None:
            raise ValueError("these verifier parameters hold a pair head: pass the pairs' embeddings")
        h = head if head is not None else head_logit(self.params.info["pair_head"], emb)
        return np.hstack([x, np.asarray(h, dtype=np.float64).reshape(-1, 1)])

    def _standardised(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        cols = [COLUMNS.index(f) for f in p.features]
        z = (np.asarray(x, dtype=np.float64)[:, cols] - p.mean) / p.scale
        if not self.has_lm:  # fluency unknown: neutral
            z[:, [i for i, f in enumerate(p.features) if f.startswith("lm_")]] = 0.0
        return z

    def verdicts(
        self, pairs: Sequence[tuple[str, str]], top: int = 2, advance: Callable[[int], Any] | None = None
    ) -> list[Verdict]:
        """One verdict per pair; `advance(n)`: called as the features of n more pairs are done."""
        if not pairs:
            return []
        emb = pair_embeddings(self.extractor.embedder, pairs) if self.params.has_head else None
        x = self._columns(self.extractor.compute(pairs, advance=advance), emb)
        z = self._standardised(x)
        probs = 1.0 / (1.0 + np.exp(-(z @ self.params.coef + self.params.intercept + self.shift)))
        contrib = z * self.params.coef
        # a reason only where the value itself is on the feature's bad side (low similarity, many new words)
        bad_side = np.array([-1.0 if f in EMBEDDING else 1.0 for f in self.params.features])
        if self.params.has_head:  # the head's logit: its bad side depends on its coefficient's sign
            i = self.params.features.index(PAIR_FEATURE)
            bad_side[i] = np.sign(self.params.coef[i]) or 1.0
        out = []
        for row, pr, c, zz in zip(x, probs, contrib, z, strict=True):
            keep = bool(pr < self.threshold)
            order = [i for i in np.argsort(-c) if c[i] > 0.25 and zz[i] * bad_side[i] > 0][:top]
            reasons = [] if keep else [DESCRIBE[self.params.features[i]] for i in order] or ["overall score"]
            scores = {f: float(row[COLUMNS.index(f)]) for f in self.params.features}
            out.append(Verdict(float(pr), keep, reasons, scores))
        return out
