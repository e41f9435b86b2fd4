"""`culturellm review AUG_DIR` (serve the review page) and `culturellm review AUG_DIR --stats`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from culturellm.config_cli import server_key

REVIEW_HELP = """Review an augmented set as the paper's human study did: a local web page (127.0.0.1) shows
each sample beside its seed; reviewers rate it same meaning / changed meaning / broken (keys 1 2 3).
Ratings are appended to AUG_DIR/reviews.jsonl. --stats prints per-step acceptance by reviewers and
agreement between reviewers (Krippendorff's alpha, Cohen's kappa)."""


def review_command(
    aug_dir: Path = typer.Argument(..., help="augmentation directory (holds augmented.jsonl)"),
    stats: bool = typer.Option(False, "--stats", help="print acceptance and agreement, do not serve"),
    as_json: bool = typer.Option(False, "--json", help="with --stats: print JSON"),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="port to bind"),
    reviewer: str | None = typer.Option(None, "--reviewer", help="reviewer name filled into the page"),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="interface to bind (beyond 127.0.0.1 needs --api-key)"
    ),
    api_key: str | None = server_key(
        "require 'Authorization: Bearer KEY' on /api (the page: open it as http://HOST:PORT/#key=KEY)"
    ),
) -> None:
    from culturellm.review.store import augmented_path, check_reviewer

    augmented_path(aug_dir)  # clear error before anything else
    if stats:
        _print_stats(aug_dir, as_json)
        return
    if reviewer is not None:
        check_reviewer(reviewer)
    from culturellm.review.app import serve

    serve(aug_dir, port=port, reviewer=reviewer, host=host, api_key=api_key or None)


def _print_stats(aug_dir: Path, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from culturellm.review.store import RATINGS, stats

    s = stats(aug_dir)
    if as_json:
        print(json.dumps(s, indent=2))
        return
    console = Console(markup=False, emoji=False, highlight=False)  # names are text, never Rich markup
    table = Table(title=Text(f"review of {aug_dir}: acceptance by reviewers"))
    for col in ("step", "samples", "reviewed", "ratings", *RATINGS, "acceptance"):
        table.add_column(col)
    for step, d in s["steps"].items():
        acc = "-" if d["acceptance"] is None else f"{d['acceptance']:.0%}"
        table.add_row(Text(step), *(str(d[k]) for k in ("samples", "reviewed", "ratings", *RATINGS)), acc)
    console.print(table)
    reviewers = ", ".join(f"{r} ({n})" for r, n in s["reviewers"].items()) or "none yet"
    console.print(f"reviewers (ratings): {reviewers}", soft_wrap=True)
    a = s["agreement"]
    alpha = a["krippendorff_alpha"]
    console.print(
        f"agreement on {a['items_rated_by_two_or_more']} samples rated by two or more reviewers: "
        f"Krippendorff's alpha (nominal) {'-' if alpha is None else alpha}",
        soft_wrap=True,
    )
    for pair, d in a["cohen_kappa"].items():
        console.print(f"  Cohen's kappa {pair}: {d['kappa']} on {d['items']} samples", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("review", help=REVIEW_HELP)(review_command)
