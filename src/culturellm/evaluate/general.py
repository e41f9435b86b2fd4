"""Forgetting check: general-ability tasks of lm-evaluation-harness on a base model and on each of its
culture models (the adapter applied), with the score before, after, and the difference with a 95% CI.

Tasks are lm-eval's own (`mmlu`, `hellaswag`, `arc_easy`, `gsm8k`: their data comes from the Hugging
Face Hub) or a local task directory of lm-eval YAML tasks (lm-eval's `--include_path`; offline with
local data files). Models run in this process through lm-eval's own `hf` model (`HFLM`), handed the
model culturellm loaded: every local spec works the same way (bundled GGUF models, `hf:` directories,
culture adapters). Results: OUT/general.jsonl (one row per model x task x metric) and the per-document
scores behind each row in OUT/general/<model>/<task>.jsonl; the report's "General ability" section
and plots/general.png read them.

The difference's CI is a paired bootstrap over the documents both models answered (1000 resamples,
seeded); for a group task (e.g. mmlu, whose documents sit in its subtasks) it is +-1.96 times the
combined lm-eval standard errors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturellm.errors import CultureLLMError, DataError
from culturellm.jsonio import ResumableRows, iter_jsonl, numbered_jsonl, write_jsonl
from culturellm.names import path_part
from culturellm.runlayout import GENERAL
from culturellm.safewrite import target

SAMPLES = "general"  # OUT/general/<model>/<task>.jsonl: per-document scores


@dataclass(frozen=True)
class GeneralModel:
    """A model in the forgetting check: `base` is the label of the model it is compared with (its base
    model), None for a base."""

    label: str
    spec: str
    base: str | None = None


def base_spec(spec: str) -> str | None:
    """The base model spec of a culture model (a directory with culturellm.json or a PEFT adapter),
    None for anything else."""
    from culturellm.llm.registry import parse_spec

    parsed = parse_spec(spec)
    return parsed.base.text if parsed.adapter is not None and parsed.base is not None else None


def general_models(variants: list[Any]) -> list[GeneralModel]:
    """The models of a forgetting check from evaluated variants (`label`, `spec`): one per spec (system
    prompts do not apply to general tasks); a culture model whose base is not among them brings its base
    (labelled by its spec)."""
    by_spec: dict[str, str] = {}
    for v in variants:
        by_spec.setdefault(v.spec, v.label)
    out: list[GeneralModel] = []
    for spec, label in list(by_spec.items()):
        base = base_spec(spec)
        if base is not None and base not in by_spec:
            by_spec[base] = base
            out.append(GeneralModel(base, base))
        out.append(GeneralModel(label, spec, by_spec[base] if base is not None else None))
    return out


def resolve_tasks(entries: list[str]) -> tuple[list[str], list[str]]:
    """(lm-eval task names, include paths). An entry that is a directory adds every task its YAML files
    define (`task: NAME`) and the directory as an include path; any other entry is a task name."""
    names: list[str] = []
    include: list[str] = []
    for entry in entries:
        for part in (p.strip() for p in entry.split(",")):
            if not part:
                continue
            path = Path(part).expanduser()
            if not path.is_dir():
                names.append(part)
                continue
            found = _yaml_task_names(path)
            if not found:
                raise DataError(
                    f"{path}: no lm-eval task YAML (a file with a `task:` line) in this directory"
                )
            include.append(str(path.resolve()))
            names += found
    if not names:
        raise CultureLLMError("--general: no task given (e.g. --general mmlu or --general DIR)")
    return list(dict.fromkeys(names)), include


def _yaml_task_names(directory: Path) -> list[str]:
    names = []
    for p in sorted(directory.rglob("*.y*ml")):
        m = re.search(r"^task:\s*['\"]?([\w.\-]+)", p.read_text(encoding="utf-8"), re.M)
        if m:
            names.append(m.group(1))
    return names


def _task_manager(include: list[str]) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include or None, include_defaults=True)


def _lm(spec: str, batch_size: int, device: str | None, dtype: str | None) -> Any:
    """lm-eval's `hf` model around the model culturellm loads for `spec` (adapter merged), on `device`
    (None: the best available) in `dtype` (None: the device's default)."""
    from culturellm.llm.registry import parse_spec

    parsed = parse_spec(spec)
    if not parsed.local:
        raise CultureLLMError(
            f"--general runs local models in-process; for '{spec}' run lm-eval's local-completions "
            "model against its server (docs/evaluation.md)"
        )
    from lm_eval.models.huggingface import HFLM

    from culturellm.llm.local_pool import load_local_chat

    chat = load_local_chat(parsed, device=device, dtype=dtype)
    return HFLM(
        pretrained=chat.model, tokenizer=chat.tokenizer, batch_size=batch_size, device=str(chat.device)
    )


def _metric_rows(results: dict[str, Any], task: str) -> list[dict[str, Any]]:
    """(metric, filter, value, stderr) of one task from lm-eval's results dict."""
    out = []
    for key, value in results.get(task, {}).items():
        if "," not in key or "_stderr" in key or not isinstance(value, int | float):
            continue
        metric, filt = key.split(",", 1)
        stderr = results[task].get(f"{metric}_stderr,{filt}")
        out.append(
            {
                "metric": metric,
                "filter": filt,
                "value": float(value),
                "stderr": float(stderr) if isinstance(stderr, int | float) else None,
            }
        )
    return out


def _doc_scores(samples: list[dict[str, Any]], metric: str, filt: str) -> dict[str, float]:
    """Per-document values of one metric under one filter (doc_id -> value)."""
    out = {}
    for s in samples:
        if s.get("filter", filt) != filt or metric not in s:
            continue
        v = s[metric]
        if isinstance(v, int | float | bool):
            out[str(s["doc_id"])] = float(v)
    return out


@dataclass(frozen=True)
class GeneralOptions:
    """How the general tasks run: `limit` documents per task (None: all), the seed of lm-eval's
    sampling and few-shot choice, and the batch size, device and dtype of the local model."""

    limit: int | None = None
    seed: int = 0
    batch_size: int = 8
    device: str | None = None  # None: the best available (cuda, mps, cpu)
    dtype: str | None = None  # None: the loader's default (float32)


def score_model(
    model: GeneralModel, names: list[str], include: list[str], out: Path, options: GeneralOptions
) -> list[dict[str, Any]]:
    """Run the lm-eval tasks on one model; its result rows (per task x metric), with the per-document
    scores written to OUT/general/<model>/<task>.jsonl."""
    import lm_eval

    lm = _lm(model.spec, options.batch_size, options.device, options.dtype)
    seeds = {f"{k}_seed": options.seed for k in ("random", "numpy_random", "torch_random", "fewshot_random")}
    res = lm_eval.simple_evaluate(
        model=lm, tasks=names, task_manager=_task_manager(include), limit=options.limit, log_samples=True,
        bootstrap_iters=1000, **seeds,
    )  # fmt: skip
    if res is None:
        raise CultureLLMError("lm-eval returned no results")
    rows = []
    for task in res["results"]:
        samples = res.get("samples", {}).get(task, [])
        per_doc = []
        for m in _metric_rows(res["results"], task):
            docs = _doc_scores(samples, m["metric"], m["filter"])
            per_doc += [
                {"metric": m["metric"], "filter": m["filter"], "doc_id": d, "value": v}
                for d, v in docs.items()
            ]
            n = len(docs) or (res.get("n-samples", {}).get(task) or {}).get("effective")
            rows.append({"model": model.label, "spec": model.spec, "task": task, **m, "n": n})
        if per_doc:
            write_jsonl(out / SAMPLES / path_part(model.label) / f"{path_part(task)}.jsonl", per_doc)
    return rows


def paired_diff(before: dict[str, float], after: dict[str, float], n_boot: int = 1000, seed: int = 0) -> Any:
    """(difference of means over shared documents, 95% percentile-bootstrap CI), or None when no
    document is shared."""
    import numpy as np

    docs = sorted(set(before) & set(after))
    if not docs:
        return None
    d = np.array([after[k] - before[k] for k in docs])
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    return float(d.mean()), [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]


def _compare(rows: list[dict[str, Any]], models: list[GeneralModel], out: Path, seed: int) -> None:
    """Fill before / diff / diff_ci of each culture model's rows from its base's rows (in place)."""
    index = {(r["model"], r["task"], r["metric"], r["filter"]): r for r in rows}
    for m in models:
        if m.base is None:
            continue
        for r in (r for r in rows if r["model"] == m.label):
            b = index.get((m.base, r["task"], r["metric"], r["filter"]))
            if b is None:
                continue
            r.update(base_model=m.base, before=b["value"], diff=r["value"] - b["value"])
            paired = paired_diff(_load_docs(out, b), _load_docs(out, r), seed=seed)
            if paired is not None:
                r.update(diff_ci=paired[1], ci_method="paired bootstrap over documents")
            elif r.get("stderr") is not None and b.get("stderr") is not None:
                half = 1.96 * math.sqrt(r["stderr"] ** 2 + b["stderr"] ** 2)
                r.update(diff_ci=[r["diff"] - half, r["diff"] + half], ci_method="1.96 x combined stderr")


def _load_docs(out: Path, row: dict[str, Any]) -> dict[str, float]:
    path = out / SAMPLES / path_part(row["model"]) / f"{path_part(row['task'])}.jsonl"
    if not path.exists():
        return {}
    return {
        s["doc_id"]: s["value"]
        for s in iter_jsonl(path)
        if s["metric"] == row["metric"] and s["filter"] == row["filter"]
    }


def run_general(
    variants: list[Any],
    tasks: list[str],
    out: Path,
    options: GeneralOptions | None = None,
) -> list[dict[str, Any]]:
    """The forgetting check: `tasks` (lm-eval names or local task directories) on every model of
    `variants` and the bases of its culture models; rows (also OUT/general.jsonl) with each culture
    model's score before (its base), after, and the difference with a 95% CI."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise CultureLLMError(
            "--general needs lm-evaluation-harness: pip install 'culturellm[general]'"
        ) from None
    names, include = resolve_tasks(tasks)
    models = general_models(variants)
    options = options or GeneralOptions()
    out = Path(out)
    rows_file = ResumableRows(out / GENERAL)
    previous = rows_file.previous
    rows: list[dict[str, Any]] = []
    for m in models:
        key = _key(m, names, include, options)
        done = [_score_fields(r) for r in previous if r.get("key") == key and r.get("model") == m.label]
        if not done:
            done = [r | {"key": key} for r in score_model(m, names, include, out, options)]
            rows_file.append(done)  # a model counts as done once its rows are on disk
        rows += done
    _compare(rows, models, out, options.seed)
    mine = {(r["model"], r["task"]) for r in rows}
    kept = {r.get("key", id(r)): r for r in previous if (r.get("model"), r.get("task")) not in mine}
    rows_file.rewrite(rows + list(kept.values()))  # once, cleanly: these rows, then earlier others
    return rows


SCORE_FIELDS = ("model", "spec", "task", "metric", "filter", "value", "stderr", "n", "key")


def _score_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A resumed row without its comparison (recomputed against this run's base)."""
    return {k: row[k] for k in SCORE_FIELDS if k in row}


def _key(model: GeneralModel, names: list[str], include: list[str], options: GeneralOptions) -> str:
    """What a model's general rows depend on: its spec, the tasks (and the local task files), the
    document limit and the seed; rows with this key in general.jsonl are resumed."""
    from culturellm.hashing import sha256_file, stable_hash

    files = {str(f): sha256_file(f) for d in include for f in sorted(Path(d).rglob("*")) if f.is_file()}
    return stable_hash(
        {"spec": model.spec, "tasks": names, "files": files, "limit": options.limit, "seed": options.seed}
    )


def _check_general_row(r: dict[str, Any], where: str) -> None:
    """A general.jsonl row (a shared or copied file is data): its names text, its scores numbers (lm-eval
    may report NaN, so only the type is checked)."""
    for key in ("model", "task", "metric", "filter"):
        if not isinstance(r.get(key), str):
            raise DataError(f"{where}: field '{key}' must be text")
    for key in ("value", "stderr"):
        v = r.get(key)
        if (v is not None or key == "value") and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise DataError(f"{where}: field '{key}' must be a number")


def load_general(places: list[Path]) -> list[dict[str, Any]]:
    """General-ability rows of general.jsonl files in (or beside the results file of) `places`; later
    files win for the same model x task x metric."""
    found: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for p in places:
        p = Path(p)
        path = (p if p.is_dir() else p.parent) / GENERAL
        if path.is_file():
            for i, r in numbered_jsonl(path, tolerate_torn_tail=True):
                _check_general_row(r, f"{path}:{i}")
                found[(r["model"], r["task"], r["metric"], r["filter"])] = r
    return list(found.values())


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def _cells(r: dict[str, Any]) -> list[str]:
    """model, base, before, after (± stderr), difference [95% CI], n of one row; a base model's score
    is its *before*."""
    score = f"{r['value']:.3f}" + (f" ± {r['stderr']:.3f}" if r.get("stderr") is not None else "")
    if not r.get("base_model"):
        return [r["model"], "–", score, "–", "–", str(r["n"])]
    diff = "–" if r.get("diff") is None else f"{r['diff']:+.3f}"
    if r.get("diff_ci"):
        diff += " [{:+.3f}, {:+.3f}]".format(*r["diff_ci"])
    return [r["model"], r["base_model"], _fmt(r.get("before")), score, diff, str(r["n"])]


def general_section(rows: list[dict[str, Any]]) -> list[str]:
    """The report's "General ability" section (markdown lines; none without rows)."""
    if not rows:
        return []
    out = [
        "",
        "## General ability (forgetting check)",
        "",
        "lm-evaluation-harness tasks on each base model (*before*) and on its culture models, adapter "
        "applied (*after*); ± is lm-eval's standard error. *difference* = after − before with a 95% CI "
        "(paired bootstrap over the documents, 1000 resamples; for group tasks ±1.96 × the combined "
        "standard errors). A CI that holds 0 shows no measurable forgetting at this sample size.",
        "",
        "| task | metric | model | base | before | after | difference [95% CI] | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["task"], r["metric"], r.get("base_model") is not None)):
        metric = r["metric"] + ("" if r["filter"] == "none" else f" ({r['filter']})")
        out.append("| " + " | ".join([r["task"], metric, *_cells(r)]) + " |")
    return out


def general_table(rows: list[dict[str, Any]]) -> Any:
    """The forgetting check as a rich table (the terminal summary of `evaluate --general`)."""
    from rich.table import Table

    table = Table("task", "metric", "model", "base", "before", "after", "difference [95% CI]", "n")
    for r in rows:
        table.add_row(r["task"], r["metric"], *_cells(r))
    return table


def general_plot(rows: list[dict[str, Any]], plot_dir: Path) -> Path | None:
    """plots/general.png: per task (its first metric), each model's score with 1.96 x stderr bars."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first: dict[str, tuple[str, str]] = {}
    for r in rows:
        first.setdefault(r["task"], (r["metric"], r["filter"]))
    tasks = list(first)
    models = list(dict.fromkeys(r["model"] for r in rows))
    idx = {(r["model"], r["task"]): r for r in rows if (r["metric"], r["filter"]) == first[r["task"]]}
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(tasks) + 2), 4))
    for j, m in enumerate(models):
        rs = [idx.get((m, t)) for t in tasks]
        vals = [r["value"] if r else np.nan for r in rs]
        errs = [1.96 * (r.get("stderr") or 0.0) if r else 0.0 for r in rs]
        ax.bar(
            np.arange(len(tasks)) + (j - (len(models) - 1) / 2) * width,
            vals,
            width,
            yerr=errs,
            capsize=2,
            label=m,
        )
    ax.set_xticks(np.arange(len(tasks)))
    ax.set_xticklabels([f"{t}\n{first[t][0]}" for t in tasks], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("general ability: base vs culture models (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plot_dir.mkdir(parents=True, exist_ok=True)
    path = plot_dir / "general.png"
    with target(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
