"""Stored aggregates: the bundled file (12 countries, built by scripts/build_wvs_answers.py) plus the
user's imported aggregates in `data_dir()` (`culturellm wvs import`), which override bundled countries
and add new ones.

File format (JSONL, one line per country and question, sorted by country then questionnaire order):
    {"country": "ARG", "question_id": "Q27", "n": 998, "counts": {"1": 512, "2": 377, ...},
     "majority": "1", "mean": 1.612224}
`counts` are weighted counts over the question's option codes (integers when unweighted, otherwise
rounded to 6 decimals), `n` the unweighted number of valid answers; `majority` and `mean` are
derived from `counts` and written for readers of the file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path

from culturellm.errors import DataError
from culturellm.jsonio import atomic_write_text, iter_jsonl
from culturellm.paths import data_dir, package_data
from culturellm.wvs.aggregate import CountryAnswers
from culturellm.wvs.questions import questions_by_id

ANSWERS_FILE = "wvs_answers.jsonl"

#: country -> question id -> answers
AnswerTable = dict[str, dict[str, CountryAnswers]]


def _num(x: float) -> int | float:
    r = round(float(x), 6)
    return int(r) if r == int(r) else r


def answers_to_lines(answers: Iterable[CountryAnswers]) -> str:
    """Deterministic JSONL text of aggregates (same input -> byte-identical output)."""
    order = {qid: i for i, qid in enumerate(questions_by_id())}
    rows = sorted(answers, key=lambda a: (a.country, order.get(a.question_id, len(order)), a.question_id))
    lines = []
    for a in rows:
        row = {
            "country": a.country,
            "question_id": a.question_id,
            "n": a.n,
            "counts": {c: _num(w) for c, w in a.counts.items()},
            "majority": a.majority,
            "mean": _num(a.mean),
        }
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    return "".join(lines)


def write_answers(path: str | Path, answers: Iterable[CountryAnswers]) -> None:
    """Write aggregates atomically."""
    atomic_write_text(path, answers_to_lines(answers))


def read_answers(path: str | Path) -> AnswerTable:
    """Read an aggregates file; a malformed line raises DataError naming the file, line and field."""
    questions = questions_by_id()
    table: AnswerTable = {}
    for i, row in enumerate(iter_jsonl(path), 1):
        where = f"{path}:{i}"
        for key in ("country", "question_id", "n", "counts"):
            if key not in row:
                raise DataError(f"{where}: missing field '{key}'")
        qid = str(row["question_id"])
        q = questions.get(qid)
        if q is None:
            raise DataError(f"{where}: field 'question_id': unknown question {qid!r}")
        counts = row["counts"]
        if not isinstance(counts, dict):
            raise DataError(f"{where}: field 'counts' must be an object code -> count")
        try:
            full = {c: float(counts.get(c, 0)) for c in q.options}
            n = int(row["n"])
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{where}: fields 'counts' and 'n' must hold numbers") from None
        total = sum(full.values())
        if set(counts) - set(q.options) or any(v < 0 for v in full.values()) or not 0 < total < math.inf:
            raise DataError(
                f"{where}: field 'counts' must hold non-negative finite counts for codes "
                f"{list(q.options)}, not all zero"
            )
        country = str(row["country"]).upper()
        if not re.fullmatch(r"[A-Z]{3}", country):
            raise DataError(f"{where}: field 'country' must be an ISO 3166 alpha-3 code, got {country!r}")
        table.setdefault(country, {})[qid] = CountryAnswers(country, qid, full, n)
    return table


def bundled_answers_path() -> Path:
    return package_data(ANSWERS_FILE)


def user_answers_path() -> Path:
    return data_dir() / ANSWERS_FILE


_cache: dict[tuple, AnswerTable] = {}


def load_answers() -> AnswerTable:
    """Bundled aggregates overlaid with the user's imported ones (a country in the user file replaces
    the bundled country entirely). Memoised; re-read when the user file changes."""
    user = user_answers_path()
    try:
        st = user.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        stamp = None
    key = (str(user), stamp)
    if key not in _cache:
        table = dict(read_bundled())
        if stamp is not None:
            table.update(read_answers(user))
        _cache.clear()
        _cache[key] = table
    return _cache[key]


_bundled: AnswerTable | None = None


def read_bundled() -> AnswerTable:
    global _bundled
    if _bundled is None:
        _bundled = read_answers(bundled_answers_path())
    return _bundled


def available_countries() -> list[str]:
    """ISO3 codes with at least one aggregated answer (bundled or imported), sorted."""
    return sorted(load_answers())


def merge_user_answers(answers: Iterable[CountryAnswers]) -> list[str]:
    """Add imported aggregates to the user file: the countries in `answers` replace those countries'
    previous user aggregates. Returns the countries written."""
    new: AnswerTable = {}
    for a in answers:
        new.setdefault(a.country, {})[a.question_id] = a
    path = user_answers_path()
    table = read_answers(path) if path.exists() else {}
    table.update(new)
    write_answers(path, [a for qs in table.values() for a in qs.values()])
    return sorted(new)
