"""Say it when the data is poor (issue #30, step 4): the estimated share of kept samples that change the
meaning (mean of the shipped gate's P(changed)) in the run's report, with a warning when high; known-bad
rows (labelled changed release rewordings, scored by the shipped gate from the committed feature cache)
raise it and known-good ones do not; the review page lists the most doubtful sample first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from culturellm.jsonio import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "results" / "verifier_features.npz"
LABELS = ROOT / "benchmarks" / "data" / "release_labels_more.jsonl"


def _scored_rows(label: str, n: int = 40, kept_by_gate: bool = False) -> list[dict]:
    """An augmented set of `n` labelled release rewordings (`label` same or changed; `kept_by_gate`:
    only those the shipped gate keeps), each with the shipped gate's P(changed) from the cached
    features, as the gate writes them on kept records."""
    from culturellm.augment.pipeline import record_id
    from culturellm.meaning.verifier import Verifier, load_params

    z = np.load(CACHE)
    p = Verifier(None, lm=object(), params=load_params()).probabilities(z["more_x"], head=z["more_head"])
    labelled = [json.loads(ln) for ln in LABELS.read_text(encoding="utf-8").splitlines()]
    rows, seeds = [], set()
    t = load_params().threshold if kept_by_gate else 1.0
    for r, pc in [(r, pc) for r, pc in zip(labelled, p, strict=True) if r["label"] == label and pc < t][:n]:
        q = f"Q{r['q_id']}"
        if q not in seeds:
            seeds.add(q)
            rows.append({"id": record_id(q, "seed", r["seed"]), "question_id": q, "step": "seed",
                         "text": r["seed"], "parent": None, "similarity": 1.0})  # fmt: skip
        rows.append({"id": record_id(q, "imported", r["candidate"]), "question_id": q, "step": "imported",
                     "text": r["candidate"], "parent": None, "similarity": 0.9,
                     "p_changed": round(float(pc), 4)})  # fmt: skip
    return rows


def test_known_bad_rows_raise_the_reports_warning_and_good_ones_do_not(tmp_path):
    from culturellm.meaning.estimate import WARN_CHANGED, append_to_report

    # known-bad: rewordings labelled changed, all kept (a permissive filter let them through); known
    # good: rewordings labelled same that the gate keeps
    for label, warned in (("changed", True), ("same", False)):
        write_jsonl(tmp_path / "augmented.jsonl", _scored_rows(label, kept_by_gate=not warned))
        report = tmp_path / "report.md"
        report.write_text("# report\n", encoding="utf-8")
        est = append_to_report(report, tmp_path / "augmented.jsonl")
        text = report.read_text(encoding="utf-8")
        assert text.startswith("# report\n") and "Estimated share of the 40 kept rewordings" in text
        assert est["warn"] is warned and ("**Warning**" in text) is warned, (label, est)
        assert (est["estimated_changed"] > WARN_CHANGED) is warned


def test_estimate_of_records_and_unscored_sets():
    from culturellm.meaning.estimate import describe, of_records, report_section

    rows = [{"step": "seed"}, {"step": "paraphrase", "p_changed": 0.5}, {"step": "synonym", "p_changed": 0.1},
            {"step": "translation", "p_changed": 0.9}, {"step": "synonym"}]  # fmt: skip
    est = of_records(rows)
    assert est == {"scored": 2, "estimated_changed": 0.3, "warn": True, "warn_at": 0.2, "unscored": 1}
    assert "30%" in describe(est) and "WARNING" in describe(est)
    none = of_records([{"step": "paraphrase"}])
    assert none["estimated_changed"] is None and not none["warn"] and "not scored" in describe(none)
    assert "not scored by the meaning gate" in report_section(none)


def test_review_lists_the_most_doubtful_first(tmp_path):
    from culturellm.review.store import load_items

    rows = _scored_rows("changed", 5) + _scored_rows("same", 5)[1:]
    rows.append({**rows[-1], "id": "no-score", "text": "not scored", "p_changed": None})
    write_jsonl(tmp_path / "augmented.jsonl", rows)
    items = load_items(tmp_path)
    ps = [it["p_changed"] for it in items]
    assert ps[-1] is None and items[-1]["id"] == "no-score"
    assert ps[:-1] == sorted(ps[:-1], reverse=True)
    assert len(items) == sum(r["step"] != "seed" for r in read_jsonl(tmp_path / "augmented.jsonl"))
