"""Reference points for WVS alignment tables, computed on the items of an alignment result.

- `uniform`: a model that answers every option with equal probability (agreement = 1 / options
  on average, the chance level);
- `other_survey`: another culture's survey distribution used as the "model" (how far apart the two
  cultures really are: agreement = both majorities equal, 1 - JSD between the two surveys);
- `by_kind`: the measures over one kind of item only (held-out paraphrases of trained questions,
  held-out questions, or seeds), so a table can show memorised and new items apart;
- `heldout_columns`: a table row's columns for the held-out paraphrases and the held-out questions.

Base model and base + culture prompt are alignment runs of their own (`align(spec, ...)`), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

KINDS = ("heldout_variant", "heldout_question", "seed")


def _similarity(p: Sequence[float], q: Sequence[float], codes: Sequence[str]) -> dict[str, float]:
    from culturellm.evaluate.distributions import one_minus_jsd, one_minus_wasserstein

    return {"one_minus_jsd": one_minus_jsd(p, q), "one_minus_wasserstein": one_minus_wasserstein(p, q, codes)}


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [float(r[key]) for r in rows if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def _summary(label: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    return {
        "model": label,
        "n_questions": n,
        "majority_agreement": sum(bool(r["agree"]) for r in rows) / n if n else None,
        "one_minus_jsd": _mean(rows, "one_minus_jsd"),
        "one_minus_wasserstein": _mean(rows, "one_minus_wasserstein"),
    }


def by_kind(result: Mapping[str, Any], kinds: Iterable[str] | None = None) -> dict[str, Any]:
    """Agreement, 1 - JSD and 1 - W1 of an `align` result over the items of the given kinds (None: all)."""
    wanted = set(kinds) if kinds is not None else None
    rows = [r for r in result["questions"] if wanted is None or r["kind"] in wanted]
    return _summary(str(result.get("model")), rows)


def heldout_columns(
    result: Mapping[str, Any], measure: Callable[[Mapping[str, Any], Iterable[str]], dict[str, Any]] = by_kind
) -> dict[str, Any]:
    """Agreement, 1 - JSD and count of `measure` (`by_kind`, `uniform` or an `other_survey`) on the
    held-out paraphrases of trained questions and on the held-out questions of an `align` result."""
    para, held = measure(result, ("heldout_variant",)), measure(result, ("heldout_question",))
    return {
        "paraphrase_agreement": para["majority_agreement"],
        "paraphrase_1_jsd": para["one_minus_jsd"],
        "n_paraphrases": para["n_questions"],
        "question_agreement": held["majority_agreement"],
        "question_1_jsd": held["one_minus_jsd"],
        "n_questions": held["n_questions"],
    }


def uniform(result: Mapping[str, Any], kinds: Iterable[str] | None = None) -> dict[str, Any]:
    """The uniform answer on the same items: agreement 1 / options, 1 - JSD to each survey distribution."""
    wanted = set(kinds) if kinds is not None else None
    rows = []
    for r in result["questions"]:
        if wanted is not None and r["kind"] not in wanted:
            continue
        codes = list(r["survey_distribution"])
        survey = list(r["survey_distribution"].values())
        k = len(survey)
        rows.append({"agree": False, **_similarity([1.0 / k] * k, survey, codes), "k": k})
    out = _summary("uniform", rows)
    out["majority_agreement"] = sum(1.0 / r["k"] for r in rows) / len(rows) if rows else None
    return out


def other_survey(result: Mapping[str, Any], other: str, kinds: Iterable[str] | None = None) -> dict[str, Any]:
    """Another culture's survey as the answer distribution on the same items (items it did not
    answer are left out; `n_questions` says how many remain)."""
    from culturellm.cultures import get_culture
    from culturellm.seeds import seed_set

    c = get_culture(other)
    seeds = {s.question_id: s for s in seed_set(c)}
    wanted = set(kinds) if kinds is not None else None
    rows = []
    for r in result["questions"]:
        s = seeds.get(r["question_id"])
        if s is None or (wanted is not None and r["kind"] not in wanted):
            continue
        codes = list(r["survey_distribution"])
        p_other = [float(s.distribution.get(code, 0.0)) for code in codes]
        if sum(p_other) <= 0:
            continue
        survey = [r["survey_distribution"][code] for code in codes]
        rows.append({"agree": str(s.majority) == str(r["majority"]), **_similarity(p_other, survey, codes)})
    return _summary(f"{c.name} survey", rows)


def contrast_culture(culture: str) -> str:
    """The culture whose survey an alignment table shows as a reference: German for every culture but
    German, Arabic for German (the pair the issue measured: far apart on the seed questions)."""
    return "arabic" if culture == "german" else "german"


def annotate(result: dict[str, Any], contrast: str | None = None) -> dict[str, Any]:
    """Add to an `align` result: `by_kind` (measures per item kind present), `uniform` (the uniform
    answer on the same items) and `contrast` (another culture's survey on the same items)."""
    kinds = [k for k in KINDS if any(r["kind"] == k for r in result["questions"])]
    result["by_kind"] = {k: by_kind(result, [k]) for k in kinds}
    result["uniform"] = uniform(result)
    other = contrast or contrast_culture(str(result.get("culture")))
    try:
        result["contrast"] = {"culture": other, **other_survey(result, other)}
    except Exception as e:  # an unknown contrast culture must not lose the alignment itself
        result["contrast"] = {"culture": other, "error": str(e).splitlines()[0][:200]}
    return result
