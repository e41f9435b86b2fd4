"""The meaning verifier: P(a rewording changes the seed's meaning) from the features of
culturellm.meaning.features, combined by a logistic regression fitted on labelled real GPT-4 rewordings
(benchmarks/data/release_labels.jsonl; refit with scripts/fit_verifier.py). The fitted parameters ship
in culturellm/data/verifier.json with the cross-validated numbers they were chosen by.

A rewording is kept when its probability is below the threshold; the verdict's reasons are the features
that pushed it most towards "changed" (their standardised value times their coefficient).
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

PARAMS_FILE = "verifier.json"


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

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = PARAMS_FILE) -> VerifierParams:
        try:
            feats = tuple(str(f) for f in d["features"])
            arrays = [np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
            out = cls(feats, *arrays, float(d["intercept"]), float(d["threshold"]), d)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{where}: not verifier parameters ({e})") from None
        unknown = [f for f in feats if f not in FEATURES]
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
    ) -> None:
        self.params = params or load_params()
        self.threshold = self.params.threshold if threshold is None else float(threshold)
        self.extractor = PairFeatures(embedder, lm)
        self.has_lm = lm is not None

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """P(changed) of feature rows in `FEATURES` order."""
        z = self._standardised(x)
        return 1.0 / (1.0 + np.exp(-(z @ self.params.coef + self.params.intercept)))

    def _standardised(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        cols = [FEATURES.index(f) for f in p.features]
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
        x = self.extractor.compute(pairs, advance=advance)
        probs = self.probabilities(x)
        z = self._standardised(x)
        contrib = z * self.params.coef
        # a reason only where the value itself is on the feature's bad side (low similarity, many new words)
        bad_side = np.array([-1.0 if f in EMBEDDING else 1.0 for f in self.params.features])
        out = []
        for row, pr, c, zz in zip(x, probs, contrib, z, strict=True):
            keep = bool(pr < self.threshold)
            order = [i for i in np.argsort(-c) if c[i] > 0.25 and zz[i] * bad_side[i] > 0][:top]
            reasons = [] if keep else [DESCRIBE[self.params.features[i]] for i in order] or ["overall score"]
            scores = {f: float(row[FEATURES.index(f)]) for f in self.params.features}
            out.append(Verdict(float(pr), keep, reasons, scores))
        return out
