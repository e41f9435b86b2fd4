"""RunLayout: every path of a run directory, named once (docs/architecture.md, "A run directory").

The file names are written here once; the stages and the commands that write one of these files
outside a run (`culturellm augment --out`, `evaluate --out`, ...) import them from here. This module
imports nothing of culturellm.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ONE = "one"  # name of the CultureLLM-One training set / model
MANIFEST = "manifest.json"  # a run's and an augmentation's manifest
RECORDS = "augmented.jsonl"  # augment/: one record per variant
TRAIN = "train.jsonl"  # data/<name>/: a training set
RESULTS = "results.jsonl"  # eval/<culture>/: one row per model x task
ALIGN = "align.jsonl"  # eval/<culture>/: one summary row per model x culture
ALIGN_MATRIX = "align_matrix.json"  # eval/: model x culture alignment
GENERAL = "general.jsonl"  # the forgetting check's rows
REPORT = "report.md"
PLOTS = "plots"


def split_manifest_path(out: Path | str) -> Path:
    """`train.jsonl` -> `train.manifest.json` (where the split and counts are written)."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".manifest.json")


@dataclass(frozen=True)
class RunLayout:
    """runs/<name>/: config.toml, manifest.json, seeds/, augment/, data/, models/, eval/, report."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def push_record(self) -> Path:
        """What the push stage published: repo -> commit (culturellm.share.runpush)."""
        return self.root / "push.json"

    def seeds(self, culture: str) -> Path:
        return self.root / "seeds" / f"{culture}.jsonl"

    @property
    def augment_dir(self) -> Path:
        return self.root / "augment"

    @property
    def augmented(self) -> Path:
        return self.augment_dir / RECORDS

    def train(self, name: str) -> Path:
        """Training set of a culture (or ONE): data/<name>/train.jsonl."""
        return self.root / "data" / name / TRAIN

    def split(self, name: str) -> Path:
        """Its split and counts: data/<name>/train.manifest.json."""
        return split_manifest_path(self.train(name))

    def model_dir(self, name: str) -> Path:
        return self.root / "models" / name

    def adapter(self, name: str) -> Path:
        return self.model_dir(name) / "adapter_model.safetensors"

    def train_summary(self, name: str) -> Path:
        return self.model_dir(name) / "train_summary.json"

    def eval_dir(self, culture: str) -> Path:
        return self.root / "eval" / culture

    def results(self, culture: str) -> Path:
        return self.eval_dir(culture) / RESULTS

    def align(self, culture: str) -> Path:
        return self.eval_dir(culture) / ALIGN

    @property
    def align_matrix(self) -> Path:
        """Model x culture alignment (several cultures): eval/align_matrix.json."""
        return self.root / "eval" / ALIGN_MATRIX

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def plots_dir(self) -> Path:
        return self.root / PLOTS

    def plots(self) -> list[Path]:
        return sorted(self.plots_dir.glob("*.png"))

    def evaluated_cultures(self) -> list[str]:
        """Cultures with a results.jsonl, sorted."""
        return sorted(p.parent.name for p in self.root.glob(f"eval/*/{RESULTS}"))

    def rel(self, path: Path) -> str:
        """A path as recorded in manifest.json: relative to the run directory."""
        return str(path.relative_to(self.root))
