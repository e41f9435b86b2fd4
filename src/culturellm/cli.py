"""The `culturellm` command. Thin: each area registers its commands from its own `cli` module;
commands parse arguments, call the Python API and print with rich."""

from __future__ import annotations

import importlib

import typer

from culturellm import __version__
from culturellm.cli_errors import err_console, fail, run_app
from culturellm.quiet import quiet_third_party

app = typer.Typer(
    name="culturellm",
    help="Make LLMs culturally aware at low cost: WVS seeds -> augmentation -> fine-tuning -> evaluation.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: wraps at 80 columns, never cuts an option off
)

# Each module defines `register(app: typer.Typer) -> None`.
COMMAND_MODULES = (
    "culturellm.survey_cli",
    "culturellm.llm.cli",
    "culturellm.serve.cli",
    "culturellm.augment.cli",
    "culturellm.dataset.cli",
    "culturellm.review.cli",
    "culturellm.finetune.cli",
    "culturellm.evaluate.cli",
    "culturellm.pipeline_cli",
    "culturellm.ablate",
    "culturellm.share.cli",
)


def _version(value: bool) -> None:
    if value:
        print(f"culturellm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print version."),
    verbose: bool = typer.Option(
        False, "--verbose", help="Also show the progress bars, log lines and warnings of the libraries used."
    ),
) -> None:
    """culturellm command line."""
    quiet_third_party(verbose)


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


__all__ = ["app", "err_console", "fail", "main"]


def main() -> None:
    """Entry point: one error printer for every command (see culturellm.cli_errors)."""
    from culturellm.dirlock import release_all

    try:
        run_app(app)
    finally:
        release_all()  # the output directories this command claimed (an in-process caller goes on)


if __name__ == "__main__":
    main()
