"""CLI commands of culturellm.finetune: `culturellm finetune`.

Also the entry point of `python -m culturellm.finetune` (same options), which is what
`accelerate launch -m culturellm.finetune ...` and `torchrun -m culturellm.finetune ...` run.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from culturellm.finetune.config import (
    Backend,
    FinetuneConfig,
    FinetuneDevice,
    FinetuneDtype,
    Preset,
    Quantize,
    ReportTo,
)
from culturellm.settings import field_help, flags, load_toml, pick, resolve

HELP = """Fine-tune a model on culture training data (OpenAI chat JSONL from `culturellm dataset`).

Local (default): LoRA with PEFT through TRL's SFTTrainer, loss on the assistant answer only; writes a
PEFT adapter, the tokenizer, a model card and DIR/culturellm.json (a model spec for chat/serve/evaluate).
--backend openai: validates the data, estimates the cost, uploads it and runs an OpenAI fine-tuning job.
"""


def finetune_command(
    data: list[Path] = typer.Option(
        ..., "--data", "-d", help="training JSONL (repeat for several; concatenated, e.g. CultureLLM-One)"
    ),
    base: str = typer.Option(
        "bundled", "--base", "-b", help="base model spec (bundled, gemma3-270m, hf:DIR; OpenAI model name)"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="output directory (required unless --dry-run)"),
    config_file: Path | None = typer.Option(
        None, "--config", help="a run TOML: its [finetune] table (flags override it)"
    ),
    preset: Preset | None = typer.Option(
        None, "--preset", help="cpu-small (bundled model on CPU, default), paper, paper-qlora (4-bit), smoke"
    ),
    backend: Backend | None = typer.Option(
        None, "--backend", help="local (TRL+PEFT LoRA, default) or openai"
    ),
    culture: list[str] | None = typer.Option(
        None, "--culture", "-c", help="culture(s) for the model card (default: read from system prompts)"
    ),
    epochs: float | None = typer.Option(None, "--epochs", help=field_help(FinetuneConfig, "epochs")),
    lr: float | None = typer.Option(None, "--lr", help=field_help(FinetuneConfig, "lr")),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help=field_help(FinetuneConfig, "batch_size")
    ),
    grad_accum: int | None = typer.Option(
        None, "--grad-accum", help=field_help(FinetuneConfig, "grad_accum")
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help=field_help(FinetuneConfig, "max_steps")),
    max_length: int | None = typer.Option(
        None, "--max-length", help=field_help(FinetuneConfig, "max_length")
    ),
    lora_r: int | None = typer.Option(None, "--lora-r", help="LoRA rank"),
    lora_alpha: int | None = typer.Option(None, "--lora-alpha", help="LoRA alpha"),
    dtype: FinetuneDtype | None = typer.Option(None, "--dtype", help=field_help(FinetuneConfig, "dtype")),
    device: FinetuneDevice | None = typer.Option(None, "--device", help=field_help(FinetuneConfig, "device")),
    seed: int | None = typer.Option(None, "--seed", help="random seed (default: 0)"),
    quantize: Quantize | None = typer.Option(
        None, "--quantize", help="train LoRA on a bitsandbytes-quantised base (QLoRA)"
    ),
    report_to: ReportTo | None = typer.Option(
        None, "--report-to", help="training tracker (TensorBoard files in DIR/logs)"
    ),
    save_steps: int | None = typer.Option(
        None, "--save-steps", help=field_help(FinetuneConfig, "save_steps")
    ),
    merge: bool | None = typer.Option(None, "--merge/--no-merge", help=field_help(FinetuneConfig, "merge")),
    keep_checkpoints: bool | None = typer.Option(
        None, "--keep-checkpoints/--no-keep-checkpoints", help="keep DIR/checkpoints (for a later --resume)"
    ),
    resume: bool | None = typer.Option(
        None, "--resume/--no-resume", help="continue from DIR's last checkpoint even if options changed"
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible URL (openai backend)"),
    price_per_mtok: float | None = typer.Option(
        None, "--price-per-mtok", help="training price, USD per 1M tokens (openai backend)"
    ),
    poll_interval: float | None = typer.Option(
        None, "--poll-interval", help="seconds between job status polls (openai backend; default 10)"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="validate the data and estimate tokens/cost; train nothing"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    from rich.console import Console

    from culturellm.errors import CultureLLMError

    console = Console(stderr=True)
    cultures = _cultures(culture)
    given = pick(FinetuneConfig, locals())
    toml = load_toml(config_file, "finetune") if config_file else None
    config = resolve(FinetuneConfig, toml, flags(given))
    if dry_run:
        from culturellm.finetune.data import load_records
        from culturellm.finetune.estimate import estimate, print_estimate

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
