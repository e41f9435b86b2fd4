"""CLI command of culturellm.dataset: `culturellm dataset`."""

from __future__ import annotations

from pathlib import Path

import typer

from culturellm.config_cli import config_command
from culturellm.dataset.config import DatasetConfig

DATASET_HELP = """Turn augmented questions into an OpenAI-format chat fine-tuning JSONL for one or more
cultures (several / 'all' = CultureLLM-One). Writes OUT and OUT's .manifest.json (split, counts, sha256)."""


@config_command(DatasetConfig, "dataset")
def dataset_command(
    config: DatasetConfig,
    culture: list[str] = typer.Option(..., "--culture", "-c", help="culture name (repeat) or 'all'"),
    augmented: Path = typer.Option(
        ..., "--augmented", "-a", help="augmented.jsonl from `culturellm augment`"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="output training JSONL"),
    force: bool = typer.Option(False, "--force", help="replace an --out file culturellm did not write"),
) -> None:
    from rich.console import Console

    from culturellm.dataset import build_training_set, split_manifest_path

    manifest = build_training_set(culture, augmented, out, config, force=force)
    c = manifest["counts"]
    per = ", ".join(f"{k} {v}" for k, v in c["per_culture"].items())
    Console().print(
        f"wrote {out}: {c['records']} records ({per}); {c['train_questions']} training questions, "
        f"{c['heldout_questions']} held-out questions, {c['heldout_variants']} held-out variants; "
        f"split in {split_manifest_path(out)}"
    )
    if manifest.get("review"):
        Console().print(f"left out {len(manifest['review']['dropped'])} samples that reviewers rejected")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("dataset", help=DATASET_HELP)(dataset_command)
