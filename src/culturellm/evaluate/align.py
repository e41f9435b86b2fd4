"""WVS alignment: how close a model's answers to the seed survey questions are to a culture's answers.

Every question is asked with `culturellm.prompts.survey_messages` (the wording fine-tuning uses), the
option codes are scored as whole assistant replies, and a softmax over their log-probabilities is the
model's answer distribution. Per question: majority agreement (the model's most likely code is the
survey's majority answer), 1 - Jensen-Shannon distance (base 2) to the survey distribution, the
measure of GlobalOpinionQA (Durmus et al. 2023), and 1 - the Wasserstein-1 distance over the ordered
options normalised by the scale's span (SubPOP's ordinal measure; `evaluate.distributions`); each is
averaged over questions, with a bootstrap CI resampling questions (`evaluate.bootstrap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturellm.dataset.build import read_split
from culturellm.errors import CultureLLMError, DataError
from culturellm.evaluate.config import AlignConfig
from culturellm.evaluate.scoring import softmax
from culturellm.evaluate.variant import ModelVariant, Retrieval, System, scoring_summary, variant_from
from culturellm.hashing import sha256_file, stable_hash
from culturellm.jsonio import ResumableRows, iter_jsonl, write_jsonl
from culturellm.names import path_part
from culturellm.runlayout import ALIGN

QUESTIONS = "align"  # OUT/align/<model>/<culture>.jsonl: the per-question answers of that row


def align(
    variant_or_spec: ModelVariant | str,
    culture: str,
    split: Path | None = None,
    *,
    system: System = None,
) -> dict[str, Any]:
    """Alignment of a model (a ModelVariant or a load_model spec) with `culture`'s WVS answers.

    Without `split`: every seed question the culture answered. With a training-set manifest: only the
    held-out questions (their seed wording) and the held-out paraphrases of training questions (so a
    fine-tuned model is measured on what it did not see). Returns majority_agreement, one_minus_jsd,
    one_minus_wasserstein (each with a 95% bootstrap CI over questions under "ci"), their chance
    levels (a uniform answer distribution), how the options were scored ("scoring": exact,
    first-token or parse; per row too) and one row per asked item under "questions".
    """
    from culturellm.cultures import get_culture
    from culturellm.evaluate.baselines import annotate
    from culturellm.seeds import seed_set

    v = variant_from(variant_or_spec, system)
    c = get_culture(culture)
    seeds = {s.question_id: s for s in seed_set(c)}
    if not seeds:
        raise DataError(f"no WVS seed answers for culture {c.name}")
    items = _items(seeds, split, c.name)
    systems, retrieved = _systems(v, c, seeds, items, split)
    rows = _score_items(v, systems, seeds, items)
    for row, ids in zip(rows, retrieved, strict=True):
        if ids is not None:
            row["retrieved"] = ids
    return annotate(
        {
            "model": v.label,
            "spec": v.spec,
            "system": v.describe_system(),
            "culture": c.name,
            "split": str(split) if split is not None else None,
            **summarise(rows),
            "scoring": scoring_summary(r["scoring"] for r in rows),
            **({"dtype": dt} if (dt := getattr(v.load(), "dtype_name", None)) else {}),
            "questions": rows,
        }
    )


def _items(seeds: dict[str, Any], split: Path | None, culture: str) -> list[tuple[str, str, str]]:
    """The items to ask, (question_id, kind, text): every seed without `split`; with a training-set
    manifest, its held-out questions (seed wording) and held-out paraphrases that `culture` answered."""
    if split is None:
        return [(q, "seed", s.text) for q, s in seeds.items()]
    held = read_split(split)
    items = [(q, "heldout_question", seeds[q].text) for q in sorted(held.questions) if q in seeds]
    items += [(str(x["question_id"]), "heldout_variant", str(x["text"])) for x in held.variants]
    items = [it for it in items if it[0] in seeds]
    if not items:
        raise CultureLLMError(
            f"{split}: no held-out question or paraphrase that {culture} answered; "
            "build the training set with --holdout-questions/--holdout-variants, or omit --split"
        )
    return items


def _systems(
    v: ModelVariant,
    culture: Any,
    seeds: dict[str, Any],
    items: list[tuple[str, str, str]],
    split: Path | None,
) -> tuple[list[str | None], list[list[str] | None]]:
    """The system message of each item and, for a retrieval variant, the retrieved question ids."""
    base = v.system_prompt(culture.name)
    if not isinstance(v.system, Retrieval):
        return [base] * len(items), [None] * len(items)
    from culturellm.evaluate.retrieval import retriever

    r = retriever(v.system, seeds, split)
    made = [r.system(base, culture.display, qid, text) for qid, _, text in items]
    return [m[0] for m in made], [m[1] for m in made]


def _score_items(
    v: ModelVariant, systems: list[str | None], seeds: dict[str, Any], items: list[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """Each item asked as a survey question (its seed's options, scored as whole assistant replies,
    with its system message): one `question_row` each, in the order of `items`."""
    from culturellm.llm import ScoreRequest
    from culturellm.prompts import survey_messages

    reqs = []
    for (qid, _, text), system_text in zip(items, systems, strict=True):
        s = seeds[qid]
        reqs.append(
            ScoreRequest(survey_messages(text, s.options, system_text), tuple(s.options), end_of_turn=True)
        )
    results = v.load().score(reqs)
    return [
        question_row(qid, kind, text, seeds[qid], softmax(list(res.logprobs)), res.method)
        for (qid, kind, text), res in zip(items, results, strict=True)
    ]


MEASURES = ("majority_agreement", "one_minus_jsd", "one_minus_wasserstein")
_ROW_MEASURE = {"majority_agreement": "agree"}  # the per-question field of a summary measure


def question_row(qid: str, kind: str, text: str, seed: Any, p_model: list[float], method: str) -> dict:
    """One asked item: the model's and the survey's distributions over the seed's codes, the model's
    answer, agreement with the majority, both distribution measures and the uniform answer's."""
    from culturellm.evaluate.distributions import similarity

    codes = list(seed.options)
    p_survey = [float(seed.distribution.get(code, 0.0)) for code in codes]
    answer = codes[max(range(len(codes)), key=lambda i: p_model[i])]
    survey = dict(zip(codes, p_survey, strict=True))
    sim = similarity(dict(zip(codes, p_model, strict=True)), survey)
    uni = similarity({code: 1.0 for code in codes}, survey)
    return {
        "question_id": qid,
        "kind": kind,
        "text": text,
        "model_distribution": dict(zip(codes, p_model, strict=True)),
        "survey_distribution": survey,
        "model_answer": answer,
        "majority": seed.majority,
        "agree": answer == seed.majority,
        "one_minus_jsd": sim["one_minus_jsd"],
        "one_minus_wasserstein": sim["one_minus_wasserstein"],
        "uniform_one_minus_jsd": uni["one_minus_jsd"],
        "uniform_one_minus_wasserstein": uni["one_minus_wasserstein"],
        "n_options": len(codes),
        "scoring": method,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary measures of per-question rows: means, chance levels and 95% bootstrap CIs
    resampling questions ("ci": measure -> {mean, lo, hi, n, n_questions, level})."""
    from culturellm.evaluate.bootstrap import mean_ci

    n = len(rows)
    qids = [str(r["question_id"]) for r in rows]
    cis = {m: mean_ci([float(r[_ROW_MEASURE.get(m, m)]) for r in rows], qids) for m in MEASURES}
    return {
        "n_questions": n,
        **{m: cis[m]["mean"] for m in MEASURES},
        "chance_agreement": sum(1.0 / r["n_options"] for r in rows) / n,
        "uniform_one_minus_jsd": sum(r["uniform_one_minus_jsd"] for r in rows) / n,
        "uniform_one_minus_wasserstein": sum(r["uniform_one_minus_wasserstein"] for r in rows) / n,
        "ci": cis,
    }


@dataclass(frozen=True)
class AlignJob:
    """One model variant to align: on the held-out items of `split`, or on all seeds (split None).
    `items` names them in reports (default: "held-out" or "all seeds")."""

    variant: ModelVariant
    split: Path | None = None
    items: str | None = None


def heldout_items(split: Path) -> int:
    """How many items a training-set manifest holds out (held-out questions + held-out variants); 0 when
    the file does not exist."""
    return read_split(split).n_heldout if Path(split).exists() else 0


def run_job(variant: ModelVariant, split: Path, config: AlignConfig) -> AlignJob:
    """The alignment of a run's model: on `split`'s held-out items when it holds at least
    config.min_heldout of them, else on all seeds (which that model was trained on)."""
    if heldout_items(split) >= config.min_heldout:
        return AlignJob(variant, split, "held-out")
    return AlignJob(variant, None, "all seeds (trained)")


def _job_key(job: AlignJob, culture: str) -> str:
    """The protocol key of one alignment: a row with this key in align.jsonl is resumed."""
    v = job.variant
    split = Path(job.split) if job.split is not None else None
    obj = {
        "spec": v.spec,
        "system": v.system_prompt(culture),
        "culture": culture,
        "split": sha256_file(split) if split and split.is_file() else None,
        "items": job.items,
        "measures": list(MEASURES),  # rows made before a measure was added are recomputed
    }
    if isinstance(v.system, Retrieval):  # only then: the keys of earlier rows stay as they were
        obj["retrieve"] = {"k": v.system.k, "embedder": v.system.embedder}
    return stable_hash(obj)


def _questions_path(out: Path, model: str, culture: str) -> Path:
    return Path(out) / QUESTIONS / path_part(model) / f"{culture}.jsonl"


def align_all(jobs: list[AlignJob], culture: str, out: Path) -> list[dict[str, Any]]:
    """Align every job's model with `culture`, resumably: each result's per-question rows go to
    OUT/align/<model>/<culture>.jsonl and its summary row is appended to OUT/align.jsonl as soon as it
    is done; a job whose key is already there is not recomputed. At the end align.jsonl is rewritten
    once: these jobs' rows in job order, then earlier rows of other model x culture pairs. Returns the
    results (summary and "questions") in job order."""
    from culturellm.cultures import get_culture

    culture = get_culture(culture).name
    rows_file = ResumableRows(Path(out) / ALIGN)
    done = {r["key"]: r for r in rows_file.previous if r.get("key")}
    results = []
    for job in jobs:
        key = _job_key(job, culture)
        qpath = _questions_path(out, job.variant.label, culture)
        if key in done and qpath.exists():
            results.append(done[key] | {"questions": list(iter_jsonl(qpath))})
            continue
        res = align(job.variant, culture, split=job.split)
        row = {k: v for k, v in res.items() if k != "questions"}
        row.update(items=job.items or ("held-out" if job.split else "all seeds"), key=key)
        write_jsonl(qpath, res["questions"])
        rows_file.append([row])  # last: a job counts as done only once its row is on disk
        results.append(row | {"questions": res["questions"]})
    rows_file.finish(results, ("model", "culture"), drop=("questions",))
    return results
