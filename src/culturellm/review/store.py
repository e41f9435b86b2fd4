"""Human review of an augmented set, as the paper's human study did it: reviewers rate each
augmented sample against its seed (same meaning / changed meaning / broken).

Ratings live in `AUG_DIR/reviews.jsonl`, beside the set, append-only: one line per rating,
`{"id", "question_id", "step", "reviewer", "rating", "at"}`. A reviewer who rates a sample again
appends a new line; the latest line of each (reviewer, sample) counts. `stats()` gives per-step
acceptance by reviewers and agreement between reviewers (Krippendorff's alpha, nominal, from the
`krippendorff` package; Cohen's kappa of each pair from scikit-learn); `rejected_ids()` the samples
that reviewers rejected (for `culturellm dataset --drop-rejected`).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from culturellm.errors import DataError
from culturellm.jsonio import append_jsonl, iter_jsonl, read_text
from culturellm.runlayout import RECORDS
from culturellm.safewrite import check_output_file

REVIEWS = "reviews.jsonl"
VERDICTS = "verdicts.jsonl"  # the meaning verifier's verdicts (`culturellm augment check`)
KIND = "culturellm.verdict"
RATINGS = ("same", "changed", "broken")
LABELS = {"same": "same meaning", "changed": "changed meaning", "broken": "broken"}
_REVIEWER = re.compile(r"^[\w .@-]{1,64}$")


def reviews_path(aug: Path | str) -> Path:
    """The ratings file of an augmented set (a directory or its augmented.jsonl)."""
    aug = Path(aug)
    return (aug if aug.is_dir() else aug.parent) / REVIEWS


def augmented_path(aug: Path | str) -> Path:
    aug = Path(aug)
    path = aug / RECORDS if aug.is_dir() else aug
    if not path.is_file():
        raise DataError(f"{path}: augmented set not found (make it with `culturellm augment --out DIR`)")
    return path


def load_items(aug: Path | str) -> list[dict[str, Any]]:
    """The samples to review, every non-seed record with its seed's text, the most doubtful first: by
    the meaning gate's P(changed) (from verdicts.jsonl, else the record's own `p_changed`), highest
    first; samples without one after them, in file order."""
    path = augmented_path(aug)
    seeds: dict[str, str] = {}
    items = []
    for i, r in enumerate(iter_jsonl(path, tolerate_torn_tail=True), 1):
        if not isinstance(r.get("text"), str) or not r.get("question_id") or not r.get("id"):
            raise DataError(f"{path}:{i}: record without id, question_id or text")
        if r.get("step", "seed") == "seed":
            seeds[r["question_id"]] = r["text"]
            continue
        items.append(
            {
                "id": r["id"],
                "question_id": r["question_id"],
                "step": r.get("step"),
                "seed": seeds.get(r["question_id"], ""),
                "text": r["text"],
                "similarity": r.get("similarity"),
                "swaps": r.get("swaps"),
                "back_translation": r.get("back_translation"),
                "p_changed": r.get("p_changed"),
            }
        )
    verdicts = load_verdicts(path) or {}
    for it in items:
        v = verdicts.get(it["id"])
        it["verdict"] = None if v is None else {k: v.get(k) for k in ("verdict", "p_changed", "reasons")}
        p = (v or {}).get("p_changed", it["p_changed"])
        it["p_changed"] = float(p) if isinstance(p, int | float) and not isinstance(p, bool) else None
    return sorted(items, key=lambda it: -it["p_changed"] if it["p_changed"] is not None else 2.0)


def check_reviewer(name: str) -> str:
    name = (name or "").strip()
    if not _REVIEWER.match(name):
        raise DataError(f"reviewer name {name!r}: use 1-64 letters, digits, spaces, '.', '@', '_' or '-'")
    return name


class ReviewStore:
    """Append-only ratings of one augmented set (thread-safe appends)."""

    def __init__(self, aug: Path | str) -> None:
        self.items = load_items(aug)
        self.by_id = {it["id"]: it for it in self.items}
        self.path = reviews_path(augmented_path(aug))
        # never append to a file the user made or through a link (culturellm.safewrite)
        check_output_file(self.path, ours=_review_file, flag="ratings file")
        self._lock = threading.Lock()

    def rate(self, reviewer: str, sample_id: str, rating: str) -> dict[str, Any]:
        reviewer = check_reviewer(reviewer)
        if rating not in RATINGS:
            raise DataError(f"rating {rating!r}: expected one of {', '.join(RATINGS)}")
        item = self.by_id.get(sample_id)
        if item is None:
            raise DataError(f"sample {sample_id!r} is not in this augmented set")
        row = {
            "id": sample_id,
            "question_id": item["question_id"],
            "step": item["step"],
            "reviewer": reviewer,
            "rating": rating,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with self._lock:
            append_jsonl(self.path, [row])
        return row

    def latest(self) -> dict[tuple[str, str], str]:
        """{(reviewer, sample id): latest rating}."""
        return latest_ratings(self.path)


def _review_file(path: Path) -> bool:
    """A reviews.jsonl this page wrote: one or more rows, every one a rating (reviewer, id, rating)."""
    try:
        rows = list(iter_jsonl(path, tolerate_torn_tail=True))
    except DataError:
        return False
    return bool(rows) and all({"reviewer", "id", "rating"} <= r.keys() for r in rows)


def latest_ratings(path: Path) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    if not path.exists():
        return out
    for i, r in enumerate(iter_jsonl(path, tolerate_torn_tail=True), 1):
        if r.get("rating") not in RATINGS or not r.get("reviewer") or not r.get("id"):
            raise DataError(f"{path}:{i}: a rating needs 'id', 'reviewer' and 'rating' ({'/'.join(RATINGS)})")
        out[(str(r["reviewer"]), str(r["id"]))] = r["rating"]
    return out


def rejected_ids(aug: Path | str) -> set[str]:
    """Samples that most of their reviewers rated changed meaning or broken (a tie rejects: a
    wrong-meaning sample trained with the seed's answer costs more than a lost sample)."""
    path = reviews_path(aug)
    if not path.exists():
        raise DataError(f"{path}: no reviews beside the augmented set (rate it with `culturellm review`)")
    votes: dict[str, Counter] = defaultdict(Counter)
    for (_, sid), rating in latest_ratings(path).items():
        votes[sid]["same" if rating == "same" else "rejected"] += 1
    return {sid for sid, c in votes.items() if c["rejected"] >= c["same"]}


def stats(aug: Path | str) -> dict[str, Any]:
    """Per-step acceptance by reviewers and agreement between reviewers."""
    items = load_items(aug)
    latest = latest_ratings(reviews_path(augmented_path(aug)))
    reviewers = sorted({r for r, _ in latest})
    step_of = {it["id"]: it["step"] for it in items}
    steps: dict[str, dict[str, Any]] = {}
    for step in dict.fromkeys(it["step"] for it in items):
        ids = [it["id"] for it in items if it["step"] == step]
        ratings = [v for (_, sid), v in latest.items() if step_of.get(sid) == step]
        c = Counter(ratings)
        steps[step] = {
            "samples": len(ids),
            "reviewed": sum(1 for sid in ids if any((r, sid) in latest for r in reviewers)),
            "ratings": len(ratings),
            **{k: c[k] for k in RATINGS},
            "acceptance": round(c["same"] / len(ratings), 4) if ratings else None,
        }
    return {
        "reviewers": {r: sum(1 for rr, _ in latest if rr == r) for r in reviewers},
        "steps": steps,
        "agreement": agreement(latest, [it["id"] for it in items]),
    }


def agreement(latest: dict[tuple[str, str], str], ids: list[str]) -> dict[str, Any]:
    """Krippendorff's alpha (nominal, all reviewers, missing ratings allowed) and Cohen's kappa of
    each pair of reviewers on the samples both rated. None where there is too little to compute."""
    import numpy as np

    reviewers = sorted({r for r, _ in latest})
    shared = [sid for sid in ids if sum((r, sid) in latest for r in reviewers) >= 2]
    out: dict[str, Any] = {
        "items_rated_by_two_or_more": len(shared),
        "krippendorff_alpha": None,
        "cohen_kappa": {},
    }
    if len(reviewers) < 2 or not shared:
        return out
    code = {k: i for i, k in enumerate(RATINGS)}
    data = np.array(
        [[code[latest[(r, sid)]] if (r, sid) in latest else np.nan for sid in shared] for r in reviewers],
        dtype=float,
    )
    values = {latest[(r, sid)] for r in reviewers for sid in shared if (r, sid) in latest}
    if len(values) > 1:
        import krippendorff

        out["krippendorff_alpha"] = round(
            float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")), 4
        )
    elif values:
        out["krippendorff_alpha"] = 1.0  # every rating the same: perfect (alpha is undefined)
    from sklearn.metrics import cohen_kappa_score

    for a, b in itertools.combinations(reviewers, 2):
        both = [sid for sid in shared if (a, sid) in latest and (b, sid) in latest]
        if not both:
            continue
        ya, yb = [latest[(a, s)] for s in both], [latest[(b, s)] for s in both]
        if len(set(ya) | set(yb)) == 1:
            kappa = 1.0
        else:
            kappa = round(float(cohen_kappa_score(ya, yb, labels=list(RATINGS))), 4)
        out["cohen_kappa"][f"{a} / {b}"] = {"items": len(both), "kappa": kappa}
    return out


def load_verdicts(aug: Path | str) -> dict[str, dict[str, Any]] | None:
    """{sample id: verdict row} from the verdicts.jsonl beside an augmented set, None when it has none."""
    path = reviews_path(aug).with_name(VERDICTS)
    if not path.is_file():
        return None
    out = {}
    for n, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except (ValueError, RecursionError):
            raise DataError(f"{path}:{n}: not a JSON line") from None
        if not isinstance(r, dict) or r.get("kind") != KIND or not isinstance(r.get("id"), str):
            raise DataError(f"{path}:{n}: not a verdict row of `culturellm augment check`")
        out[r["id"]] = r
    return out
