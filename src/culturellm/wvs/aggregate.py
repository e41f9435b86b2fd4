"""Aggregate WVS microdata into per-country answer distributions over each question's valid codes.

Only codes listed in a question's options count. The WVS missing-value codes (-1 don't know,
-2 no answer, -3 not applicable, -4 not asked in this country, -5 missing/unknown), empty cells and
any code outside the options are missing. A country without one valid answer to a question has no
aggregate for it: the question is absent for that country, never given a made-up label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from culturellm.wvs.questions import Question, load_questions

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress

#: Shares closer than this are a tie (guards against float noise in weighted or averaged shares).
TIE_TOLERANCE = 1e-9


def majority_code(distribution: Mapping[str, float]) -> str:
    """The code with the largest share. Ties (shares within TIE_TOLERANCE) go to the lowest numeric
    code, whatever the options' order: e.g. {"1": .4, "2": .4, "3": .2} -> "1", and for the migration
    items (options 2, 1, 0) a tie between 2 and 0 gives "0"."""
    if not distribution:
        raise ValueError("empty distribution")
    top = max(distribution.values())
    return min((c for c, s in distribution.items() if s >= top - TIE_TOLERANCE), key=int)


def mean_code(distribution: Mapping[str, float]) -> float:
    """Mean of the answer codes under the distribution."""
    return float(sum(int(c) * s for c, s in distribution.items()))


@dataclass(frozen=True)
class CountryAnswers:
    """One country's answers to one question: weighted counts per valid code (every option code
    present, in option order, zero when nobody chose it) and n, the unweighted number of valid answers.
    Without W_WEIGHT the weighted counts are plain counts."""

    country: str
    question_id: str
    counts: dict[str, float] = field(hash=False)
    n: int

    @property
    def distribution(self) -> dict[str, float]:
        total = sum(self.counts.values())
        return {c: w / total for c, w in self.counts.items()}

    @property
    def majority(self) -> str:
        return majority_code(self.distribution)

    @property
    def mean(self) -> float:
        return mean_code(self.distribution)


def aggregate(
    df: pd.DataFrame,
    questions: Sequence[Question] | None = None,
    *,
    use_weights: bool = True,
    progress: Progress | None = None,
) -> list[CountryAnswers]:
    """Aggregate a microdata frame as returned by `read_microdata` (columns `country`, optional
    `weight`, one column per question id) into CountryAnswers, sorted by country then question order.

    Questions whose column is absent are skipped; a (country, question) pair without any valid answer
    (or whose valid answers all have weight 0) produces nothing.
    """
    import numpy as np
    import pandas as pd

    questions = list(questions) if questions is not None else load_questions()
    present = [q for q in questions if q.id in df.columns]
    if use_weights and "weight" in df.columns:
        weight = pd.to_numeric(df["weight"], errors="coerce").to_numpy(dtype=float)
    else:
        weight = np.ones(len(df))
    country_idx, names = pd.factorize(df["country"].astype(str), sort=True)
    n_countries = len(names)
    out: list[CountryAnswers] = []
    per_question: list[tuple[Question, np.ndarray, np.ndarray]] = []
    task = progress.add_task("aggregating", total=len(present)) if progress is not None else None
    for q in present:
        codes = pd.to_numeric(df[q.id], errors="coerce").to_numpy(dtype=float)
        # position of each answer among the question's options; -1 = missing (negative code, NaN,
        # or a code that is not an option)
        pos = np.full(len(codes), -1, dtype=np.int64)
        for i, code in enumerate(q.codes):
            pos[codes == code] = i
        valid = pos >= 0
        k = len(q.codes)
        cell = country_idx[valid] * k + pos[valid]
        sums = np.bincount(cell, weights=weight[valid], minlength=n_countries * k).reshape(n_countries, k)
        sizes = np.bincount(cell, minlength=n_countries * k).reshape(n_countries, k)
        per_question.append((q, sums, sizes))
        if task is not None:
            progress.advance(task)
    for ci, country in enumerate(names):
        for q, sums, sizes in per_question:
            n = int(sizes[ci].sum())
            if n == 0 or sums[ci].sum() <= 0:
                continue
            counts = {code: float(w) for code, w in zip(q.options, sums[ci], strict=True)}
            out.append(CountryAnswers(country=str(country), question_id=q.id, counts=counts, n=n))
    return out


def combine(answers: Iterable[CountryAnswers], question: Question) -> tuple[dict[str, float], int]:
    """Equal-country weighting: the mean of the countries' distributions (each country counts the same,
    whatever its sample size) and n summed. Returns (distribution over all option codes, n)."""
    answers = list(answers)
    if not answers:
        raise ValueError(f"no answers to combine for {question.id}")
    dists = [a.distribution for a in answers]
    dist = {c: sum(d.get(c, 0.0) for d in dists) / len(dists) for c in question.options}
    return dist, sum(a.n for a in answers)
