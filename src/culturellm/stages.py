"""The stages of `culturellm run`, as a table: each stage says what it reads, what it writes, its key
and its body, side by side; `culturellm.pipeline.Pipeline` walks `STAGES` with one loop.

A stage's *key* is `stable_hash()` of what its key function returns: its own config section and the
output digests of the stages it reads (`reads`; the loop hands the key function a `digest` that
refuses any other stage). `writes` are the stage's outputs as glob patterns relative to the run
directory (docs/architecture.md, "A run directory"); the manifest records their sha256.

To add a stage: write its key function and body here, add a `Stage(...)` line to `STAGES` in run order
and its paths to `culturellm.runlayout.RunLayout` (docs/architecture.md, "How to add a stage").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from culturellm.config import RunConfig
from culturellm.jsonio import atomic_write_text, write_json, write_jsonl
from culturellm.runlayout import ONE, RunLayout

Digest = Callable[[str], str]  # stage name -> one hash of that finished stage's outputs


@dataclass
class StageResult:
    """What a stage body returns: its output files (hashed into the manifest), counts and usage."""

    outputs: list[Path]
    counts: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """What a stage body and key see: the configuration, the run directory's layout, the cultures
    (`requested`: the names as the configuration expands them, part of the seeds key), the hashes of
    the package inputs, and how to report."""

    config: RunConfig
    layout: RunLayout
    cultures: list[Any]  # culturellm.cultures.Culture
    requested: list[str]
    inputs: dict[str, str] = field(default_factory=dict)
    console: Console = field(default_factory=lambda: Console(stderr=True))
    progress: bool = True

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cultures]

    def training_sets(self) -> list[str]:
        """One training set per culture, and CultureLLM-One's when there are several (`train`: all of
        them, the cultures' only, or One's only)."""
        if len(self.names) == 1:
            return self.names
        return {"all": [*self.names, ONE], "cultures": self.names, "one": [ONE]}[self.config.train]

    @property
    def access(self) -> Any:
        """How every model of the run is reached and placed: [models] as a ModelAccess."""
        return self.config.models.access

    def variant(self, label: str, spec: str, system: Any = None) -> Any:
        """The one way a run builds a model variant: every model of a run is loaded with the run's
        ModelAccess ([models] base_url, api key, cache, timeout, device, dtype, batch size)."""
        from culturellm.evaluate import ModelVariant

        return ModelVariant(label, spec, system, self.access)

    def model(self, spec: str) -> Any:
        """A chat model of the run (the augmenter, the judge), loaded as every variant is."""
        return self.variant(spec, spec).load()

    def variants(self, culture: str) -> list[Any]:
        """The models compared for one culture: base, base + culture prompt, its CultureLLM, One."""
        base = self.config.models.base
        out = [self.variant("base", base, None)]
        if self.config.evaluate.baselines:
            out.append(self.variant("base+culture-prompt", base, "culture"))
        sets = self.training_sets()
        if culture in sets:
            out.append(self.variant("culturellm", str(self.layout.model_dir(culture)), "culture"))
        if ONE in sets:
            out.append(self.variant("culturellm-one", str(self.layout.model_dir(ONE)), "culture"))
        return out

    def align_variants(self, culture: str) -> list[Any]:
        """The models aligned for one culture: `variants`, and with `[align] retrieve = K` the retrieval
        baseline (base + retrieval) and the culture model + retrieval."""
        out = self.variants(culture)
        k = self.config.align.retrieve
        if k is not None and culture in self.training_sets():
            from culturellm.evaluate.variant import Retrieval

            r = Retrieval(k, self.config.models.embedder)
            out.append(self.variant("base+retrieval", self.config.models.base, r))
            out.append(self.variant("culturellm+retrieval", str(self.layout.model_dir(culture)), r))
        return out

    def training_set_of(self, variant: Any, culture: str) -> str:
        """The training set whose split a variant is aligned on: the one its run model was trained on
        (models/<name>), else (the base model) the culture's, or One's when the culture's set is not
        trained (`train = "one"`: every set of a run has one split)."""
        spec = Path(variant.spec)
        if spec.parent == self.layout.root / "models":
            return spec.name
        return culture if culture in self.training_sets() else ONE

    def matrix_variants(self) -> list[Any]:
        """The rows of the model x culture matrix: base, every culture model, CultureLLM-One."""
        sets = self.training_sets()
        models = [
            self.variant(f"culturellm-{c}", str(self.layout.model_dir(c)), "culture")
            for c in self.names
            if c in sets
        ]
        one = (
            [self.variant("culturellm-one", str(self.layout.model_dir(ONE)), "culture")]
            if ONE in sets
            else []
        )
        return [self.variant("base", self.config.models.base, None), *models, *one]

    def seed_rows(self, culture: Any) -> list[dict[str, Any]]:
        from culturellm.seeds import seed_set

        return [s.to_dict() for s in seed_set(culture)]


@dataclass(frozen=True)
class Stage:
    """One row of the run: `reads` (stages whose outputs it reads), `writes` (glob patterns of its
    outputs in the run directory), `key(run, digest)` (what decides whether it must rerun) and
    `run(run)` (its body)."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    key: Callable[[Run, Digest], dict[str, Any]]
    run: Callable[[Run], StageResult]


# --- seeds: the WVS seed questions with each culture's answers ----------------------------------


def _seeds_key(run: Run, digest: Digest) -> dict[str, Any]:
    return {"cultures": run.requested, "inputs": run.inputs}


def _seeds(run: Run) -> StageResult:
    outs, counts = [], {}
    for c in run.cultures:
        rows = run.seed_rows(c)
        path = run.layout.seeds(c.name)
        write_jsonl(path, rows)
        outs.append(path)
        counts[c.name] = len(rows)
    return StageResult(outs, {"questions": counts})


# --- augment: paraphrases and synonym variants of the seed questions ----------------------------


def _augment_key(run: Run, digest: Digest) -> dict[str, Any]:
    from culturellm.hashing import sha256_file

    cfg = run.config
    key = {
        "cfg": cfg.section_hash("augment"),
        "llm": cfg.models.augmenter,
        "emb": cfg.models.embedder,
        "inputs": run.inputs["questions"],
    }
    if cfg.augment.import_file is not None:  # imported rewordings: their content decides the records
        path = Path(cfg.augment.import_file)
        key["import_sha256"] = sha256_file(path) if path.is_file() else str(path)
    return key


def _augment(run: Run) -> StageResult:
    from culturellm.augment import augment
    from culturellm.embed import load_embedder
    from culturellm.wvs import load_questions

    cfg = run.config
    if cfg.augment.import_file is not None:
        return _import(run)
    manifest = augment(
        cfg.augment.select(load_questions()),
        run.model(cfg.models.augmenter),
        load_embedder(cfg.models.embedder),
        cfg.augment,
        run.layout.augment_dir,
        judge=run.model(cfg.augment.judge) if cfg.augment.judge else None,
        access=run.access,
    )
    usage = {k: manifest.get(k) for k in ("llm_requests", "tokens", "cost_usd", "cache_hits")}
    return StageResult([run.layout.augmented], manifest.get("counts", {}), usage)


def _import(run: Run) -> StageResult:
    """[augment] import_file: the release's rewordings imported (`culturellm augment import`) into
    augment/augmented.jsonl, filtered by the import filter. Fast (one embedding pass), so a killed
    import simply runs again."""
    from culturellm.augment.importer import import_release
    from culturellm.embed import load_embedder
    from culturellm.errors import DataError
    from culturellm.outdir import owner

    a = run.config.augment
    path = Path(a.import_file)  # type: ignore[arg-type]
    if not path.is_file():
        raise DataError(f"[augment] import_file: {path} not found")
    out = run.layout.augment_dir
    force = owner(out) in ("augment", "augment-import")  # this run's own augment directory
    embedder = load_embedder(run.config.models.embedder)
    manifest = import_release(path, out, embedder, a, force=force, access=run.access)
    return StageResult([run.layout.augmented], manifest["counts"], {"llm_requests": 0})


# --- dataset: one training set (and held-out split) per culture, and One's ----------------------


def _dataset_key(run: Run, digest: Digest) -> dict[str, Any]:
    key = {"cfg": run.config.section_hash("dataset"), "aug": digest("augment"), "seeds": digest("seeds")}
    if run.config.train != "all":  # only then: the keys of earlier runs stay as they were
        key["train"] = run.config.train
    return key


def _dataset(run: Run) -> StageResult:
    from culturellm.dataset import build_training_set

    outs, counts = [], {}
    opts = run.config.dataset  # its target suits the backend: pipeline.check_training
    for name in run.training_sets():
        cultures = run.names if name == ONE else [name]
        path = run.layout.train(name)
        manifest = build_training_set(cultures, run.layout.augmented, path, opts)
        outs += [path, run.layout.split(name)]
        counts[name] = manifest.get("counts")
    return StageResult(outs, counts)


# --- finetune: one model per training set ---------------------------------------------------------


def _finetune_key(run: Run, digest: Digest) -> dict[str, Any]:
    cfg = run.config
    return {"cfg": cfg.section_hash("finetune"), "base": cfg.models.base, "data": digest("dataset")}


def _finetune(run: Run) -> StageResult:
    from culturellm.finetune import finetune

    cfg, lay = run.config, run.layout
    outs, counts = [], {}
    for name in run.training_sets():
        ref = finetune(
            lay.train(name), cfg.models.base, lay.model_dir(name), cfg.finetune, progress=run.progress
        )
        outs += [ref, lay.adapter(name)]
        if lay.train_summary(name).exists():
            counts[name] = json.loads(lay.train_summary(name).read_text())
    return StageResult(outs, counts)


# --- evaluate: the task suite per culture (and the forgetting check) ------------------------------


def _evaluate_key(run: Run, digest: Digest) -> dict[str, Any]:
    cfg = run.config
    return {"cfg": cfg.section_hash("evaluate"), "base": cfg.models.base, "models": digest("finetune")}


def _evaluate(run: Run) -> StageResult:
    from culturellm.evaluate import evaluate

    outs, counts = [], {}
    for c in run.cultures:
        out = run.layout.eval_dir(c.name)
        rows = evaluate(
            run.variants(c.name), [c.name], run.config.evaluate, out, progress=run.progress, report=False
        )
        outs.append(run.layout.results(c.name))
        counts[c.name] = len(rows)
    if run.config.evaluate.general:
        outs.append(_general(run))
    return StageResult(outs, {"result_rows": counts})


def _general(run: Run) -> Path:
    """The forgetting check ([evaluate] general): the base model and every culture model on the
    general tasks; RUN/general.jsonl, which the report reads."""
    from culturellm.evaluate.general import GENERAL, GeneralOptions, run_general

    ev, lay = run.config.evaluate, run.layout
    variants = [run.variant("base", run.config.models.base)]
    variants += [run.variant(f"culturellm-{n}", str(lay.model_dir(n))) for n in run.training_sets()]
    options = GeneralOptions(ev.general_limit, ev.seed, device=run.access.device, dtype=run.access.dtype)
    run_general(variants, ev.general or [], lay.root, options)
    return lay.root / GENERAL


# --- align: WVS alignment per culture, and the model x culture matrix ----------------------------


def _align_key(run: Run, digest: Digest) -> dict[str, Any]:
    cfg = run.config
    return {
        "cfg": cfg.section_hash("align"),
        "base": cfg.models.base,
        "models": digest("finetune"),
        "data": digest("dataset"),
        "baselines": cfg.evaluate.baselines,
    }


def _align(run: Run) -> StageResult:
    from culturellm.evaluate.align import align_all, run_job

    outs = []
    for c in run.cultures:
        jobs = []
        for v in run.align_variants(c.name):
            split = run.layout.split(run.training_set_of(v, c.name))
            jobs.append(run_job(v, split, run.config.align))
        align_all(jobs, c.name, run.layout.eval_dir(c.name))
        outs.append(run.layout.align(c.name))
    if len(run.cultures) > 1:
        outs.append(align_matrix(run))
    return StageResult(outs)


def align_matrix(run: Run) -> Path:
    """Base, every culture model and CultureLLM-One x every culture, on the held-out items (the
    split is the same for every training set of a run): eval/align_matrix.json."""
    from culturellm.evaluate.align import heldout_items
    from culturellm.evaluate.matrix import align_matrix as matrix_of

    lay, names = run.layout, run.names
    split = lay.split(run.training_sets()[0])
    use_split = heldout_items(split) >= run.config.align.min_heldout
    own: dict[str, str | None] = {f"culturellm-{c}": c for c in names}
    own.update({"base": None, "culturellm-one": None})  # no culture of their own
    matrix = matrix_of(run.matrix_variants(), names, split if use_split else None, own=own)
    write_json(lay.align_matrix, matrix)
    return lay.align_matrix


# --- report: report.md and plots ------------------------------------------------------------------


def _report_key(run: Run, digest: Digest) -> dict[str, Any]:
    return {"eval": digest("evaluate"), "align": digest("align"), "aug": digest("augment")}


def _report(run: Run) -> StageResult:
    from culturellm.evaluate import write_report

    lay = run.layout
    report = write_report([lay.results(c.name) for c in run.cultures], lay.root)
    if lay.align_matrix.exists():
        from culturellm.evaluate.matrix import plot_matrix, report_section

        matrix = json.loads(lay.align_matrix.read_text())
        png = plot_matrix(matrix, lay.plots_dir / "align_matrix.png")
        atomic_write_text(report, report.read_text(encoding="utf-8") + report_section(matrix, png))
    if lay.augmented.is_file():  # how much of the training data changes the meaning, estimated
        from culturellm.meaning import estimate

        est = estimate.append_to_report(report, lay.augmented)
        if est["warn"]:
            run.console.print(estimate.describe(est), style="bold red", markup=False)
    pngs = lay.plots()
    return StageResult([report, *pngs], {"plots": len(pngs)})


# --- push: the culture models (and training sets) to the Hugging Face Hub ([push] to) -------------


def _push_key(run: Run, digest: Digest) -> dict[str, Any]:
    return {
        "cfg": run.config.section_hash("push"),
        "models": digest("finetune"),
        "data": digest("dataset"),
        "eval": digest("evaluate"),
        "align": digest("align"),
    }


def _push(run: Run) -> StageResult:
    """culturellm.share.runpush: without `[push] to` nothing is pushed (push.json stays `{}`); else
    every culture model and CultureLLM-One, resumable through RUN/push.json."""
    from culturellm.share.runpush import push_items, push_run

    cfg, lay = run.config.push, run.layout
    items = push_items(run.training_sets(), lay.model_dir, lay.train, run.config.name, cfg)
    record, commits = push_run(lay.root, items, cfg, run.console)
    return StageResult([record], {"commits": commits} if commits else {})


STAGES: tuple[Stage, ...] = (
    Stage("seeds", (), ("seeds/*.jsonl",), _seeds_key, _seeds),
    Stage("augment", (), ("augment/augmented.jsonl",), _augment_key, _augment),
    Stage(
        "dataset",
        ("seeds", "augment"),
        ("data/*/train.jsonl", "data/*/train.manifest.json"),
        _dataset_key,
        _dataset,
    ),
    Stage("finetune", ("dataset",), ("models/*/*",), _finetune_key, _finetune),
    Stage("evaluate", ("finetune",), ("eval/*/results.jsonl", "general.jsonl"), _evaluate_key, _evaluate),
    Stage(
        "align",
        ("dataset", "finetune"),
        ("eval/*/align.jsonl", "eval/align_matrix.json"),
        _align_key,
        _align,
    ),
    Stage("report", ("evaluate", "align", "augment"), ("report.md", "plots/*.png"), _report_key, _report),
    Stage("push", ("dataset", "finetune", "evaluate", "align"), ("push.json",), _push_key, _push),
)
