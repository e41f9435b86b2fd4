"""The `culturellm` command. Thin: each area registers its commands from its own `cli` module;
commands parse arguments, call the Python API and print with rich."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from culturellm import __version__
from culturellm.errors import CultureLLMError

app = typer.Typer(
    name="culturellm",
    help="Make LLMs culturally aware at low cost: WVS seeds -> augmentation -> fine-tuning -> evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

# Each module defines `register(app: typer.Typer) -> None`.
COMMAND_MODULES = (
    "culturellm.wvs.cli",
    "culturellm.llm.cli",
    "culturellm.augment.cli",
    "culturellm.finetune.cli",
    "culturellm.evaluate.cli",
    "culturellm.pipeline_cli",
)


def _version(value: bool) -> None:
    if value:
        print(f"culturellm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print version."),
) -> None:
    """culturellm command line."""


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def fail(message: str) -> None:
    """Print one clear line on stderr and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(2)


def main() -> None:
    try:
        app(standalone_mode=True)
    except CultureLLMError as e:
        fail(str(e))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
