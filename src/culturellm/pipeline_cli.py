"""CLI commands of culturellm.pipeline (`culturellm run`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `run` to the root app."""
