"""WVS alignment: how close a model's answers to the seed survey questions are to a culture's answers.

Every question is asked with `culturellm.prompts.survey_messages` (the wording fine-tuning uses), the
option codes are scored as whole assistant replies, and a softmax over their log-probabilities is the
model's answer distribution. Per question: majority agreement (the model's most likely code is the
survey's majority answer) and 1 - Jensen-Shannon distance (base 2) to the survey distribution, the
measure of GlobalOpinionQA (Durmus et al. 2023); both are averaged over questions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from culturellm.augment.dataset import read_split
from culturellm.errors import CultureLLMError, DataError
from culturellm.evaluate.scoring import softmax


def scoring_summary(methods: Any) -> str:
    """How a set of rows was scored: one method ("exact"), or the counts of each ("exact 3, parse 1")."""
    counts: dict[str, int] = {}
    for m in methods:
        counts[m] = counts.get(m, 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{m} {n}" for m, n in sorted(counts.items()))


def align(
    variant_or_spec: Any,
    culture: str,
    split: Path | None = None,
    *,
    system: Any = None,
) -> dict[str, Any]:
    """Alignment of a model (a ModelVariant or a load_model spec) with `culture`'s WVS answers.

    Without `split`: every seed question the culture answered. With a training-set manifest: only the
    held-out questions (their seed wording) and the held-out paraphrases of training questions (so a
    fine-tuned model is measured on what it did not see). Returns majority_agreement, one_minus_jsd,
    their chance levels (a uniform answer distribution), how the options were scored ("scoring": exact,
    first-token or parse; per row too) and one row per asked item under "questions".
    """
    from scipy.spatial.distance import jensenshannon

    from culturellm.cultures import get_culture
    from culturellm.evaluate.runner import variant_from
    from culturellm.llm import ScoreRequest
    from culturellm.prompts import survey_messages
    from culturellm.wvs import seed_set

    v = variant_from(variant_or_spec, system)
    c = get_culture(culture)
    seeds = {s.question_id: s for s in seed_set(c)}
    if not seeds:
        raise DataError(f"no WVS seed answers for culture {c.name}")
    items: list[tuple[str, str, str]] = []  # (question_id, kind, text)
    if split is None:
        items = [(q, "seed", s.text) for q, s in seeds.items()]
    else:
        held = read_split(split)
        qids, variants = held.questions, held.variants
        items += [(q, "heldout_question", seeds[q].text) for q in sorted(qids) if q in seeds]
        items += [(str(x["question_id"]), "heldout_variant", str(x["text"])) for x in variants]
        items = [it for it in items if it[0] in seeds]
        if not items:
            raise CultureLLMError(
                f"{split}: no held-out question or paraphrase that {c.name} answered; "
                "build the training set with --holdout-questions/--holdout-variants, or omit --split"
            )
    system_text = v.system_prompt(c.name)
    reqs = []
    for qid, _, text in items:
        s = seeds[qid]
        reqs.append(
            ScoreRequest(survey_messages(text, s.options, system_text), tuple(s.options), end_of_turn=True)
        )
    model = v.load()
    results = model.score(reqs)
    rows = []
    for (qid, kind, text), res in zip(items, results, strict=True):
        s = seeds[qid]
        codes = list(s.options)
        p_model = softmax(list(res.logprobs))
        p_survey = [float(s.distribution.get(code, 0.0)) for code in codes]
        answer = codes[max(range(len(codes)), key=lambda i: p_model[i])]
        jsd = float(jensenshannon(p_model, p_survey, base=2))
        uniform = [1.0 / len(codes)] * len(codes)
        rows.append(
            {
                "question_id": qid,
                "kind": kind,
                "text": text,
                "model_distribution": dict(zip(codes, p_model, strict=True)),
                "survey_distribution": dict(zip(codes, p_survey, strict=True)),
                "model_answer": answer,
                "majority": s.majority,
                "agree": answer == s.majority,
                "one_minus_jsd": 1.0 - jsd,
                "uniform_one_minus_jsd": 1.0 - float(jensenshannon(uniform, p_survey, base=2)),
                "n_options": len(codes),
                "scoring": res.method,
            }
        )
    n = len(rows)
    from culturellm.evaluate.baselines import annotate

    return annotate(
        {
            "model": v.label,
            "spec": v.spec,
            "system": v.describe_system(),
            "culture": c.name,
            "split": str(split) if split is not None else None,
            "n_questions": n,
            "majority_agreement": sum(r["agree"] for r in rows) / n,
            "one_minus_jsd": sum(r["one_minus_jsd"] for r in rows) / n,
            "chance_agreement": sum(1.0 / r["n_options"] for r in rows) / n,
            "uniform_one_minus_jsd": sum(r["uniform_one_minus_jsd"] for r in rows) / n,
            "scoring": scoring_summary(r["scoring"] for r in rows),
            "questions": rows,
        }
    )
