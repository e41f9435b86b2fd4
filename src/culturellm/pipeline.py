"""`culturellm run`: seeds -> augment -> training sets -> fine-tune -> evaluate -> align -> report.

The stages are a table (`culturellm.stages.STAGES`: what each reads and writes, its key, its body);
`Pipeline.run` walks it with one loop. Every stage writes into one run directory and records in
`manifest.json` (`culturellm.manifest`) the hash of its inputs and of its outputs. A stage whose
outputs exist and match its inputs is skipped; a stage that was killed half-way is simply run again,
and the stage functions themselves resume (augmentation per seed, fine-tuning from its last
checkpoint, evaluation per task), so a killed run loses nothing and duplicates nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from culturellm import __version__
from culturellm.config import RunConfig, save_config
from culturellm.errors import CultureLLMError, DataError
from culturellm.hashing import sha256_file, stable_hash
from culturellm.manifest import Manifest, now, old_run_dir, versions
from culturellm.outdir import check_claim, claim
from culturellm.regularfiles import check_input
from culturellm.runlayout import RunLayout
from culturellm.stages import STAGES, Run, Stage


class Pipeline:
    """One run of `culturellm run` in `run_dir`: `validate()` checks everything checkable before a
    file is written, `run()` walks the stage table."""

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
        self.stages: tuple[Stage, ...] = STAGES

    def run(self) -> dict[str, Any]:
        """Validate, claim the run directory, then every stage in order (skipped when current)."""
        run = self.validate()  # everything checkable, before anything is written or paid for
        claim(self.run_dir, "run", force=self.force, ours=self._ours())
        self.manifest = Manifest(self.layout, self.console)
        stored = self.config.without_credentials()
        save_config(stored, self.layout.config)
        m = self.manifest.data
        m["culturellm"] = __version__
        m["versions"] = versions()
        m["config"] = json.loads(stored.model_dump_json())
        m["cultures"] = run.names
        m["inputs"] = run.inputs = self._input_hashes(run)
        self.manifest.save()
        for stage in self.stages:  # every model a stage loads goes through run.access ([models])
            self._stage(stage, run)
        m["total_elapsed_s"] = round(sum(s.get("elapsed_s", 0.0) for s in m["stages"].values()), 2)
        m["finished_at"] = now()
        self.manifest.save()
        return m

    def _stage(self, stage: Stage, run: Run) -> None:
        """Run one stage unless the manifest shows it finished with the same key and outputs."""

        def digest(name: str) -> str:
            if name not in stage.reads:
                raise CultureLLMError(f"stage {stage.name}: its key reads {name!r}, not declared in reads")
            return self.manifest.output_digest(name)

        key = stable_hash(stage.key(run, digest))
        if self.manifest.stage_is_current(stage.name, key):
            self.console.print(f"[dim]• {stage.name}: up to date, skipped[/]")
            return
        self.console.print(f"[bold]• {stage.name}[/]")
        started = self.manifest.start(stage.name, key)
        t = time.monotonic()
        result = stage.run(run)
        self.manifest.finish(stage.name, key, started, time.monotonic() - t, result)

    def _ours(self) -> tuple[str, ...]:
        return ("manifest.json",) if old_run_dir(self.run_dir) else ()

    def validate(self) -> Run:
        """Check the whole configuration before the run writes a file or pays for a request: the
        run directory is ours (or new), cultures exist, model specs resolve (a local base model's
        directory exists), the evaluation data and tasks are there, seeds are selected. Returns what
        the stages see (`Run`); DataError / UnknownNameError otherwise."""
        from culturellm.cultures import get_culture
        from culturellm.evaluate.data import resolve_data_dir
        from culturellm.evaluate.tasks import list_tasks
        from culturellm.wvs import load_questions

        cfg = self.config
        check_claim(self.run_dir, "run", force=self.force, ours=self._ours())
        requested = self._expand_cultures(cfg.cultures)
        cultures = [get_culture(c) for c in requested]
        check_models(cfg)
        if not cfg.augment.select(load_questions()):
            raise DataError("augment: no seed question selected (check augment.questions / limit_seeds)")
        if cfg.augment.import_file is not None:
            from culturellm.augment.importer import check_import_filter

            if not Path(cfg.augment.import_file).is_file():
                raise DataError(f"[augment] import_file: {cfg.augment.import_file} not found")
            check_import_filter(cfg.augment.import_filter)
        root = resolve_data_dir(cfg.evaluate.data_dir)
        for c in cultures:
            tasks = list_tasks(culture=c.name, names=cfg.evaluate.tasks)
            if not tasks:
                raise DataError(f"no evaluation task for culture '{c.name}' (see `culturellm tasks`)")
            for t in tasks:
                if not (root / t.path).exists():
                    raise DataError(f"{root / t.path}: file not found for task {t.name} (data dir {root})")
                check_input(root / t.path, "jsonl")  # a FIFO or a device: one line, never read
        return Run(cfg, self.layout, cultures, requested, console=self.console, progress=self.progress)

    @staticmethod
    def _expand_cultures(names: list[str]) -> list[str]:
        from culturellm.cultures import list_cultures

        if any(n.lower() == "all" for n in names):
            return [c.name for c in list_cultures()]
        if not names:
            raise CultureLLMError("no culture given: use --culture NAME (see `culturellm cultures`)")
        return list(dict.fromkeys(n.lower() for n in names))

    @staticmethod
    def _input_hashes(run: Run) -> dict[str, str]:
        from culturellm.paths import package_data

        return {
            "questions": sha256_file(package_data("wvs_questions.jsonl"))[:16],
            "seeds": stable_hash([run.seed_rows(c) for c in run.cultures]),
        }


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
    check_training(cfg)
    if cfg.finetune.backend == "local" and not parse_spec(cfg.models.base).local:
        raise DataError(
            f"models.base = {cfg.models.base!r}: has no local weights to fine-tune (use a local model, "
            'or finetune.backend = "openai" for an openai: model)'
        )
    try:
        check_embedder(cfg.models.embedder)
    except CultureLLMError as e:
        raise DataError(f"models.embedder = {cfg.models.embedder!r}: {e}") from None


def check_training(cfg: RunConfig) -> None:
    """The fine-tuning backend is registered and takes the labels and weights the dataset gives
    (culturellm.finetune.backends.check_labels / check_weights: soft labels with a hard-label backend,
    or weights with a backend that takes none, are an error)."""
    from culturellm.dataset.targets import get_target
    from culturellm.finetune.backends import check_labels, check_weights, get_backend

    try:
        get_backend(cfg.finetune.backend)
    except CultureLLMError as e:
        raise DataError(f"finetune.backend = {cfg.finetune.backend!r}: {e}") from None
    where = f"dataset.target = {cfg.dataset.target!r} with finetune.backend = {cfg.finetune.backend!r}"
    check_labels(cfg.finetune.backend, get_target(cfg.dataset.target).soft, where, "a soft-label target")
    where = f"dataset.weight = {cfg.dataset.weight!r} with finetune.backend = {cfg.finetune.backend!r}"
    check_weights(cfg.finetune.backend, cfg.dataset.weight != "none", where)


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
