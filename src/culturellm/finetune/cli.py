"""CLI commands of culturellm.finetune: `culturellm finetune`.

Also the entry point of `python -m culturellm.finetune` (same options), which is what
`accelerate launch -m culturellm.finetune ...` and `torchrun -m culturellm.finetune ...` run.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from culturellm.config_cli import Progress, config_command
from culturellm.finetune.config import FinetuneConfig

HELP = """Fine-tune a model on culture training data (OpenAI chat JSONL from `culturellm dataset`).

Local (default): LoRA with PEFT through TRL's SFTTrainer, loss on the assistant answer only; writes a
PEFT adapter, the tokenizer, a model card and DIR/culturellm.json (a model spec for chat/serve/evaluate).
--backend openai: validates the data, estimates the cost, uploads it and runs an OpenAI fine-tuning job.
"""


@config_command(FinetuneConfig, "finetune")
def finetune_command(
    config: FinetuneConfig,
    data: list[Path] = typer.Option(
        ..., "--data", "-d", help="training JSONL (repeat for several; concatenated, e.g. CultureLLM-One)"
    ),
    base: str = typer.Option(
        "bundled", "--base", "-b", help="base model spec (bundled, gemma3-270m, hf:DIR; OpenAI model name)"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="output directory (required unless --dry-run)"),
    culture: list[str] | None = typer.Option(
        None, "--culture", "-c", help="culture(s) for the model card (default: read from system prompts)"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="validate the data and estimate tokens/cost; train nothing"
    ),
    progress: Progress = True,
) -> None:
    from rich.console import Console

    from culturellm.errors import CultureLLMError

    console = Console(stderr=True)
    cultures = _cultures(culture)
    if dry_run:
        from culturellm.finetune.backends import estimate
        from culturellm.finetune.data import load_records
        from culturellm.finetune.estimate import print_estimate

        records = load_records(data)
        print_estimate(estimate(records, base, config), Console())
        return
    if out is None:
        raise CultureLLMError("--out DIR is required (where the adapter and culturellm.json are written)")
    from culturellm.finetune.api import finetune

    ref = finetune(data, base, out, config, progress=progress, cultures=cultures, console=console)
    if int(os.environ.get("RANK", "0")) == 0:  # once, not once per process under accelerate/torchrun
        print(ref)


def _cultures(names: list[str] | None) -> list[str] | None:
    """--culture NAME (repeatable or comma-separated); 'all' means every culture in the data."""
    if not names:
        return None
    flat = [n.strip().lower() for item in names for n in item.split(",") if n.strip()]
    if any(n == "all" for n in flat):
        return None  # CultureLLM-One: the cultures are read from the data's system prompts
    try:
        from culturellm.cultures import get_culture
    except ImportError:
        return flat
    return [get_culture(n).name for n in flat]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("finetune", help=HELP)(finetune_command)


def main() -> None:
    """`python -m culturellm.finetune` (under accelerate launch / torchrun): the finetune command alone."""
    from culturellm.cli_errors import run_app

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(help=HELP)(finetune_command)
    run_app(app)
