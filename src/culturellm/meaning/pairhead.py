"""The pair model of the meaning gate: a logistic head on frozen MiniLM sentence embeddings of the seed
and the candidate (their element-wise product and absolute difference, 2 x 384 values), fitted on the
labelled pairs (scripts/fit_verifier.py). Its logit is one more input of the gate's logistic
regression (culturellm.meaning.verifier), which was fitted on the head's out-of-fold logits (stacking),
so the gate never learns from a head that saw the pair. Only the head ships (culturellm/data/
verifier.json, `pair_head`): the embedder is the bundled one the features already load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PAIR_FEATURE = "pair_head"


def pair_embeddings(embedder: Any, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """(n, 2, d): the unit-norm sentence embeddings of each pair's seed and candidate."""
    if not pairs:
        return np.zeros((0, 2, 0), dtype=np.float32)
    texts = sorted({t for p in pairs for t in p})
    vec = dict(zip(texts, np.asarray(embedder.encode(texts), dtype=np.float32), strict=True))
    return np.stack([np.stack([vec[s], vec[c]]) for s, c in pairs])


def pair_inputs(emb: np.ndarray) -> np.ndarray:
    """The head's inputs from `pair_embeddings`: [u * v, |u - v|]."""
    e = np.asarray(emb, dtype=np.float64)
    u, v = e[:, 0], e[:, 1]
    return np.hstack([u * v, np.abs(u - v)])


def head_logit(head: dict[str, Any], emb: np.ndarray) -> np.ndarray:
    """The shipped head's logit of P(changed) (mean, scale, coef, intercept over `pair_inputs`)."""
    scale = np.asarray(head["scale"], dtype=np.float64)
    flat = scale < 1e-12  # inputs constant on the labelled pairs: they add nothing (as they did there)
    z = (pair_inputs(emb) - np.asarray(head["mean"])) / np.where(flat, 1.0, scale)
    z[:, flat] = 0.0
    return z @ np.asarray(head["coef"], dtype=np.float64) + float(head["intercept"])
