"""WVS alignment: how close a model's answers to the seed survey questions are to a culture's answers.

Every question is asked with `culturellm.prompts.survey_messages` (the wording fine-tuning uses), the
option codes are scored as whole assistant replies, and a softmax over their log-probabilities is the
model's answer distribution. Per question: majority agreement (the model's most likely code is the
survey's majority answer) and 1 - Jensen-Shannon distance (base 2) to the survey distribution, the
measure of GlobalOpinionQA (Durmus et al. 2023); both are averaged over questions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from culturellm.errors import CultureLLMError, DataError
from culturellm.evaluate.scoring import softmax


def _read_split(split: Path) -> tuple[set[str], list[dict[str, Any]]]:
    """Held-out question ids and held-out variants ({question_id, text}) from a training-set manifest
    (`<train>.manifest.json` of culturellm.augment.build_training_set). Tolerant of where the keys sit:
    under "split" or at the top level."""
    split = Path(split)
    try:
        data = json.loads(split.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{split}: split file not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{split}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{split}: expected a JSON object (a training-set manifest)")
    src = data.get("split") if isinstance(data.get("split"), dict) else data
    qids = src.get("heldout_questions", src.get("held_out_questions", [])) or []
    variants = src.get("heldout_variants", src.get("held_out_variants", [])) or []
    if not isinstance(qids, list) or not isinstance(variants, list):
        raise DataError(f"{split}: heldout_questions and heldout_variants must be lists")
    good = []
    for i, v in enumerate(variants):
        if not isinstance(v, dict) or not v.get("question_id") or not v.get("text"):
            raise DataError(f"{split}: heldout_variants[{i}] needs question_id and text")
        good.append(v)
    return {str(q) for q in qids}, good


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
    their chance levels (a uniform answer distribution) and one row per asked item under "questions".
    """
    from scipy.spatial.distance import jensenshannon

    from culturellm.cultures import get_culture
    from culturellm.evaluate.runner import variant_from
    from culturellm.llm import ScoreRequest, load_model
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
        qids, variants = _read_split(Path(split))
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
    model = load_model(v.spec)
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
            }
        )
    n = len(rows)
    return {
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
        "questions": rows,
    }
