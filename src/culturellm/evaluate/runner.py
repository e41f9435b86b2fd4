"""`evaluate`: every model variant on every task of the chosen cultures, one protocol for all.

Results are appended to OUT/results.jsonl one row per model x task as soon as a task is done, so an
interrupted evaluation resumes where it stopped (a row whose protocol key matches is not recomputed);
at the end results.jsonl is rewritten cleanly and OUT/report.md and OUT/plots/*.png are written.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from culturellm.errors import CultureLLMError, DataError, UnknownNameError
from culturellm.hashing import stable_hash
from culturellm.jsonio import append_jsonl, iter_jsonl, write_jsonl

RESULTS = "results.jsonl"
PREDICTIONS = "predictions"  # OUT/predictions/<model>/<culture>/<task>.jsonl, one row per example
MODES = ("score", "generate")


@dataclass(frozen=True)
class ModelVariant:
    """A model as compared in a report: `label` (its name in tables), `spec` (a `load_model` spec) and
    `system`: None (no system message), "culture" (culturellm.prompts.culture_system_prompt of the
    evaluated culture) or a Path to a text file whose content is the system message (a culture
    context paragraph). `base_url`, `cache` and `timeout` are how it is loaded (`load()`): the server
    of an openai:MODEL spec, whether calls go through the response cache, seconds per HTTP attempt."""

    label: str
    spec: str
    system: Literal["culture"] | Path | None = None
    base_url: str | None = None
    cache: bool = True
    timeout: float | None = None  # seconds per HTTP attempt (openai:MODEL)

    def load(self) -> Any:
        """The ChatModel (loaded once per process and set of load options)."""
        from culturellm.llm import load_model

        return load_model(self.spec, base_url=self.base_url, cache=self.cache, timeout=self.timeout)

    def __post_init__(self) -> None:
        if isinstance(self.system, str) and self.system != "culture":
            object.__setattr__(self, "system", Path(self.system))

    def system_prompt(self, culture: str) -> str | None:
        """The system message for `culture` (None: none)."""
        if self.system is None:
            return None
        if self.system == "culture":
            from culturellm.cultures import get_culture
            from culturellm.prompts import culture_system_prompt

            return culture_system_prompt(get_culture(culture).display)
        path = Path(self.system)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise DataError(f"{path}: context file not found (model {self.label})") from None
        if not text:
            raise DataError(f"{path}: context file is empty (model {self.label})")
        return text

    def describe_system(self) -> str:
        if self.system is None:
            return "none"
        if self.system == "culture":
            return "culture"
        return f"context:{self.system}"


def variant_from(spec_or_variant: ModelVariant | str, system: Any = None) -> ModelVariant:
    if isinstance(spec_or_variant, ModelVariant):
        return spec_or_variant
    return ModelVariant(label=str(spec_or_variant), spec=str(spec_or_variant), system=system)


def _protocol_key(
    v: ModelVariant,
    system_text: str | None,
    task: Any,
    n: int,
    limit: Any,
    seed: int,
    mode: str,
    data: Path,
    generation: dict[str, Any] | None = None,
    calibration: str = "none",
) -> str:
    obj: dict[str, Any] = {
        "spec": v.spec,
        "system": system_text,
        "task": task.to_dict() | {"source": None},
        "n": n,
        "limit": limit,
        "seed": seed,
        "mode": mode,
        "data": str(data.resolve()),
    }
    if generation is not None:  # generate mode only, so score-mode keys stay as they were
        obj["generation"] = generation
    if calibration != "none":  # uncalibrated score-mode keys stay as they were
        obj["calibration"] = calibration
    return stable_hash(obj)


def _progress(enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )


def evaluate(
    models: list[ModelVariant],
    cultures: list[str],
    data_dir: Path | None,
    limit: int | None,
    out: Path,
    seed: int = 0,
    mode: str = "score",
    progress: bool = True,
    tasks: list[str] | None = None,
    n_boot: int = 1000,
    temperature: float | None = None,
    max_tokens: int | None = None,
    calibration: str = "contextual",
) -> list[dict[str, Any]]:
    """Evaluate each model variant on every task of `cultures` (optionally only `tasks`, full or short
    names) and return one result row per model x task (also in out/results.jsonl, with report.md and
    plots). data_dir: the release's data/ folder (None: the bundled 30-row sample). limit: a stratified,
    seeded subsample of at most `limit` examples per task. mode: "score" (label scoring) or "generate"
    (generation + parser, for comparison with the paper's protocol: by default sampled as the paper did,
    temperature 0.7 and up to 200 new tokens; `temperature`/`max_tokens` change that, 0 = greedy).
    calibration (score mode): "contextual" divides out the label prior the model shows on content-free
    texts before taking the most likely label (rows also carry the uncalibrated macro-F1); "none"."""
    from culturellm.cultures import get_culture
    from culturellm.evaluate.data import is_bundled_sample, load_task, resolve_data_dir, stratified_sample
    from culturellm.evaluate.metrics import classification_metrics, majority_baseline, random_baseline
    from culturellm.evaluate.report import write_report
    from culturellm.evaluate.scoring import (
        CALIBRATIONS,
        CONTENT_FREE,
        PAPER_MAX_TOKENS,
        PAPER_TEMPERATURE,
        calibrated_predictions,
        generation_params,
        predict_generate,
        predict_score,
    )
    from culturellm.evaluate.tasks import list_tasks

    if mode not in MODES:
        raise CultureLLMError(f"unknown mode '{mode}' (choose score or generate)")
    if calibration not in CALIBRATIONS:
        raise CultureLLMError(f"unknown calibration '{calibration}' (choose contextual or none)")
    if mode != "score":
        calibration = "none"  # generated replies have no label scores to calibrate
    if not models:
        raise CultureLLMError("no model to evaluate (give --model)")
    labels_seen = [m.label for m in models]
    if len(set(labels_seen)) != len(labels_seen):
        raise CultureLLMError(f"two models have the same label: {labels_seen} (use --label)")
    if limit is not None and limit < 1:
        raise CultureLLMError(f"--limit must be at least 1, got {limit}")
    gen_params = generation = None
    if mode == "generate":
        gen_params = generation_params(
            PAPER_TEMPERATURE if temperature is None else temperature,
            PAPER_MAX_TOKENS if max_tokens is None else max_tokens,
            seed,
        )
        if gen_params.temperature < 0 or gen_params.max_tokens < 1:
            raise CultureLLMError("--temperature must be >= 0 and --max-tokens >= 1")
        generation = {
            "temperature": gen_params.temperature,
            "top_p": gen_params.top_p,
            "max_tokens": gen_params.max_tokens,
        }
    out = Path(out)
    root = resolve_data_dir(data_dir)
    names = [get_culture(c).name for c in cultures]
    if not names:
        raise CultureLLMError("no culture given (use --culture)")
    selected = []
    for c in names:
        ts = list_tasks(culture=c, names=tasks) if tasks else list_tasks(culture=c)
        if not ts and not tasks:
            raise UnknownNameError(
                f"no evaluation task for culture '{c}' (see `culturellm tasks`; add one to "
                "tasks.toml in the data directory)"
            )
        selected += ts
    if not selected:
        raise UnknownNameError(f"none of the tasks {tasks} belongs to {', '.join(names)}")

    # Load (and validate) every dataset before any model runs: a data error costs no model time.
    loaded = []
    for t in selected:
        td = load_task(t, root)
        loaded.append((td, stratified_sample(td.examples, limit, seed)))

    res_path = out / RESULTS
    previous = list(iter_jsonl(res_path, tolerate_torn_tail=True)) if res_path.exists() else []
    done = {r.get("key"): r for r in previous if r.get("key")}
    rows: list[dict[str, Any]] = []
    plan = []
    for v in models:
        for td, exs in loaded:
            system = v.system_prompt(td.task.culture)
            key = _protocol_key(
                v, system, td.task, len(exs), limit, seed, mode, root, generation, calibration
            )
            plan.append((v, td, exs, system, key))
    todo = sum(len(exs) for v, td, exs, system, key in plan if key not in done)
    bundled = is_bundled_sample(root)

    with _progress(progress) as prog:
        bar = prog.add_task("evaluating", total=max(todo, 1))
        for v, td, exs, system, key in plan:
            task = td.task
            if key in done:
                rows.append(done[key] | {"resumed": True})
                continue
            prog.update(bar, description=f"{v.label} · {task.name}")
            model = v.load()
            texts = [e.text for e in exs]
            y_true = [e.label for e in exs]
            usage0 = model.usage.as_dict()
            t0 = time.perf_counter()
            replies: list[str] | None = None
            raw_preds: list[str | None] | None = None
            calib: dict[str, Any] | None = None
            methods: list[str] = []
            if mode == "score":
                preds, scores = predict_score(
                    model, task, texts, system, lambda k: prog.advance(bar, k), methods=methods
                )
                if calibration == "contextual":
                    raw_preds = preds
                    preds, prior = calibrated_predictions(model, task, scores, system)
                    calib = {"method": "none (unusable content-free scores)", "prior": None}
                    if prior is not None:
                        probs = [round(math.exp(p), 4) for p in prior]
                        calib = {
                            "method": "contextual",
                            "prior": dict(zip(task.label_names, probs, strict=True)),
                        }
                    calib["content_free"] = list(CONTENT_FREE)
            else:
                preds, replies = predict_generate(
                    model, task, texts, system, lambda k: prog.advance(bar, k), gen_params
                )
            seconds = time.perf_counter() - t0
            m = classification_metrics(y_true, preds, task.label_names, n_boot=n_boot, seed=seed)
            if raw_preds is not None:
                raw = classification_metrics(y_true, raw_preds, task.label_names, n_boot=0)
                m["macro_f1_uncalibrated"] = raw["macro_f1"]
            unparseable = sum(p is None for p in preds)
            usage1 = model.usage.as_dict()
            row: dict[str, Any] = {
                "task": task.name,
                "model": v.label,
                "spec": v.spec,
                "system": v.describe_system(),
                "culture": task.culture,
                "language": task.language,
                "type": task.type,
                "mode": mode,
                **({"scoring": scoring_summary(methods)} if methods else {}),
                **({"generation": generation} if generation else {}),
                **({"calibration": calib} if calib else {}),
                **m,
                "skipped_empty": td.skipped_empty,
                "truncated": sum(e.truncated for e in exs),
                "unparseable_rate": unparseable / len(exs) if exs else 0.0,
                "labels": task.label_names,
                "label_counts": {lab: y_true.count(lab) for lab in task.label_names},
                "pred_counts": {lab: preds.count(lab) for lab in task.label_names} | {"<none>": unparseable},
                "baselines": {
                    "majority": majority_baseline(y_true, task.label_names),
                    "random": random_baseline(y_true, task.label_names),
                },
                "total_available": td.total,
                "limit": limit,
                "seed": seed,
                "data_dir": str(root),
                "bundled_sample": bundled,
                "seconds": round(seconds, 3),
                "requests": int(usage1["requests"]) - int(usage0["requests"]),
                "cache_hits": int(usage1["cache_hits"]) - int(usage0["cache_hits"]),
                "key": key,
            }
            pred_rows = [
                {
                    "model": v.label,
                    "task": task.name,
                    "line": e.line,
                    "label": e.label,
                    "pred": p,
                    **({"pred_uncalibrated": raw_preds[i]} if raw_preds is not None else {}),
                    **({"scoring": methods[i]} if methods else {}),
                    **({"reply": replies[i]} if replies is not None else {}),
                }
                for i, (e, p) in enumerate(zip(exs, preds, strict=True))
            ]
            write_jsonl(
                out
                / PREDICTIONS
                / _safe(v.label)
                / f"{'/'.join(_safe(x) for x in task.name.split('/'))}.jsonl",
                pred_rows,
            )
            append_jsonl(res_path, [row])  # the row last: a task counts as done only once it is on disk
            rows.append(row)

    # Rewrite cleanly: this call's rows, then earlier rows for other model x task pairs.
    mine = {(r["model"], r["task"]) for r in rows}
    kept = [r for r in previous if (r.get("model"), r.get("task")) not in mine]
    clean = [{k: val for k, val in r.items() if k != "resumed"} for r in kept + rows]
    write_jsonl(res_path, clean)
    write_report([res_path], out)
    return rows


def scoring_summary(methods: list[str]) -> str:
    from culturellm.evaluate.align import scoring_summary as summary

    return summary(methods)


def _safe(label: str) -> str:
    """A model label (or a task name part) as one directory name: never '.', '..' or hidden."""
    name = re.sub(r"[^\w.+-]+", "_", label).strip("_")[:100] or "model"
    return "_" + name if name.startswith(".") else name
