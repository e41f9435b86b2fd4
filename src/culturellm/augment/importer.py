"""Import augmented questions published in the CultureLLM release's format into our augmented.jsonl.

The release's augmented sets are JSONL, one new wording per line:

    {"q_id": "27", "q_content": "<the new wording>", "ori_content": "<the seed wording>", "option": "..."}

with `q_id` the WVS question number without the "Q". Each line becomes one record of our format
(`culturellm augment`'s `augmented.jsonl`: id, question_id, step, text, parent, similarity), step
"imported", grouped under the seed record of its question, so `culturellm dataset` and the ablation
read it like our own augmentation. The similarity is recomputed with the embedder: cosine(new
wording, our seed wording). A line is rejected, with its reason counted in OUT/manifest.json, when it
is not a JSON object, lacks `q_id` or `q_content`, names a question that is not one of our seeds, has
an `ori_content` that is not that seed (cosine to our seed wording below `seed_match`), is below the
similarity threshold `t1`, or repeats a text already kept.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from culturellm.augment.config import DEFAULT_T1
from culturellm.augment.pipeline import record_id
from culturellm.augment.state import RECORDS
from culturellm.errors import DataError
from culturellm.jsonio import read_text, write_json, write_jsonl
from culturellm.numbers import check_number
from culturellm.safewrite import check_distinct

IMPORTED = "imported"
SEED_MATCH = 0.80  # the release's seed wording vs ours: same question, maybe other punctuation


def _read_lines(path: Path) -> list[tuple[int, Any]]:
    out = []
    for n, line in enumerate(read_text(path).split("\n"), 1):  # read_text names the file on bad bytes
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except (ValueError, RecursionError):  # nested too deeply, a 5,000-digit number: not a record
            out.append((n, None))
    if not out:
        raise DataError(f"{path}: no records (empty file)")
    return out


def _claim_out(out_dir: Path, force: bool) -> None:
    """Claim OUT (culturellm.outdir): new, an earlier import's, or --force; never a directory of the
    user's files or another command's output (e.g. a paid augmentation run). An import made before
    claim markers (its manifest says so) is adopted."""
    from culturellm.outdir import claim, owner

    try:
        kind = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError, RecursionError):
        kind = None
    legacy = owner(out_dir) is None and kind == "culturellm.augment.import"
    claim(out_dir, "augment-import", force=force or legacy)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str | bool) or value is None else json.dumps(value)[:40]
    return text if len(text) <= 40 else text[:37] + "..."


def _question_id(raw: Any) -> str | None:
    s = str(raw).strip().upper().removeprefix("Q") if isinstance(raw, (str, int)) else ""
    return f"Q{int(s)}" if s.isascii() and s.isdigit() and len(s) <= 6 else None  # not "²", not 5,000 digits


def _candidates(lines: list[tuple[int, Any]], seeds: dict[str, Any], reject) -> list[dict[str, Any]]:
    """Lines with the fields we need and a known question (others rejected with a reason)."""
    cands = []
    for n, obj in lines:
        if not isinstance(obj, dict):
            reject(n, "not a JSON object")
            continue
        qid = _question_id(obj.get("q_id"))
        text = obj.get("q_content")
        if qid is None:
            reject(n, f"q_id {_short(obj.get('q_id'))} is not a WVS question number")
        elif not isinstance(text, str) or not text.strip():
            reject(n, "q_content missing or empty")
        elif qid not in seeds:
            reject(n, f"no seed question {qid}")
        else:
            ori = obj.get("ori_content")
            cands.append(
                {"line": n, "qid": qid, "text": text.strip(), "ori": ori, "option": obj.get("option")}
            )
    return cands


def import_release(
    path: Path | str,
    out_dir: Path | str,
    embedder: Any,
    *,
    t1: float = DEFAULT_T1,
    seed_match: float = SEED_MATCH,
    force: bool = False,
) -> dict[str, Any]:
    """Read a release-format JSONL; write OUT/augmented.jsonl and OUT/manifest.json; return the manifest."""
    from culturellm.wvs import load_questions

    path, out_dir = Path(path), Path(out_dir)
    check_number(t1, "--t1", lo=-1.0, hi=1.0)
    check_number(seed_match, "seed_match", lo=-1.0, hi=1.0)
    check_distinct(out_dir / RECORDS, [path], "FILE")
    lines = _read_lines(path)
    _claim_out(out_dir, force)
    seeds = {q.id: q for q in load_questions()}
    rejected: list[dict[str, Any]] = []

    def reject(n: int, reason: str) -> None:
        rejected.append({"line": n, "reason": reason})

    cands = _candidates(lines, seeds, reject)
    texts = [c["text"] for c in cands] + [seeds[c["qid"]].text for c in cands]
    oris = [c["ori"] if isinstance(c["ori"], str) and c["ori"].strip() else None for c in cands]
    vecs = embedder.encode(texts + [o for o in oris if o is not None])
    k = len(cands)
    ori_vecs = iter(vecs[2 * k :])
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    for i, c in enumerate(cands):
        sim = float(vecs[i] @ vecs[k + i])
        match = float(next(ori_vecs) @ vecs[k + i]) if oris[i] is not None else None
        if match is not None and match < seed_match:
            reject(c["line"], f"ori_content is not seed {c['qid']} (cosine {match:.2f} < {seed_match})")
        elif sim < t1:
            reject(c["line"], f"below t1: cosine {sim:.2f} to seed {c['qid']} < {t1}")
        elif c["text"].casefold() in seen or c["text"].casefold() == seeds[c["qid"]].text.casefold():
            reject(c["line"], "duplicate text")
        else:
            seen.add(c["text"].casefold())
            groups[c["qid"]].append({**c, "sim": sim, "match": match})
    rows = _records(groups, seeds, path.name)
    write_jsonl(out_dir / RECORDS, rows)
    reasons = Counter(r["reason"].split(":")[0].split(" (")[0] for r in rejected)
    manifest = {
        "kind": "culturellm.augment.import",
        "source": str(path),
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "embedder": getattr(embedder, "name", str(embedder)),
        "t1": t1,
        "seed_match": seed_match,
        "counts": {
            "lines": len(lines),
            "seeds": len(groups),
            "accepted": sum(len(g) for g in groups.values()),
            "rejected": len(rejected),
        },
        "rejection_reasons": dict(reasons),
        "rejected": rejected,
    }
    write_json(out_dir / "manifest.json", manifest)
    if not rows:
        top = ", ".join(f"{r} {n}" for r, n in reasons.most_common(3))
        raise DataError(f"{path}: no record fits a seed question ({top}); see {out_dir / 'manifest.json'}")
    return manifest


def _records(groups: dict[str, list[dict[str, Any]]], seeds: dict[str, Any], source: str) -> list[dict]:
    rows: list[dict[str, Any]] = []
    for qid in sorted(groups, key=lambda q: int(q[1:])):
        seed = seeds[qid]
        sid = record_id(qid, "seed", seed.text)
        g = groups[qid]
        rows.append(
            {"id": sid, "question_id": qid, "step": "seed", "text": seed.text, "parent": None,
             "similarity": 1.0, "group_size": 1 + len(g)}
        )  # fmt: skip
        for c in g:
            rows.append(
                {"id": record_id(qid, IMPORTED, c["text"]), "question_id": qid, "step": IMPORTED,
                 "text": c["text"], "parent": sid, "similarity": round(c["sim"], 6),
                 "seed_match": None if c["match"] is None else round(c["match"], 6),
                 "source": f"{source}:{c['line']}", "release_option": c["option"]}
            )  # fmt: skip
    return rows
