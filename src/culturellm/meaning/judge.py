"""The judge step: any chat model asked, both ways, whether a candidate means what its seed means.

For each (seed, candidate) pair the judge gets two prompts, the seed as statement A and the
candidate as B, then the other way round. Each answer is scored by the log-probabilities of the
labels "Yes" and "No" (`ChatModel.score`: exact on local models, from the top log-probabilities on
OpenAI-compatible servers that return them, else by parsing a short greedy answer), so nothing is
sampled and every verdict is reproducible. A candidate is kept only when both answers are "Yes".
The model should be wrapped in the response cache (`load_model(spec, cache=True)`, the default), so
a rerun or a resumed run pays nothing twice. Cost: two scoring requests per judged candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from culturellm.llm.base import ChatModel, ScoreRequest


def band_route(p: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Per pair: 1 kept by the verifier alone (p < low), -1 rejected by it alone (p >= high), 0 unsure
    (the judge decides)."""
    p = np.asarray(p, dtype=np.float64)
    return np.where(p < band[0], 1, np.where(p >= band[1], -1, 0))


LABELS = ("Yes", "No")
SYSTEM = "You compare survey statements. Answer with one word: Yes or No."
TEMPLATE = (
    "Statement A: {a}\nStatement B: {b}\n\n"
    "Do A and B mean the same thing, so that anyone who agrees with A agrees with B to the same "
    "degree, and anyone who disagrees with A disagrees with B? Answer Yes or No."
)


def judge_messages(a: str, b: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TEMPLATE.format(a=a, b=b)}]


@dataclass(frozen=True)
class Verdict:
    """Both directions' margins log P(Yes) - log P(No); `same` only when both are positive."""

    forward: float
    backward: float

    @property
    def same(self) -> bool:
        return self.forward > 0 and self.backward > 0


class Judge:
    """Equivalence judge over a ChatModel (see module docstring)."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.requests = 0

    @property
    def name(self) -> str:
        return self.model.name

    def verdicts(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        """One Verdict per (seed, candidate) pair: 2 scoring requests each, in one `score` call."""
        if not pairs:
            return []
        reqs = [ScoreRequest(judge_messages(a, b), LABELS) for a, b in pairs]
        reqs += [ScoreRequest(judge_messages(b, a), LABELS) for a, b in pairs]
        res = self.model.score(reqs)
        self.requests += len(reqs)
        margins = [r.logprobs[0] - r.logprobs[1] for r in res]
        n = len(pairs)
        return [Verdict(margins[i], margins[n + i]) for i in range(n)]


def judge_where_unsure(
    judge: Judge,
    pairs: Sequence[tuple[str, str]],
    p_changed: Sequence[float],
    band: tuple[float, float],
) -> tuple[list[bool], np.ndarray]:
    """The meaning verifier and the judge together: per (seed, candidate) pair, kept or not, and its
    route (`band_route`: 1 kept by the verifier alone, P(changed) < band[0]; -1 rejected by it alone,
    P(changed) >= band[1]; 0 unsure). Only the unsure pairs are sent to the judge, which decides them."""
    route = band_route(np.asarray(p_changed, dtype=np.float64), band)
    verdicts = iter(judge.verdicts([p for p, r in zip(pairs, route, strict=True) if r == 0]))
    return [bool(r == 1 or (r == 0 and next(verdicts).same)) for r in route], route
