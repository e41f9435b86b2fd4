"""Seeds: per culture and question, the question with the culture's answer distribution and majority."""

from __future__ import annotations

from dataclasses import dataclass, field

from culturellm.cultures import Culture, get_culture
from culturellm.errors import DataError
from culturellm.wvs.aggregate import combine, majority_code, mean_code
from culturellm.wvs.answers import load_answers
from culturellm.wvs.questions import load_questions


@dataclass(frozen=True)
class Seed:
    """A seed question with a culture's answers. `distribution` maps every option code (in option order)
    to its share (sums to 1; countries weighted equally), `majority` is the code with the largest share
    (ties: lowest code), `n` the number of valid answers summed over `countries` (those that were asked
    the question)."""

    question_id: str
    topic: str
    text: str
    options: dict[str, str] = field(hash=False)
    distribution: dict[str, float] = field(hash=False)
    majority: str
    n: int
    countries: tuple[str, ...]
    culture: str = ""

    @property
    def id(self) -> str:
        """Same as `question_id` (so a Question and a Seed can be used alike)."""
        return self.question_id

    @property
    def majority_label(self) -> str:
        return self.options[self.majority]

    @property
    def mean(self) -> float:
        """Mean answer code under the distribution."""
        return mean_code(self.distribution)

    def to_dict(self) -> dict:
        return {
            "question_id": self.question_id,
            "culture": self.culture,
            "topic": self.topic,
            "text": self.text,
            "options": dict(self.options),
            "distribution": dict(self.distribution),
            "majority": self.majority,
            "majority_label": self.majority_label,
            "mean": self.mean,
            "n": self.n,
            "countries": list(self.countries),
        }


#: culture -> (the answer table the seeds were computed from, seeds)
_memo: dict[Culture, tuple[object, list[Seed]]] = {}


def seed_set(culture: str | Culture) -> list[Seed]:
    """The culture's seeds in questionnaire order. Questions none of its countries was asked (no valid
    answer) are absent. Raises UnknownNameError for an unknown culture and DataError when none of its
    countries has WVS data. Memoised per culture and loaded aggregates: do not mutate the result."""
    cult = get_culture(culture)
    table = load_answers()
    hit = _memo.get(cult)
    if hit is not None and hit[0] is table:
        return list(hit[1])
    missing = [c for c in cult.countries if c not in table]
    if len(missing) == len(cult.countries):
        raise DataError(
            f"culture {cult.name!r} has no WVS data (countries {', '.join(cult.countries)}); "
            "import a WVS wave-7 release with `culturellm wvs import FILE`"
        )
    seeds = []
    for q in load_questions():
        answers = [table[c][q.id] for c in cult.countries if c in table and q.id in table[c]]
        if not answers:
            continue
        dist, n = combine(answers, q)
        seeds.append(
            Seed(
                question_id=q.id,
                topic=q.topic,
                text=q.text,
                options=dict(q.options),
                distribution=dist,
                majority=majority_code(dist),
                n=n,
                countries=tuple(a.country for a in answers),
                culture=cult.name,
            )
        )
    if len(_memo) > 256:
        _memo.clear()
    _memo[cult] = (table, seeds)
    return list(seeds)
