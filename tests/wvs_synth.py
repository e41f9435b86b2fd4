"""Synthetic WVS wave-7 microdata with known answers, written by the tests themselves (no data from
outside the repository).

Every (country, question) cell is built from a chosen list of valid codes (so its weighted counts and
majority are known by construction), padded with the WVS missing-value codes and out-of-range codes
that must not count; one question per country is "not asked" (-4 everywhere) and must have no aggregate.
The expected aggregates are computed here with plain Python loops over the rows, independently of
`culturellm.wvs.aggregate`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from culturellm.wvs import load_questions
from culturellm.wvs.countries import COUNTRIES

MISSING = (-1, -2, -4, -5)
WEIGHTS = (0.5, 1.0, 1.0, 1.5, 2.0)


@dataclass
class Synthetic:
    frames: dict[str, pd.DataFrame]  # country -> raw microdata frame (official column names)
    expected: dict[tuple[str, str], tuple[dict[str, float], int]]  # (country, qid) -> (counts, n)
    not_asked: dict[str, str]  # country -> the question id never asked there

    def write_csv_dir(self, directory: Path) -> Path:
        """One `<ISO3>.csv` per country, as the shared CI data is laid out."""
        directory.mkdir(parents=True, exist_ok=True)
        for country, df in self.frames.items():
            df.to_csv(directory / f"{country}.csv", index=False)
        return directory

    def combined(self) -> pd.DataFrame:
        return pd.concat(list(self.frames.values()), ignore_index=True)


def _column(rng: random.Random, codes: tuple[int, ...], rows: int) -> list[float]:
    """A question column: mostly valid codes, some missing codes, an out-of-range code, an empty cell."""
    col = [float(rng.choice(codes)) for _ in range(rows - 6)]
    col += [float(c) for c in MISSING] + [float(max(codes) + 7), float("nan")]
    rng.shuffle(col)
    return col


def synthetic_microdata(
    countries: tuple[str, ...] = ("IRQ", "JOR"), rows: int = 40, seed: int = 0
) -> Synthetic:
    """Microdata for `countries` (ISO3 codes), `rows` respondents each, with W_WEIGHT."""
    rng = random.Random(seed)
    questions = load_questions()
    frames, expected, not_asked = {}, {}, {}
    for ci, country in enumerate(countries):
        skip = questions[(7 * ci + 3) % len(questions)].id
        not_asked[country] = skip
        data: dict[str, list] = {
            "B_COUNTRY": [COUNTRIES[country].numeric] * rows,
            "B_COUNTRY_ALPHA": [country] * rows,
            "W_WEIGHT": [rng.choice(WEIGHTS) for _ in range(rows)],
        }
        for q in questions:
            data[q.id] = [-4.0] * rows if q.id == skip else _column(rng, q.codes, rows)
        df = pd.DataFrame(data)
        frames[country] = df
        for q in questions:
            counts = {c: 0.0 for c in q.options}
            n = 0
            for w, v in zip(data["W_WEIGHT"], data[q.id], strict=True):
                if v == v and str(int(v)) in counts:  # v == v: not NaN
                    counts[str(int(v))] += w
                    n += 1
            if n:
                expected[country, q.id] = (counts, n)
    return Synthetic(frames, expected, not_asked)
