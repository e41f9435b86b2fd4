"""`evaluate`: every model variant on every task of the chosen cultures, one protocol for all.

Results are appended to OUT/results.jsonl one row per model x task as soon as a task is done, so an
interrupted evaluation resumes where it stopped (a row whose protocol key matches is not recomputed);
at the end results.jsonl is rewritten cleanly and OUT/report.md and OUT/plots/*.png are written.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from culturellm.errors import CultureLLMError, UnknownNameError
from culturellm.evaluate.config import EvaluateConfig
from culturellm.evaluate.report import check_row, write_report
from culturellm.evaluate.variant import ModelVariant, scoring_summary
from culturellm.hashing import stable_hash
from culturellm.jsonio import ResumableRows, write_jsonl
from culturellm.llm.base import Chat, ChatModel, SamplingParams, ScoreRequest
from culturellm.names import path_part
from culturellm.progress import progress_bar
from culturellm.runlayout import RESULTS

if TYPE_CHECKING:
    from culturellm.evaluate.data import Example, TaskData
    from culturellm.evaluate.tasks import Task

PREDICTIONS = "predictions"  # OUT/predictions/<model>/<culture>/<task>.jsonl, one row per example
MODES = ("score", "generate")


def protocol_key(
    v: ModelVariant, system_text: str | None, task: Task, n: int, data: Path, config: EvaluateConfig
) -> str:
    """The resume key of one model x task row: the variant, its system message, the task, the number
    of examples, the resolved data directory and every output-deciding field of the config
    (`config.keyed()`: a new EvaluateConfig field is in it by construction)."""
    obj: dict[str, Any] = {
        "spec": v.spec,
        "system": system_text,
        "task": task.to_dict() | {"source": None},
        "n": n,
        "data": str(data.resolve()),
        "config": config.keyed(),
    }
    return stable_hash(obj)


@dataclass(frozen=True)
class PlanItem:
    """One model variant on one task: what it will be asked (`examples`, with `system`) and its
    protocol key (a row with this key in results.jsonl is resumed, not recomputed)."""

    variant: ModelVariant
    data: TaskData
    examples: list[Example]
    system: str | None
    key: str


@dataclass
class Plan:
    """Phase 1: every model variant x task of the evaluation, and what earlier runs already finished."""

    config: EvaluateConfig
    root: Path  # the data directory
    out: Path
    items: list[PlanItem]
    previous: list[dict[str, Any]]  # rows already in OUT/results.jsonl (a resumed or earlier run)
    generation: SamplingParams | None  # generate mode: the sampling parameters

    @property
    def done(self) -> dict[str, dict[str, Any]]:
        return {r["key"]: r for r in self.previous if r.get("key")}

    @property
    def calibration(self) -> str:
        return self.config.calibration if self.config.mode == "score" else "none"

    def todo(self) -> list[PlanItem]:
        done = self.done
        return [it for it in self.items if it.key not in done]


@dataclass
class TaskRequests:
    """Phase 2: what one plan item asks of its model. score: one ScoreRequest per example (candidates:
    the task's label verbalizations) and, with contextual calibration, one per content-free text;
    generate: one chat per example."""

    item: PlanItem
    kind: Literal["score", "generate"]
    score: list[ScoreRequest] = field(default_factory=list)
    content_free: list[ScoreRequest] = field(default_factory=list)
    chats: list[Chat] = field(default_factory=list)


@dataclass
class Responses:
    """Phase 3: what the model answered for one TaskRequests (label scores or replies), and its cost."""

    scores: list[list[float]] | None = None
    methods: list[str] | None = None  # how each example was scored: exact, first-token or parse
    content_free: list[list[float]] | None = None
    replies: list[str] | None = None
    seconds: float = 0.0
    requests: int = 0
    cache_hits: int = 0
    dtype: str | None = None  # a local model's precision (None: remote)


@dataclass
class TaskResult:
    """Phase 4: one model x task result, a row of results.jsonl (`to_row`, the same keys in the same
    order as every earlier version wrote)."""

    task: str
    model: str
    spec: str
    system: str
    culture: str
    language: str
    type: str
    mode: str
    scoring: str | None  # score mode: how the examples were scored (exact, first-token, parse)
    generation: dict[str, Any] | None
    calibration: dict[str, Any] | None
    metrics: dict[str, Any]  # macro_f1, macro_f1_ci, accuracy, per_class_f1, n (+ macro_f1_uncalibrated)
    skipped_empty: int
    truncated: int
    unparseable_rate: float
    labels: list[str]
    label_counts: dict[str, int]
    pred_counts: dict[str, int]
    baselines: dict[str, Any]
    total_available: int
    limit: int | None
    seed: int
    data_dir: str
    bundled_sample: bool
    seconds: float
    requests: int
    cache_hits: int
    key: str
    dtype: str | None = None  # a local model's precision as loaded (--dtype auto: docs/models.md)

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "metrics":
                row.update(value)
            elif value is not None or f.name not in ("scoring", "generation", "calibration", "dtype"):
                row[f.name] = value
        return row


def _check(config: EvaluateConfig, models: list[ModelVariant], cultures: list[str]) -> None:
    if config.mode not in MODES:
        raise CultureLLMError(f"unknown mode '{config.mode}' (choose score or generate)")
    from culturellm.evaluate.scoring import CALIBRATIONS

    if config.calibration not in CALIBRATIONS:
        raise CultureLLMError(f"unknown calibration '{config.calibration}' (choose contextual or none)")
    if not models:
        raise CultureLLMError("no model to evaluate (give --model)")
    labels_seen = [m.label for m in models]
    if len(set(labels_seen)) != len(labels_seen):
        raise CultureLLMError(f"two models have the same label: {labels_seen} (use --label)")
    if config.limit is not None and config.limit < 1:
        raise CultureLLMError(f"--limit must be at least 1, got {config.limit}")
    if not cultures:
        raise CultureLLMError("no culture given (use --culture)")


def _generation(config: EvaluateConfig) -> SamplingParams | None:
    """generate mode: the sampling parameters (the paper's unless the config says otherwise)."""
    from culturellm.evaluate.scoring import PAPER_MAX_TOKENS, PAPER_TEMPERATURE, generation_params

    if config.mode != "generate":
        return None
    params = generation_params(
        PAPER_TEMPERATURE if config.temperature is None else config.temperature,
        PAPER_MAX_TOKENS if config.max_tokens is None else config.max_tokens,
        config.seed,
    )
    if params.temperature < 0 or params.max_tokens < 1:
        raise CultureLLMError("--temperature must be >= 0 and --max-tokens >= 1")
    return params


def _generation_dict(params: SamplingParams | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {"temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens}


def _select_tasks(cultures: list[str], tasks: list[str] | None) -> list[Task]:
    from culturellm.cultures import get_culture
    from culturellm.evaluate.tasks import list_tasks

    names = [get_culture(c).name for c in cultures]
    selected: list[Task] = []
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
    return selected


def plan_evaluation(
    models: list[ModelVariant], cultures: list[str], config: EvaluateConfig, out: Path
) -> Plan:
    """Phase 1: validate, select the tasks, load (and validate) every dataset before any model runs (a
    data error costs no model time), and key every model x task against OUT/results.jsonl."""
    from culturellm.evaluate.data import load_task, resolve_data_dir, stratified_sample

    _check(config, models, cultures)
    generation = _generation(config)
    root = resolve_data_dir(config.data_dir)
    loaded = []
    for t in _select_tasks(cultures, config.tasks):
        td = load_task(t, root)
        loaded.append((td, stratified_sample(td.examples, config.limit, config.seed)))
    out = Path(out)
    res_path = out / RESULTS
    previous = ResumableRows(res_path).previous
    for i, row in enumerate(previous, 1):  # before any model runs: its report would plot these rows
        check_row(row, f"{res_path}: row {i}")
    items = []
    for v in models:
        for td, exs in loaded:
            system = v.system_prompt(td.task.culture)
            key = protocol_key(v, system, td.task, len(exs), root, config)
            items.append(PlanItem(v, td, exs, system, key))
    return Plan(config, root, out, items, previous, generation)


def build_requests(plan: Plan, item: PlanItem) -> TaskRequests:
    """Phase 2: the requests of one plan item (the same messages whatever backend answers them)."""
    from culturellm.evaluate.scoring import CONTENT_FREE, build_messages

    task, system = item.data.task, item.system
    texts = [e.text for e in item.examples]
    if plan.config.mode == "generate":
        return TaskRequests(item, "generate", chats=[build_messages(task, t, system) for t in texts])

    def requests(ts: Sequence[str]) -> list[ScoreRequest]:
        return [
            ScoreRequest(build_messages(task, t, system), task.verbalizations, end_of_turn=True) for t in ts
        ]

    cf = requests(CONTENT_FREE) if plan.calibration == "contextual" else []
    return TaskRequests(item, "score", score=requests(texts), content_free=cf)


def _ask(model: ChatModel, req: TaskRequests, gen: SamplingParams | None, advance: Any) -> Responses:
    """Phase 3 for one plan item: its requests in chunks of scoring.CHUNK (one ChatModel call each: the
    local backend computes the prompt prefix a call shares once, and bounded calls drive progress)."""
    from culturellm.evaluate.scoring import CHUNK

    usage0 = model.usage.as_dict()
    t0 = time.perf_counter()
    resp = Responses(dtype=getattr(model, "dtype_name", None))
    if req.kind == "score":
        resp.scores, resp.methods = [], []
        starts = range(0, len(req.score), CHUNK)
        for start in starts:
            chunk = req.score[start : start + CHUNK]
            # the content-free prompts ride along with the last chunk: one call, one shared prefix
            last = start == starts[-1] and bool(req.content_free)
            found = model.score([*chunk, *req.content_free] if last else chunk)
            for r in found[: len(chunk)]:
                resp.scores.append(list(r.logprobs))
                resp.methods.append(getattr(r, "method", "exact"))
            if last:
                resp.content_free = [list(r.logprobs) for r in found[len(chunk) :]]
            advance(len(chunk))
        if req.content_free and resp.content_free is None:  # no examples
            resp.content_free = [list(r.logprobs) for r in model.score(req.content_free)]
    else:
        resp.replies = []
        for start in range(0, len(req.chats), CHUNK):
            chunk = req.chats[start : start + CHUNK]
            resp.replies += model.generate(chunk, gen)
            advance(len(chunk))
    resp.seconds = time.perf_counter() - t0
    usage1 = model.usage.as_dict()
    resp.requests = int(usage1["requests"]) - int(usage0["requests"])
    resp.cache_hits = int(usage1["cache_hits"]) - int(usage0["cache_hits"])
    return resp


def run_requests(
    plan: Plan, requests: list[TaskRequests], progress: Any
) -> Iterator[tuple[TaskRequests, Responses]]:
    """Phase 3: each model loaded once, asked everything of its plan items, kind by kind (score or
    generate); yields as each plan item is answered, so the caller can record it (resumption)."""
    bar = progress.add_task("evaluating", total=max(sum(len(r.item.examples) for r in requests), 1))
    by_model: dict[tuple[str, Any], list[TaskRequests]] = {}
    for r in requests:
        v = r.item.variant
        by_model.setdefault((v.spec, v.access), []).append(r)
    for reqs in by_model.values():
        model = reqs[0].item.variant.load()
        for r in reqs:
            progress.update(bar, description=f"{r.item.variant.label} · {r.item.data.task.name}")
            yield r, _ask(model, r, plan.generation, lambda k: progress.advance(bar, k))


def _predictions(
    plan: Plan, req: TaskRequests, resp: Responses
) -> tuple[list[str | None], list[str | None] | None, dict[str, Any] | None]:
    """Labels from responses: (predictions, uncalibrated predictions, calibration record)."""
    from culturellm.evaluate.scoring import CONTENT_FREE, calibrate, log_prior, parse_answer, pick_label

    task = req.item.data.task
    if resp.replies is not None:
        return [parse_answer(task, r) for r in resp.replies], None, None
    scores = resp.scores or []
    raw = [pick_label(task.label_names, s) for s in scores]
    if resp.content_free is None:
        return raw, None, None
    prior = log_prior(resp.content_free)
    preds = [pick_label(task.label_names, calibrate(s, prior)) for s in scores]
    calib: dict[str, Any] = {"method": "none (unusable content-free scores)", "prior": None}
    if prior is not None:
        probs = [round(math.exp(p), 4) for p in prior]
        calib = {"method": "contextual", "prior": dict(zip(task.label_names, probs, strict=True))}
    calib["content_free"] = list(CONTENT_FREE)
    return preds, raw, calib


def task_result(plan: Plan, req: TaskRequests, resp: Responses, n_boot: int) -> tuple[TaskResult, list]:
    """Phase 4: the metrics row of one plan item and its per-example predictions."""
    from culturellm.evaluate.data import is_bundled_sample
    from culturellm.evaluate.metrics import classification_metrics, majority_baseline, random_baseline

    item, cfg = req.item, plan.config
    task, exs = item.data.task, item.examples
    y_true = [e.label for e in exs]
    preds, raw_preds, calib = _predictions(plan, req, resp)
    m = classification_metrics(y_true, preds, task.label_names, n_boot=n_boot, seed=cfg.seed)
    if raw_preds is not None:
        m["macro_f1_uncalibrated"] = classification_metrics(y_true, raw_preds, task.label_names, n_boot=0)[
            "macro_f1"
        ]
    unparseable = sum(p is None for p in preds)
    result = TaskResult(
        task=task.name, model=item.variant.label, spec=item.variant.spec,
        system=item.variant.describe_system(), culture=task.culture, language=task.language,
        type=task.type, mode=cfg.mode, scoring=scoring_summary(resp.methods) if resp.methods else None,
        generation=_generation_dict(plan.generation), calibration=calib,
        metrics=m, skipped_empty=item.data.skipped_empty, truncated=sum(e.truncated for e in exs),
        unparseable_rate=unparseable / len(exs) if exs else 0.0, labels=task.label_names,
        label_counts={lab: y_true.count(lab) for lab in task.label_names},
        pred_counts={lab: preds.count(lab) for lab in task.label_names} | {"<none>": unparseable},
        baselines={
            "majority": majority_baseline(y_true, task.label_names),
            "random": random_baseline(y_true, task.label_names),
        },
        total_available=item.data.total, limit=cfg.limit, seed=cfg.seed, data_dir=str(plan.root),
        bundled_sample=is_bundled_sample(plan.root), seconds=round(resp.seconds, 3),
        requests=resp.requests, cache_hits=resp.cache_hits, key=item.key, dtype=resp.dtype,
    )  # fmt: skip
    pred_rows = [
        {
            "model": item.variant.label,
            "task": task.name,
            "line": e.line,
            "label": e.label,
            "pred": p,
            **({"pred_uncalibrated": raw_preds[i]} if raw_preds is not None else {}),
            **({"reply": resp.replies[i]} if resp.replies is not None else {}),
        }
        for i, (e, p) in enumerate(zip(exs, preds, strict=True))
    ]
    return result, pred_rows


def _record(plan: Plan, result: TaskResult, pred_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Checkpoint one finished plan item: its predictions file, then its row appended to results.jsonl
    (last: a task counts as done only once its row is on disk)."""
    parts = "/".join(path_part(x) for x in result.task.split("/"))
    write_jsonl(plan.out / PREDICTIONS / path_part(result.model) / f"{parts}.jsonl", pred_rows)
    row = result.to_row()
    ResumableRows(plan.out / RESULTS).append([row])
    return row


def write_outputs(plan: Plan, rows: list[dict[str, Any]], report: bool = True) -> None:
    """Phase 5: results.jsonl rewritten cleanly once (this evaluation's rows in plan order, then
    earlier rows for other model x task pairs) and, unless `report` is False (a run writes one report
    for all cultures), report.md and plots."""
    res_path = plan.out / RESULTS
    rows_file = ResumableRows(res_path, plan.previous)
    rows_file.finish(rows, ("model", "task"), earlier_first=True, drop=("resumed",))
    if report:
        write_report([res_path], plan.out)


def evaluate(
    models: list[ModelVariant],
    cultures: list[str],
    config: EvaluateConfig,
    out: Path,
    *,
    progress: bool = True,
    n_boot: int = 1000,
    report: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate each model variant on every task of `cultures` (config.tasks: only those, full or short
    names) and return one result row per model x task (also in out/results.jsonl, with report.md and
    plots unless `report` is False). See EvaluateConfig for the protocol options: data_dir (None: the
    bundled 30-row sample), limit (a stratified, seeded subsample per task), mode ("score": label
    scoring; "generate": generation + parser, by default sampled as the paper did), calibration
    (score mode: "contextual" divides out the label prior the model shows on content-free texts; rows
    also carry the uncalibrated macro-F1).

    Phases, as lm-evaluation-harness's evaluator: plan (tasks x models x resume state) -> requests ->
    one pass per model and request kind -> a TaskResult per model x task -> outputs written once."""
    plan = plan_evaluation(models, cultures, config, out)
    done = plan.done
    requests = [build_requests(plan, it) for it in plan.todo()]
    new: dict[str, dict[str, Any]] = {}
    with progress_bar(progress) as prog:
        for req, resp in run_requests(plan, requests, prog):
            result, preds = task_result(plan, req, resp, n_boot)
            new[req.item.key] = _record(plan, result, preds)
    rows = [done[it.key] | {"resumed": True} if it.key in done else new[it.key] for it in plan.items]
    write_outputs(plan, rows, report)
    return rows
