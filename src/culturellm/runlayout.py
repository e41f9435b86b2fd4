"""RunLayout: every path of a run directory, named once (docs/architecture.md, "A run directory")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from culturellm.augment.dataset import split_manifest_path
from culturellm.evaluate.report import PLOTS, REPORT

ONE = "one"  # name of the CultureLLM-One training set / model


@dataclass(frozen=True)
class RunLayout:
    """runs/<name>/: config.toml, manifest.json, seeds/, augment/, data/, models/, eval/, report."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

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
        return self.augment_dir / "augmented.jsonl"

    def train(self, name: str) -> Path:
        """Training set of a culture (or ONE): data/<name>/train.jsonl."""
        return self.root / "data" / name / "train.jsonl"

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
        return self.eval_dir(culture) / "results.jsonl"

    def align(self, culture: str) -> Path:
        return self.eval_dir(culture) / "align.jsonl"

    @property
    def align_matrix(self) -> Path:
        """Model x culture alignment (several cultures): eval/align_matrix.json."""
        return self.root / "eval" / "align_matrix.json"

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
        return sorted(p.parent.name for p in self.root.glob("eval/*/results.jsonl"))

    def rel(self, path: Path) -> str:
        """A path as recorded in manifest.json: relative to the run directory."""
        return str(path.relative_to(self.root))
