"""How much of a kept set changes the meaning, estimated from the meaning gate's calibrated P(changed).

The gate's probability is a logistic regression fitted on labelled pairs, so over many kept samples
the mean of P(changed) estimates the share of them that change the seed's meaning (on the labelled
GPT-4 rewordings, held out by question, the mean over kept pairs is within a few points of the true
share: docs/augmentation.md). A share above WARN_CHANGED is warned about: past it the training set
teaches wrong meanings often enough to matter (one sample in five answered as its seed would be).
`culturellm augment`, `augment import`, `augment check` and the run's report print it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

WARN_CHANGED = 0.20  # warn when more than this share of the kept samples is estimated to change meaning
SCORED_STEPS = ("paraphrase", "synonym", "imported")  # translations are not scored (English gate)


def estimate(p_kept: Sequence[float], warn_at: float = WARN_CHANGED) -> dict[str, Any]:
    """{scored, estimated_changed (mean P(changed), None when nothing was scored), warn, warn_at}."""
    ps = [float(p) for p in p_kept]
    share = sum(ps) / len(ps) if ps else None
    return {
        "scored": len(ps),
        "estimated_changed": None if share is None else round(share, 4),
        "warn": share is not None and share > warn_at,
        "warn_at": warn_at,
    }


def of_records(rows: Iterable[dict[str, Any]], warn_at: float = WARN_CHANGED) -> dict[str, Any]:
    """The estimate over the kept records of an augmented.jsonl (their `p_changed`, written by the
    gate); `unscored`: kept rewordings without one (a filter other than the gate kept them)."""
    kept = [r for r in rows if r.get("step") in SCORED_STEPS]
    ps = [r["p_changed"] for r in kept if isinstance(r.get("p_changed"), int | float)]
    return {**estimate(ps, warn_at), "unscored": len(kept) - len(ps)}


def describe(est: dict[str, Any] | None) -> str:
    """One line: the estimated share, and the warning when it is high."""
    if not est or est.get("estimated_changed") is None:
        n = (est or {}).get("unscored", 0)
        return f"estimated changed meaning among kept: not scored ({n} kept without the meaning gate)"
    share, n = est["estimated_changed"], est["scored"]
    line = f"estimated changed meaning among kept: {share:.0%} (mean P(changed) of {n} kept samples)"
    if est.get("warn"):
        line += (
            f"; WARNING: above {est['warn_at']:.0%}, this set likely trains on wrong meanings: read "
            "the most doubtful first (`culturellm review`), use a stronger augmenter or a lower threshold"
        )
    return line


def report_section(est: dict[str, Any]) -> str:
    """The run report's section on the training data's meaning (markdown)."""
    lines = ["", "## Training data: does it keep the seeds' meaning?", ""]
    if est.get("estimated_changed") is None:
        lines.append(
            f"The {est.get('unscored', 0)} kept rewordings were not scored by the meaning gate (another "
            "meaning filter kept them), so nothing estimates how many change the meaning."
        )
        return "\n".join(lines) + "\n"
    lines.append(
        f"Estimated share of the {est['scored']} kept rewordings that change their seed's meaning: "
        f"**{est['estimated_changed']:.0%}** (the mean of the meaning gate's calibrated P(changed); "
        "docs/augmentation.md)."
    )
    if est.get("warn"):
        lines += [
            "",
            f"> **Warning**: above {est['warn_at']:.0%}. The fine-tuned models were likely trained on "
            "many rewordings that do not mean what their seed means, answered as the seed was. Read "
            "the most doubtful samples first (`culturellm review`), or augment with a stronger model.",
        ]
    return "\n".join(lines) + "\n"


def append_to_report(report: Any, augmented: Any) -> dict[str, Any]:
    """Append `report_section` of the kept records in `augmented` (an augmented.jsonl) to the markdown
    file `report`; return the estimate."""
    from culturellm.jsonio import atomic_write_text, read_jsonl

    est = of_records(read_jsonl(augmented))
    atomic_write_text(report, report.read_text(encoding="utf-8") + report_section(est))
    return est
