"""`culturellm augment check FILE`: the meaning verifier's verdict on every row of an augmented set,
ours (augmented.jsonl, or its directory) or the CultureLLM release's format (`augment import` reads
it: q_id, q_content, ori_content).

Writes one JSON line per row (`kind` culturellm.verdict; row number, id, question, seed, text, verdict
keep|reject|skipped, p_changed, reasons, feature values). By default the file goes beside the input:
`verdicts.jsonl` in an augmented set's directory (where `dataset --drop-rejected` and `review` find
it), `FILE.verdicts.jsonl` for any other file. A user's existing file is never replaced
(culturellm.safewrite).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from culturellm.errors import DataError
from culturellm.jsonio import read_text
from culturellm.review.store import KIND, VERDICTS, load_verdicts
from culturellm.runlayout import RECORDS

__all__ = [
    "KIND",
    "VERDICTS",
    "default_out",
    "is_ours",
    "load_verdicts",
    "read_rows",
    "score",
    "summary",
    "write",
]


def read_rows(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """(format, rows) of an augmented set: "augmented" (ours) or "release". Every row: line, id,
    question_id, seed, text, step. Seed rows of ours are left out; a bad file is a DataError."""
    if path.is_dir():
        path = path / RECORDS
    objs = []
    for n, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            raise DataError(f"{path}:{n}: not a JSON line") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{n}: not a JSON object")
        objs.append((n, obj))
    if not objs:
        raise DataError(f"{path}: no records (empty file)")
    n0, first = objs[0]
    if "q_content" in first:
        return "release", [_release_row(path, n, o) for n, o in objs]
    if "text" in first and "question_id" in first:
        return "augmented", _our_rows(path, objs)
    raise DataError(
        f"{path}:{n0}: neither an augmented.jsonl record (question_id, text) nor a release record (q_content)"
    )


def _release_row(path: Path, n: int, o: dict[str, Any]) -> dict[str, Any]:
    from culturellm.wvs import load_questions
    from culturellm.wvs.questions import question_number

    qid = question_number(o.get("q_id"))
    text, seed = o.get("q_content"), o.get("ori_content")
    if qid is None or not isinstance(text, str) or not text.strip():
        raise DataError(f"{path}:{n}: a release record needs q_id (a WVS question number) and q_content")
    if not isinstance(seed, str) or not seed.strip():
        seeds = {q.id: q.text for q in load_questions()}
        if qid not in seeds:
            raise DataError(f"{path}:{n}: no ori_content and no seed question {qid}")
        seed = seeds[qid]
    return {
        "line": n,
        "id": f"{qid}-line{n}",
        "question_id": qid,
        "seed": seed.strip(),
        "text": text.strip(),
        "step": None,
    }


def _our_rows(path: Path, objs: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    seeds: dict[str, str] = {}
    rows = []
    for n, r in objs:
        if not isinstance(r.get("text"), str) or not r.get("question_id") or not r.get("id"):
            raise DataError(f"{path}:{n}: record without id, question_id or text")
        if r.get("step", "seed") == "seed":
            seeds[str(r["question_id"])] = r["text"]
            continue
        rows.append(
            {
                "line": n,
                "id": str(r["id"]),
                "question_id": str(r["question_id"]),
                "text": r["text"],
                "step": r.get("step"),
            }
        )
    for r in rows:
        if r["question_id"] not in seeds:
            raise DataError(f"{path}:{r['line']}: no seed record for question {r['question_id']}")
        r["seed"] = seeds[r["question_id"]]
    return rows


def default_out(path: Path, fmt: str) -> Path:
    if path.is_dir():
        return path / VERDICTS
    return path.with_name(VERDICTS) if fmt == "augmented" else path.with_name(path.name + ".verdicts.jsonl")


def is_ours(path: Path) -> bool:
    """A verdict file this command wrote (its first line says so; at most 64 KiB of it is read, so a
    huge one-line file is not read whole to decide)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.readline(1 << 16)).get("kind") == KIND
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def score(rows: list[dict[str, Any]], verifier: Any, progress: Any = None) -> list[dict[str, Any]]:
    """Verdict rows: translations are not scored (the verifier reads English). `progress`: None,
    True (culturellm's own bar: rows, rows/s, time left) or a rich Progress to add the task to."""
    from culturellm.progress import progress_task

    todo = [r for r in rows if r["step"] != "translation"]
    with progress_task(progress, len(todo), "checking", rate="rows") as advance:
        found = verifier.verdicts([(r["seed"], r["text"]) for r in todo], advance=advance)
    verdicts = dict(zip((id(r) for r in todo), found, strict=True))
    out = []
    for r in rows:
        v = verdicts.get(id(r))
        base = {"kind": KIND, **{k: r[k] for k in ("line", "id", "question_id", "seed", "text")}}
        out.append({**base, **(v.as_dict() if v else {"verdict": "skipped", "reasons": ["not English"]})})
    return out


def write(out: Path, rows: list[dict[str, Any]]) -> None:
    from culturellm.safewrite import target

    with target(out) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts: rows, kept, rejected, skipped, the rejected rows' first reasons, and the estimated share
    of the kept rows that change the meaning (culturellm.meaning.estimate)."""
    from culturellm.meaning.estimate import estimate

    c = Counter(r["verdict"] for r in rows)
    reasons = Counter(r["reasons"][0] for r in rows if r["verdict"] == "reject" and r["reasons"])
    return {
        "rows": len(rows),
        "kept": c["keep"],
        "rejected": c["reject"],
        "skipped": c["skipped"],
        "reasons": dict(reasons.most_common()),
        "estimate": estimate([r["p_changed"] for r in rows if r["verdict"] == "keep"]),
    }
