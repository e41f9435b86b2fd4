"""`culturellm run`: seeds -> augment -> training sets -> fine-tune -> evaluate -> align -> report.

Every stage writes into one run directory and records in `manifest.json` the hash of its inputs and
of its outputs. A stage whose outputs exist and match its inputs is skipped; a stage that was killed
half-way is simply run again, and the stage functions themselves resume (augmentation per seed,
fine-tuning from its last checkpoint, evaluation per task), so a killed run loses nothing and
duplicates nothing.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from culturellm import __version__
from culturellm.config import RunConfig, save_config
from culturellm.errors import CultureLLMError, DataError
from culturellm.hashing import sha256_file, stable_hash
from culturellm.jsonio import atomic_write_text, read_json, read_jsonl, write_json, write_jsonl
from culturellm.outdir import check_claim, claim
from culturellm.runlayout import ONE, RunLayout


def _versions() -> dict[str, str]:
    out = {"culturellm": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "trl", "sentence-transformers", "openai"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[pkg] = importlib.metadata.version(pkg)
    return out


@dataclass
class StageResult:
    outputs: list[Path]
    counts: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)


class Manifest:
    """runs/<name>/manifest.json, rewritten atomically after every stage.

    A torn or wrong-shaped manifest (a disk filled up, an edit gone wrong) is moved aside as
    `manifest.json.damaged` with a warning and the run continues as a fresh one: every stage then
    reruns, and each stage resumes from its own outputs, so nothing already paid for is paid again."""

    def __init__(self, layout: RunLayout, console: Console | None = None):
        self.layout = layout
        self.path = layout.manifest
        self.data: dict[str, Any] = self._read(console) if self.path.exists() else {}
        self.data.setdefault("stages", {})

    def _read(self, console: Console | None) -> dict[str, Any]:
        try:
            data = read_json(self.path, what="run manifest")
            stages = data.get("stages", {})
            if not isinstance(stages, dict) or not all(_stage_ok(v) for v in stages.values()):
                raise DataError(f"{self.path}: damaged run manifest, wrong shape of 'stages'")
            return data
        except DataError as e:
            aside = self.path.with_name(self.path.name + ".damaged")
            self.path.replace(aside)
            (console or Console(stderr=True)).print(
                f"warning: {e}; moved aside to {aside.name}, every stage is checked again",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return {}

    def save(self) -> None:
        write_json(self.path, self.data)

    def stage_is_current(self, name: str, key: str) -> bool:
        rec = self.data["stages"].get(name)
        if not rec or rec.get("status") != "done" or rec.get("key") != key:
            return False
        for rel, digest in rec.get("outputs", {}).items():
            p = self.layout.root / rel
            if not p.is_file() or sha256_file(p) != digest:
                return False
        return True

    def output_digest(self, name: str) -> str:
        """One hash of a finished stage's outputs: the input key of the stages that read them."""
        return stable_hash(self.data["stages"][name]["outputs"])


def _stage_ok(rec: Any) -> bool:
    outputs = rec.get("outputs", {}) if isinstance(rec, dict) else None
    return isinstance(outputs, dict) and all(isinstance(v, str) for v in outputs.values())


def _old_run_dir(root: Path) -> bool:
    """A run directory made before output markers existed: its manifest.json is a run manifest."""
    try:
        data = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # 100,000 `[` is not a manifest either
        return False
    return isinstance(data, dict) and "stages" in data and "culturellm" in data


class Pipeline:
    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        console: Console | None = None,
        progress: bool = True,
        *,
        force: bool = False,
    ):
        self.config = config
        self.run_dir = run_dir
        self.layout = RunLayout(run_dir)
        self.console = console or Console(stderr=True)
        self.progress = progress
        self.force = force
        self.manifest: Manifest  # read in run(), once the run directory is known to be ours
        self._t0 = time.monotonic()

    # -- helpers -----------------------------------------------------------------------------
    def _model(self, spec: str):
        from culturellm.llm import load_model

        models = self.config.models
        return load_model(spec, base_url=models.base_url, cache=models.cache, timeout=models.timeout)

    def _stage(self, name: str, key_parts: dict[str, Any], fn: Callable[[], StageResult]) -> None:
        key = stable_hash(key_parts)
        if self.manifest.stage_is_current(name, key):
            self.console.print(f"[dim]• {name}: up to date, skipped[/]")
            return
        self.console.print(f"[bold]• {name}[/]")
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self.manifest.data["stages"][name] = {"status": "running", "key": key, "started_at": started}
        self.manifest.save()
        t = time.monotonic()
        result = fn()
        self.manifest.data["stages"][name] = {
            "status": "done",
            "key": key,
            "started_at": started,
            "elapsed_s": round(time.monotonic() - t, 2),
            "outputs": {self.layout.rel(p): sha256_file(p) for p in result.outputs},
            "counts": result.counts,
            "usage": result.usage,
        }
        self.manifest.save()

    # -- stages ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from culturellm.llm.placement import local_defaults_applied

        cfg = self.config
        cultures = self.validate()  # everything checkable, before anything is written or paid for
        ours = ("manifest.json",) if _old_run_dir(self.run_dir) else ()
        claim(self.run_dir, "run", force=self.force, ours=ours)
        self.manifest = Manifest(self.layout, self.console)
        save_config(_without_credentials(cfg), self.layout.config)
        m = self.manifest.data
        m["culturellm"] = __version__
        m["versions"] = _versions()
        m["config"] = json.loads(_without_credentials(cfg).model_dump_json())
        m["cultures"] = [c.name for c in self.cultures]
        m["inputs"] = self._input_hashes()
        self.manifest.save()
        models = cfg.models
        with local_defaults_applied(device=models.device, dtype=models.dtype, batch_size=models.batch_size):
            for name, key_parts, fn in self._stages(cultures):
                self._stage(name, key_parts(), fn)
        m["total_elapsed_s"] = round(sum(s.get("elapsed_s", 0.0) for s in m["stages"].values()), 2)
        m["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.manifest.save()
        return m

    def _stages(self, cultures: list[str]) -> list[tuple[str, Callable[[], dict[str, Any]], Callable]]:
        """(name, its key parts, its function) in order. A stage's key: its own config section and
        the digests of the outputs it reads (computed when the stage is reached)."""
        cfg, digest, inputs = self.config, self.manifest.output_digest, self.manifest.data["inputs"]
        models = cfg.models
        return [
            ("seeds", lambda: {"cultures": cultures, "inputs": inputs}, self.stage_seeds),
            (
                "augment",
                lambda: {
                    "cfg": cfg.section_hash("augment"),
                    "llm": models.augmenter,
                    "emb": models.embedder,
                    "inputs": inputs["questions"],
                },
                self.stage_augment,
            ),
            (
                "dataset",
                lambda: {
                    "cfg": cfg.section_hash("dataset"),
                    "aug": digest("augment"),
                    "seeds": digest("seeds"),
                },
                self.stage_dataset,
            ),
            (
                "finetune",
                lambda: {"cfg": cfg.section_hash("finetune"), "base": models.base, "data": digest("dataset")},
                self.stage_finetune,
            ),
            (
                "evaluate",
                lambda: {
                    "cfg": cfg.section_hash("evaluate"),
                    "base": models.base,
                    "models": digest("finetune"),
                },
                self.stage_evaluate,
            ),
            (
                "align",
                lambda: {
                    "cfg": cfg.section_hash("align"),
                    "base": models.base,
                    "models": digest("finetune"),
                    "data": digest("dataset"),
                    "baselines": cfg.evaluate.baselines,
                },
                self.stage_align,
            ),
            ("report", lambda: {"eval": digest("evaluate"), "align": digest("align")}, self.stage_report),
        ]

    def validate(self) -> list[str]:
        """Check the whole configuration before the run writes a file or pays for a request: the
        run directory is ours (or new), cultures exist, model specs resolve (a local base model's
        directory exists), the evaluation data and tasks are there, seeds are selected. Returns the
        culture names; DataError / UnknownNameError otherwise."""
        from culturellm.cultures import get_culture
        from culturellm.evaluate.data import resolve_data_dir
        from culturellm.evaluate.tasks import list_tasks
        from culturellm.wvs import load_questions

        cfg = self.config
        ours = ("manifest.json",) if _old_run_dir(self.run_dir) else ()
        check_claim(self.run_dir, "run", force=self.force, ours=ours)
        cultures = self._expand_cultures(cfg.cultures)
        self.cultures = [get_culture(c) for c in cultures]
        check_models(cfg)
        if not cfg.augment.select(load_questions()):
            raise DataError("augment: no seed question selected (check augment.questions / limit_seeds)")
        root = resolve_data_dir(cfg.evaluate.data_dir)
        for c in self.cultures:
            tasks = list_tasks(culture=c.name, names=cfg.evaluate.tasks)
            if not tasks:
                raise DataError(f"no evaluation task for culture '{c.name}' (see `culturellm tasks`)")
            for t in tasks:
                if not (root / t.path).is_file():
                    raise DataError(f"{root / t.path}: file not found for task {t.name} (data dir {root})")
        return cultures

    @staticmethod
    def _expand_cultures(names: list[str]) -> list[str]:
        from culturellm.cultures import list_cultures

        if any(n.lower() == "all" for n in names):
            return [c.name for c in list_cultures()]
        if not names:
            raise CultureLLMError("no culture given: use --culture NAME (see `culturellm cultures`)")
        return list(dict.fromkeys(n.lower() for n in names))

    def _input_hashes(self) -> dict[str, str]:
        from culturellm.paths import package_data

        return {
            "questions": sha256_file(package_data("wvs_questions.jsonl"))[:16],
            "seeds": stable_hash([self._seed_rows(c) for c in self.cultures]),
        }

    @staticmethod
    def _seed_rows(culture) -> list[dict[str, Any]]:
        from culturellm.wvs import seed_set

        return [s.to_dict() for s in seed_set(culture)]

    def stage_seeds(self) -> StageResult:
        outs, counts = [], {}
        for c in self.cultures:
            rows = self._seed_rows(c)
            path = self.layout.seeds(c.name)
            write_jsonl(path, rows)
            outs.append(path)
            counts[c.name] = len(rows)
        return StageResult(outs, {"questions": counts})

    def stage_augment(self) -> StageResult:
        from culturellm.augment import augment
        from culturellm.embed import load_embedder
        from culturellm.wvs import load_questions

        cfg = self.config
        manifest = augment(
            cfg.augment.select(load_questions()),
            self._model(cfg.models.augmenter),
            load_embedder(cfg.models.embedder),
            cfg.augment,
            self.layout.augment_dir,
        )
        usage = {k: manifest.get(k) for k in ("llm_requests", "tokens", "cost_usd", "cache_hits")}
        return StageResult([self.layout.augmented], manifest.get("counts", {}), usage)

    def _training_sets(self) -> list[str]:
        names = [c.name for c in self.cultures]
        return [*names, ONE] if len(names) > 1 else names

    def stage_dataset(self) -> StageResult:
        from culturellm.augment import build_training_set

        outs, counts = [], {}
        opts = self.config.dataset.model_dump()
        if opts["target"] == "distribution" and self.config.finetune.backend == "openai":
            self.console.print("[yellow]the OpenAI fine-tuning API takes hard labels: target 'sampled'[/]")
            opts["target"] = "sampled"
        for name in self._training_sets():
            cultures = [c.name for c in self.cultures] if name == ONE else [name]
            path = self.layout.train(name)
            manifest = build_training_set(cultures, self.layout.augmented, path, **opts)
            outs += [path, self.layout.split(name)]
            counts[name] = manifest.get("counts")
        return StageResult(outs, counts)

    def stage_finetune(self) -> StageResult:
        from culturellm.finetune import finetune

        cfg, lay = self.config, self.layout
        outs, counts = [], {}
        for name in self._training_sets():
            ref = finetune(
                lay.train(name), cfg.models.base, lay.model_dir(name), cfg.finetune, progress=self.progress
            )
            outs += [ref, lay.adapter(name)]
            if lay.train_summary(name).exists():
                counts[name] = json.loads(lay.train_summary(name).read_text())
        return StageResult(outs, counts)

    def variants(self, culture: str):
        """The models compared for one culture: base, base + culture prompt, its CultureLLM, One."""
        from functools import partial

        from culturellm.evaluate import ModelVariant

        models = self.config.models
        variant = partial(ModelVariant, base_url=models.base_url, cache=models.cache, timeout=models.timeout)
        out = [variant("base", models.base, None)]
        if self.config.evaluate.baselines:
            out.append(variant("base+culture-prompt", models.base, "culture"))
        out.append(variant("culturellm", str(self.layout.model_dir(culture)), "culture"))
        if len(self.cultures) > 1:
            out.append(variant("culturellm-one", str(self.layout.model_dir(ONE)), "culture"))
        return out

    def stage_evaluate(self) -> StageResult:
        from culturellm.evaluate import evaluate

        outs, counts = [], {}
        for c in self.cultures:
            rows = evaluate(
                self.variants(c.name),
                [c.name],
                self.config.evaluate,
                self.layout.eval_dir(c.name),
                progress=self.progress,
                report=False,
            )
            outs.append(self.layout.results(c.name))
            counts[c.name] = len(rows)
        if self.config.evaluate.general:
            outs.append(self.stage_general())
        return StageResult(outs, {"result_rows": counts})

    def stage_general(self) -> Path:
        """The forgetting check ([evaluate] general): the base model and every culture model on the
        general tasks; RUN/general.jsonl, which the report reads."""
        from culturellm.evaluate import ModelVariant
        from culturellm.evaluate.general import GENERAL, GeneralOptions, run_general

        ev = self.config.evaluate
        names = [c.name for c in self.cultures] + ([ONE] if len(self.cultures) > 1 else [])
        variants = [ModelVariant("base", self.config.models.base)]
        variants += [ModelVariant(f"culturellm-{n}", str(self.layout.model_dir(n))) for n in names]
        run_general(variants, ev.general or [], self.run_dir, GeneralOptions(ev.general_limit, ev.seed))
        return self.run_dir / GENERAL

    def stage_align(self) -> StageResult:
        from culturellm.evaluate.align import align_all, run_job

        outs = []
        for c in self.cultures:
            jobs = []
            for v in self.variants(c.name):
                split = self.layout.split(ONE if v.label == "culturellm-one" else c.name)
                jobs.append(run_job(v, split, self.config.align))
            align_all(jobs, c.name, self.layout.eval_dir(c.name))
            outs.append(self.layout.align(c.name))
        if len(self.cultures) > 1:
            outs.append(self._align_matrix())
        return StageResult(outs)

    def _align_matrix(self) -> Path:
        """Base, every culture model and CultureLLM-One x every culture, on the held-out items (the
        split is the same for every training set of a run): eval/align_matrix.json."""
        from culturellm.evaluate import ModelVariant
        from culturellm.evaluate.align import heldout_items
        from culturellm.evaluate.matrix import align_matrix

        lay, names = self.layout, [c.name for c in self.cultures]
        split = lay.split(names[0])
        use_split = heldout_items(split) >= self.config.align.min_heldout
        variants = [ModelVariant("base", self.config.models.base, None)]
        variants += [ModelVariant(f"culturellm-{c}", str(lay.model_dir(c)), "culture") for c in names]
        variants.append(ModelVariant("culturellm-one", str(lay.model_dir(ONE)), "culture"))
        own: dict[str, str | None] = {f"culturellm-{c}": c for c in names}
        own.update({"base": None, "culturellm-one": None})  # no culture of their own
        matrix = align_matrix(variants, names, split if use_split else None, own=own)
        write_json(lay.align_matrix, matrix)
        return lay.align_matrix

    def stage_report(self) -> StageResult:
        from culturellm.evaluate import write_report

        report = write_report([self.layout.results(c.name) for c in self.cultures], self.run_dir)
        if self.layout.align_matrix.exists():
            from culturellm.evaluate.matrix import plot_matrix, report_section

            matrix = json.loads(self.layout.align_matrix.read_text())
            png = plot_matrix(matrix, self.layout.plots_dir / "align_matrix.png")
            atomic_write_text(report, report.read_text(encoding="utf-8") + report_section(matrix, png))
        pngs = self.layout.plots()
        return StageResult([report, *pngs], {"plots": len(pngs)})


def check_models(cfg: RunConfig) -> None:
    """Every model the run will use, built from its spec without loading weights: the base (which
    must have local weights unless fine-tuned with the openai backend), the augmenter, the judge and
    the embedder. DataError naming the config field otherwise."""
    from culturellm.embed import check_embedder
    from culturellm.llm import parse_spec

    check_model_spec(cfg.models.base, "models.base")
    check_model_spec(cfg.models.augmenter, "models.augmenter")
    if cfg.augment.judge:
        check_model_spec(cfg.augment.judge, "augment.judge")
    if cfg.finetune.backend == "local" and not parse_spec(cfg.models.base).local:
        raise DataError(
            f"models.base = {cfg.models.base!r}: has no local weights to fine-tune (use a local model, "
            'or finetune.backend = "openai" for an openai: model)'
        )
    try:
        check_embedder(cfg.models.embedder)
    except CultureLLMError as e:
        raise DataError(f"models.embedder = {cfg.models.embedder!r}: {e}") from None


def check_model_spec(spec: str, field: str) -> None:
    """A model spec parses (culturellm.llm.parse_spec) without loading anything, and a local model's
    weights directory exists."""
    from culturellm.llm import parse_spec

    try:
        parsed = parse_spec(spec)
    except CultureLLMError as e:
        raise DataError(f"{field} = {spec!r}: {e}") from None
    if parsed.path is not None and not Path(parsed.path).expanduser().is_dir():
        raise DataError(f"{field} = {spec!r}: {parsed.path} is not a model directory")


def summary_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Per culture and model: mean macro-F1 over tasks, and WVS alignment (for the closing table)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    layout = RunLayout(run_dir)
    for culture in layout.evaluated_cultures():
        for r in read_jsonl(layout.results(culture)):
            d = rows.setdefault((culture, r["model"]), {"culture": culture, "model": r["model"], "f1": []})
            if isinstance(r.get("macro_f1"), int | float):
                d["f1"].append(r["macro_f1"])
        al = layout.align(culture)
        if al.exists():
            for r in read_jsonl(al):
                d = rows.setdefault(
                    (culture, r["model"]), {"culture": culture, "model": r["model"], "f1": []}
                )
                d["majority_agreement"] = r.get("majority_agreement")
                d["one_minus_jsd"] = r.get("one_minus_jsd")
                d["items"] = r.get("items")
            _reference_rows(rows, culture, list(read_jsonl(al)))
    out = []
    for d in rows.values():
        f1 = d.pop("f1")
        d["tasks"] = len(f1)
        d["mean_macro_f1"] = sum(f1) / len(f1) if f1 else None
        out.append(d)
    return out


def _reference_rows(
    rows: dict[tuple[str, str], dict[str, Any]], culture: str, align_rows: list[dict]
) -> None:
    """Summary rows for the uniform answer and another culture's survey on the items of the run's
    alignment (those of its culture model: held-out items when there were enough)."""
    ref = next((r for r in align_rows if r.get("model") == "culturellm" and r.get("uniform")), None)
    if ref is None:
        return
    refs = [("reference: uniform answer", ref["uniform"])]
    contrast = ref.get("contrast") or {}
    if contrast.get("n_questions"):
        refs.append((f"reference: {contrast['culture']} survey", contrast))
    for label, r in refs:
        rows[(culture, label)] = {
            "culture": culture,
            "model": label,
            "f1": [],
            "majority_agreement": r.get("majority_agreement"),
            "one_minus_jsd": r.get("one_minus_jsd"),
            "items": ref.get("items"),
        }


def _without_credentials(cfg: RunConfig) -> RunConfig:
    """The config as stored in the run directory: no user name or password in the base URL."""
    from culturellm.llm.openai_backend import redact_url

    url = cfg.models.base_url
    if not url or redact_url(url) == url:
        return cfg
    return cfg.model_copy(update={"models": cfg.models.model_copy(update={"base_url": redact_url(url)})})
