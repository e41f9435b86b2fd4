"""The 50 WVS wave-7 seed questions of CultureLLM, loaded as typed records."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturellm.errors import DataError
from culturellm.jsonio import iter_jsonl
from culturellm.paths import package_data

QUESTIONS_FILE = "wvs_questions.jsonl"


@dataclass(frozen=True)
class Question:
    """One survey question. `options` maps answer code (a string such as "1") to its label, in the
    questionnaire's order (which is not always numeric: the migration items list 2, 1, 0)."""

    id: str
    topic: str
    text: str
    options: dict[str, str] = field(hash=False)

    @property
    def question_id(self) -> str:
        """Same as `id` (so a Question and a Seed can be used alike)."""
        return self.id

    @property
    def codes(self) -> tuple[int, ...]:
        """The valid answer codes as integers, in option order."""
        return tuple(int(c) for c in self.options)

    def to_dict(self) -> dict:
        return {"id": self.id, "topic": self.topic, "text": self.text, "options": dict(self.options)}


def parse_questions(path: str | Path) -> list[Question]:
    """Read a questions JSONL file (one object per line: id, topic, text, options code->label)."""
    out: list[Question] = []
    seen: set[str] = set()
    for i, row in enumerate(iter_jsonl(path), 1):
        where = f"{path}:{i}"
        for key in ("id", "topic", "text", "options"):
            if key not in row:
                raise DataError(f"{where}: missing field '{key}'")
        opts = row["options"]
        if not isinstance(opts, dict) or not opts:
            raise DataError(f"{where}: field 'options' must be a non-empty object code -> label")
        for code in opts:
            try:
                int(code)
            except ValueError:
                raise DataError(f"{where}: option code {code!r} is not an integer") from None
        qid = str(row["id"])
        if qid in seen:
            raise DataError(f"{where}: duplicate question id {qid}")
        seen.add(qid)
        out.append(
            Question(
                id=qid,
                topic=str(row["topic"]),
                text=str(row["text"]),
                options={str(k): str(v) for k, v in opts.items()},
            )
        )
    return out


@functools.cache
def load_questions() -> list[Question]:
    """The bundled 50 seed questions (Q27 ... Q233), in questionnaire order. Memoised: do not mutate."""
    return parse_questions(package_data(QUESTIONS_FILE))


@functools.cache
def questions_by_id() -> dict[str, Question]:
    return {q.id: q for q in load_questions()}


def question_number(raw: Any) -> str | None:
    """A WVS question id ("Q27") from a release's q_id (27, "27", "q27"), or None when it is not one."""
    s = str(raw).strip().upper().removeprefix("Q") if isinstance(raw, (str, int)) else ""
    return f"Q{int(s)}" if s.isascii() and s.isdigit() and len(s) <= 6 else None  # not "²", not 5,000 digits
