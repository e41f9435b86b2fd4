"""The CLI's one error printer. Errors caused by input or the environment (CultureLLMError, OSError,
UnicodeDecodeError, pydantic ValidationError, sqlite3.DatabaseError) become one line of plain text on
stderr and exit code 2; anything else is a bug in culturellm: exit code 1, a "please report" line, and
the traceback written to a log file (platformdirs' user log directory), not to the terminal.

Messages are printed as text, never as Rich markup: a file or culture name holding `[/x]` or `:100:`
prints as written."""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text

from culturellm.errors import describe_error, one_line

err_console = Console(stderr=True, markup=False, emoji=False, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: <message>` as one line of text on stderr and exit with `code` (2: bad input)."""
    err_console.print(Text.assemble(("error: ", "bold red"), one_line(message)), soft_wrap=True)
    raise SystemExit(code)


def write_crash_log(exc: BaseException) -> str:
    """Write the traceback to a new log file; returns where it went (or why it could not be written)."""
    from culturellm import __version__
    from culturellm.paths import log_dir

    command = " ".join(sys.argv[1:2])  # only the command name: option values may hold secrets
    text = f"culturellm {__version__}, command: {command}\n" + "".join(traceback.format_exception(exc))
    try:
        path = log_dir() / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        return f"(the traceback could not be written to a log file: {e})"
    return f"traceback in {path}"


def report_bug(exc: BaseException) -> NoReturn:
    where = write_crash_log(exc)
    fail(
        f"internal error: {type(exc).__name__}: {exc}. This is a bug in culturellm, please report it "
        f"with the log file; {where}",
        code=1,
    )


def run_app(app: Any) -> NoReturn:
    """Run a typer app, turning every exception into one printed line and an exit code. Click's usage
    errors (unknown option, a value outside a choice, a missing option) are one line too, exit 2."""
    import typer

    try:
        code = typer.main.get_command(app).main(standalone_mode=False)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except typer.TyperException as e:  # click's exceptions (Typer vendors click)
        usage_error(e)
    except Exception as e:
        message = describe_error(e)
        if message is None:
            report_bug(e)
        fail(message, getattr(e, "exit_code", 2))  # ServerError: 1
    sys.exit(code if isinstance(code, int) else 0)


def usage_error(e: Exception) -> NoReturn:
    """A click usage error as one line naming the option, with where to read the help."""
    if type(e).__name__ == "NoArgsIsHelpError":  # a group run without a command: print its help
        e.show()  # type: ignore[attr-defined]
        sys.exit(0)
    message = e.format_message() if hasattr(e, "format_message") else str(e)
    message = message.replace("Value error, ", "")
    ctx = getattr(e, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    fail(message + hint, code=int(getattr(e, "exit_code", 2) or 2))
