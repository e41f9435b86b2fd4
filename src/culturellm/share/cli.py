"""`culturellm push PATH --repo ORG/NAME`: publish a culture model or a training set on the Hub."""

from __future__ import annotations

from pathlib import Path

import typer

PUSH_HELP = (
    "Publish a culture model directory (PEFT adapter, culturellm.json, model card with results) or a "
    "training set (`culturellm dataset` output: Parquet, split manifest, dataset card) on the Hugging "
    "Face Hub. Token: HF_TOKEN or `hf auth login`."
)


def register(app: typer.Typer) -> None:
    app.command("push", help=PUSH_HELP)(push_cmd)


def push_cmd(
    path: Path = typer.Argument(
        ..., help="a culture model directory, or a training set (train.jsonl or its folder)"
    ),
    repo: str = typer.Option(..., "--repo", help="the Hub repository ORG/NAME (created when missing)"),
    results: Path | None = typer.Option(
        None, "--results", help="a run directory whose evaluation and alignment results go in the card"
    ),
    private: bool = typer.Option(False, "--private", help="create the repository private"),
    revision: str = typer.Option(
        "main", "--revision", "--branch", help="branch to commit to (created when missing)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the card and the file list; upload nothing"),
) -> None:
    from rich.console import Console

    from culturellm.share.push import push

    plan = push(path, repo, results=results, private=private, revision=revision, dry_run=dry_run)
    out = Console(markup=False, highlight=False, emoji=False, soft_wrap=True)
    if dry_run:
        out.print(plan.card)
        out.print(f"would upload to {plan.repo_type} repo {plan.repo} (revision {plan.revision}):")
        for name, size in plan.listed:
            out.print(f"  {name}  {size} bytes")
        return
    out.print(f"pushed {len(plan.listed)} files to {plan.repo} at {plan.revision}: commit {plan.commit}")
