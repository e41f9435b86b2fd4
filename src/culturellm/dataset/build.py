"""Training sets: augmented questions x a culture's survey answers -> OpenAI chat fine-tuning JSONL.

Each record is {"messages": [system, user, assistant]} with the system prompt of
`culturellm.prompts.culture_system_prompt(culture.display)`, the user turn of
`culturellm.prompts.survey_messages(text, seed.options, system)` (the one wording evaluation uses
too), and the assistant turn = the answer code. The split (train / held-out question ids, held-out
variant texts) is written to `<out>.manifest.json` with counts and the data's sha256.

Targets: `majority` (the paper), `distribution` (each record also carries the culture's survey
distribution over the option codes as `target_distribution`, for soft-label local training; the
assistant turn is the majority code), `sampled` (hard codes drawn so that each question's
wordings follow the distribution: the form the OpenAI fine-tuning API can take), and two soft targets
between majority and distribution: `mixed` ((1 - w) * distribution + w * one-hot(majority), w =
`majority_weight`: soft cross-entropy plus a weighted majority term) and `sharpened` (distribution **
(1 / T) renormalised, T = `sharpen_temperature`: T 1 is the distribution, T -> 0 the majority).

Weights (`[dataset] weight`): with `verifier` each record also carries `weight`, the meaning
gate's P(faithful) of its wording, 1 - p_changed (seed wordings 1), which local training multiplies
its loss by (culturellm.finetune.soft); without it no record has a weight and the file is as before.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturellm.dataset.config import DatasetConfig
from culturellm.dataset.targets import get_target
from culturellm.errors import CultureLLMError, DataError
from culturellm.hashing import sha256_file
from culturellm.jsonio import iter_jsonl, read_text, write_json, write_jsonl
from culturellm.prompts import culture_system_prompt, survey_messages
from culturellm.regularfiles import read_input
from culturellm.runlayout import split_manifest_path
from culturellm.safewrite import check_output_file


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(read_text(path, kind="json"))
    except (OSError, ValueError, RecursionError, DataError):  # missing, special, too large, not JSON
        return {}
    return manifest if isinstance(manifest, dict) and manifest.get("kind") == "culturellm.dataset" else {}


def _ours(path: Path) -> bool:
    """A training set this command wrote (the manifest beside it records its hash, compared streaming),
    or such a manifest."""
    if path.name.endswith(".manifest.json"):
        return bool(_load_manifest(path))
    recorded = _load_manifest(split_manifest_path(path)).get("data_sha256")
    if not recorded or not path.is_file():
        return False
    try:
        return sha256_file(path) == recorded
    except OSError:
        return False


@dataclass(frozen=True)
class Split:
    """The held-out part of a training set, read from its `<train>.manifest.json`."""

    questions: set[str]  # whole seed questions held out
    variants: list[dict[str, Any]]  # held-out variants: {question_id, text, ...}

    @property
    def n_heldout(self) -> int:
        return len(self.questions) + len(self.variants)


def read_split(path: Path | str) -> Split:
    """The one reader of a training-set manifest's split (written by `build_training_set`). Tolerant
    of where the keys sit: under "split" or at the top level; a bad file is a DataError naming it."""
    path = Path(path)
    try:
        data = json.loads(read_input(path, "json").decode("utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: split file not found") from None
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, nested too deeply
        raise DataError(f"{path}: not valid JSON ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object (a training-set manifest)")
    src = data.get("split") if isinstance(data.get("split"), dict) else data
    qids = src.get("heldout_questions", src.get("held_out_questions", [])) or []
    variants = src.get("heldout_variants", src.get("held_out_variants", [])) or []
    if not isinstance(qids, list) or not isinstance(variants, list):
        raise DataError(f"{path}: heldout_questions and heldout_variants must be lists")
    for i, v in enumerate(variants):
        if not isinstance(v, dict) or not v.get("question_id") or not v.get("text"):
            raise DataError(f"{path}: heldout_variants[{i}] needs question_id and text")
    return Split({str(q) for q in qids}, list(variants))


def read_augmented(path: Path | str) -> dict[str, list[dict[str, Any]]]:
    """question_id -> its variant records (in file order), validated."""
    path = Path(path)
    if not path.exists():  # a FIFO or a device is refused by the reader, by name
        raise DataError(f"{path}: augmented file not found (make it with `culturellm augment`)")
    by_q: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i, r in enumerate(iter_jsonl(path), 1):
        for key in ("question_id", "text"):
            if not isinstance(r.get(key), str) or not r[key].strip():
                raise DataError(f"{path}:{i}: field '{key}' missing or empty")
        r.setdefault("id", f"{r['question_id']}-{i}")
        r.setdefault("step", "seed")
        by_q[r["question_id"]].append(r)
    if not by_q:
        raise DataError(f"{path}: no augmented questions (empty file)")
    return dict(by_q)


def _rng(seed: int, *parts: str) -> random.Random:
    key = ":".join([str(seed), *parts]).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def make_split(
    variants: Mapping[str, Sequence[dict[str, Any]]],
    *,
    holdout_questions: int = 0,
    holdout_fraction: float = 0.0,
    holdout_variants: float = 0.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Deterministic split of questions (whole questions held out) and of variants (a fraction of
    each training question's non-seed variants held out, rounded half up, and at least one of two or
    more: paraphrase-level evaluation; with 0.5, a question with a single variant keeps only its
    seed wording for training and is measured on the variant)."""
    qids = list(variants)  # file order
    if holdout_questions and holdout_fraction:
        raise CultureLLMError("give --holdout-questions or --holdout-fraction, not both")
    if not 0.0 <= holdout_fraction < 1.0:
        raise CultureLLMError(f"--holdout-fraction must be in [0, 1), got {holdout_fraction}")
    if not 0.0 <= holdout_variants < 1.0:
        raise CultureLLMError(f"--holdout-variants must be in [0, 1), got {holdout_variants}")
    if holdout_questions < 0:
        raise CultureLLMError(f"--holdout-questions must be >= 0, got {holdout_questions}")
    k = holdout_questions or round(holdout_fraction * len(qids))
    if k >= len(qids):
        raise CultureLLMError(
            f"holding out {k} of {len(qids)} questions leaves nothing to train on; hold out fewer "
            "(--holdout-questions or --holdout-fraction)"
        )
    held = set(_rng(seed, "questions").sample(sorted(qids), k))
    train_q = [q for q in qids if q not in held]
    held_variants: list[dict[str, Any]] = []
    train_ids: set[str] = set()
    for q in train_q:
        rows = list(variants[q])
        others = [r for r in rows if r.get("step") != "seed"]
        kv = int(holdout_variants * len(others) + 0.5)  # half up: 0.5 of one variant holds it out
        if holdout_variants > 0 and kv == 0 and len(others) >= 2:
            kv = 1
        out = {r["id"] for r in _rng(seed, "variants", q).sample(others, kv)} if kv else set()
        for r in rows:
            if r["id"] in out:
                held_variants.append(
                    {"question_id": q, "id": r["id"], "step": r.get("step"), "text": r["text"]}
                )
            else:
                train_ids.add(r["id"])
    return {
        "seed": seed,
        "train_questions": train_q,
        "heldout_questions": sorted(held),
        "heldout_variants": held_variants,
        "train_variant_ids": sorted(train_ids),
    }


def _drop_rejected(variants: dict[str, list[dict[str, Any]]], augmented: Path) -> dict[str, Any]:
    """Remove (in place) the non-seed samples rejected by reviewers (reviews.jsonl, `culturellm review`)
    or by the meaning verifier (verdicts.jsonl, `culturellm augment check`); a reviewer's rating wins
    over the verifier's verdict. What was dropped, for the manifest."""
    from culturellm.meaning.verdicts import VERDICTS, load_verdicts
    from culturellm.review.store import latest_ratings, rejected_ids, reviews_path

    path = reviews_path(augmented)
    verdicts = load_verdicts(augmented)
    if not path.exists() and verdicts is None:
        raise DataError(
            f"{path}: no reviews beside the augmented set (rate it with `culturellm review`) and no "
            f"{VERDICTS} (score it with `culturellm augment check`)"
        )
    by_people = rejected_ids(augmented) if path.exists() else set()
    rated = {sid for _, sid in latest_ratings(path)} if path.exists() else set()
    by_verifier = {i for i, v in (verdicts or {}).items() if v.get("verdict") == "reject" and i not in rated}
    rejected = by_people | by_verifier
    dropped = []
    for q, rows in variants.items():
        keep = [r for r in rows if r.get("step") == "seed" or r["id"] not in rejected]
        dropped += [r["id"] for r in rows if r not in keep]
        variants[q] = keep
    out: dict[str, Any] = {"dropped": sorted(dropped)}
    for name, p, used in (("reviews", path, path.exists()), ("verdicts", path.with_name(VERDICTS), verdicts)):
        if used:
            out[name] = str(p)
            out[f"{name}_sha256"] = sha256_file(p)
    out["dropped_by_verifier"] = sorted(i for i in dropped if i in by_verifier and i not in by_people)
    return out


def example_weights(variants: Mapping[str, Sequence[dict[str, Any]]], augmented: Path) -> dict[str, float]:
    """`[dataset] weight = "verifier"`: each record's loss weight, the meaning gate's P(faithful) of its
    rewording, 1 - p_changed: the record's own `p_changed` (written by the gate on the records it keeps,
    generated or imported with import_filter verifier or scored), else the one in the verdicts.jsonl
    beside the augmented set (`culturellm augment check`); seed wordings weigh 1. A rewording with
    neither is a DataError naming it."""
    from culturellm.meaning.verdicts import load_verdicts

    verdicts = None
    out: dict[str, float] = {}
    for rows in variants.values():
        for r in rows:
            changed = 0.0 if r.get("step") == "seed" else r.get("p_changed")
            if changed is None:
                if verdicts is None:
                    verdicts = load_verdicts(augmented) or {}
                changed = verdicts.get(r["id"], {}).get("p_changed")
            ok = isinstance(changed, int | float) and not isinstance(changed, bool) and 0.0 <= changed <= 1.0
            if not ok:
                raise DataError(
                    f"{augmented}: record {r['id']} has no meaning-gate score for [dataset] weight = "
                    '"verifier" (augment or import through the gate: import_filter verifier or scored, '
                    "or score the set with `culturellm augment check`)"
                )
            out[r["id"]] = round(1.0 - float(changed), 6)
    return out


def _weights(cfg: DatasetConfig, variants: Mapping[str, Sequence[dict[str, Any]]], augmented: Path) -> Any:
    return example_weights(variants, augmented) if cfg.weight == "verifier" else None


def _resolve_cultures(names: Sequence[str]) -> list[Any]:
    from culturellm.cultures import get_culture, list_cultures

    if not names:
        raise CultureLLMError("no culture given (use --culture NAME, several times, or 'all')")
    if any(n.lower() == "all" for n in names):
        return list_cultures()
    out, seen = [], set()
    for n in names:
        c = get_culture(n)
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out


def _culture_records(
    culture: Any,
    variants: Mapping[str, Sequence[dict[str, Any]]],
    train_questions: Sequence[str],
    train_ids: set[str],
    cfg: DatasetConfig,
    steps: Sequence[str] | None,
    weights: Mapping[str, float] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One culture's chat records over the training variants (each with its loss `weight` when
    `weights` is given), and its counts."""
    from culturellm.seeds import seed_set

    seeds = {s.question_id: s for s in seed_set(culture)}
    system = culture_system_prompt(culture.display)
    target = get_target(cfg.target)
    records: list[dict[str, Any]] = []
    missing = []
    for q in train_questions:
        s = seeds.get(q)
        if s is None:
            missing.append(q)
            continue
        rows = [r for r in variants[q] if r["id"] in train_ids and (steps is None or r.get("step") in steps)]
        answers, soft = target.build(s, len(rows), _rng(cfg.seed, culture.name, q), cfg)
        for r, a in zip(rows, answers, strict=True):
            msgs = survey_messages(r["text"], s.options, system)
            rec: dict[str, Any] = {"messages": [*msgs, {"role": "assistant", "content": a}]}
            if soft is not None:
                rec["target_distribution"] = soft
            if weights is not None:
                rec["weight"] = weights[r["id"]]
            records.append(rec)
    info = {
        "display": culture.display,
        "records": len(records),
        "questions": len(train_questions) - len(missing),
        "missing_questions": missing,
    }
    return records, info


def build_training_set(
    cultures: Sequence[str],
    augmented: Path | str,
    out: Path | str,
    config: DatasetConfig | None = None,
    *,
    steps: Sequence[str] | None = None,
    max_records: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write `out` (OpenAI chat JSONL) for one culture or, with several / 'all', CultureLLM-One
    (the union, each record's system prompt naming its culture). Returns the manifest, also written
    to `<out>.manifest.json`. Questions a culture never answered produce no record. `config` (the
    one `culturellm dataset` resolves from its flags; None: DatasetConfig's defaults) sets the answer
    target, the held-out split and its seed, and whether samples reviewers rejected are left out.

    The split is always made on every variant of the file, so it does not depend on `steps` (train on
    the variants of these augmentation steps only, e.g. ("seed", "paraphrase")) or `max_records` (a
    seeded subsample of the training records): the ablation's sets share one held-out split."""
    cfg = config or DatasetConfig()
    seed = cfg.seed
    augmented, out = Path(augmented), Path(out)
    check_output_file(out, inputs=[augmented], force=force, ours=_ours)  # before any work
    check_output_file(split_manifest_path(out), inputs=[augmented], force=force, ours=_ours, flag="manifest")
    variants = read_augmented(augmented)
    review = _drop_rejected(variants, augmented) if cfg.drop_rejected else None
    split = make_split(
        variants,
        holdout_questions=cfg.holdout_questions,
        holdout_fraction=cfg.holdout_fraction,
        holdout_variants=cfg.holdout_variants,
        seed=seed,
    )
    train_ids, weights = set(split.pop("train_variant_ids")), _weights(cfg, variants, augmented)
    records: list[dict[str, Any]] = []
    owner: list[str] = []  # the culture of each record (for counts after a subsample)
    per_culture: dict[str, dict[str, Any]] = {}
    for culture in _resolve_cultures(cultures):
        recs, per_culture[culture.name] = _culture_records(
            culture, variants, split["train_questions"], train_ids, cfg, steps, weights
        )
        records += recs
        owner += [culture.name] * len(recs)
    if max_records is not None and len(records) > max_records:
        keep = sorted(_rng(seed, "subsample").sample(range(len(records)), max_records))
        records, owner = [records[i] for i in keep], [owner[i] for i in keep]
        for name, info in per_culture.items():
            info["records"] = owner.count(name)
    if not records:
        raise DataError(
            f"{augmented}: no training record for {', '.join(per_culture)} "
            "(none of its questions was answered by these cultures)"
        )
    write_jsonl(out, records)
    head = {"cultures": list(per_culture), "steps": list(steps) if steps is not None else None}
    manifest = _manifest(out, augmented, cfg, head | {"max_records": max_records}, split, per_culture)
    manifest["counts"]["records"] = len(records)
    manifest.update(review=review, **_weight_summary(cfg, records))  # unweighted: no weight key
    write_json(split_manifest_path(out), manifest)
    return manifest


def _weight_summary(cfg: DatasetConfig, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's `weight` (its kind, the mean weight, how many records weigh 0); {} without."""
    if cfg.weight == "none":
        return {}
    w = [float(r["weight"]) for r in records]
    return {"weight": {"kind": cfg.weight, "mean": round(sum(w) / len(w), 6), "zero": w.count(0.0)}}


def _manifest(
    out: Path,
    augmented: Path,
    cfg: DatasetConfig,
    head: dict[str, Any],
    split: dict[str, Any],
    per_culture: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of a written training set (its keys in the order every version wrote them)."""
    return {
        "kind": "culturellm.dataset",
        "data": out.name,
        "data_sha256": sha256_file(out),
        "augmented": str(augmented),
        "augmented_sha256": sha256_file(augmented),
        "cultures": head["cultures"],
        "target": cfg.target,
        "target_params": {p: getattr(cfg, p) for p in get_target(cfg.target).params},
        "seed": cfg.seed,
        "steps": head["steps"],
        "max_records": head["max_records"],
        "holdout": {
            "questions": cfg.holdout_questions,
            "fraction": cfg.holdout_fraction,
            "variants": cfg.holdout_variants,
        },
        "counts": {
            "records": 0,
            "train_questions": len(split["train_questions"]),
            "heldout_questions": len(split["heldout_questions"]),
            "heldout_variants": len(split["heldout_variants"]),
            "per_culture": {c: v["records"] for c, v in per_culture.items()},
        },
        "per_culture": per_culture,
        "split": split,
        "review": None,
    }
