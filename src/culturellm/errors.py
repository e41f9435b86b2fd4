"""User-facing errors: the CLI prints them as one line on stderr and exits with code 2."""

from __future__ import annotations


class CultureLLMError(Exception):
    """An error caused by the user's input (a file, a field, a name), with a message that says what to fix."""


class DataError(CultureLLMError):
    """A data file is missing, unreadable or malformed. The message names the file (and line/field)."""


class ServerError(CultureLLMError):
    """A remote server failed (5xx, a dropped connection) although the input was fine: one line, exit
    code 1 (`exit_code`), since retrying later may succeed."""

    exit_code = 1


class UnknownNameError(CultureLLMError):
    """An unknown culture, task, model spec, ... The message lists the known names."""


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) so a message is printed on exactly one line."""
    return " ".join(str(text).split())


def validation_message(exc: Exception, source: str | None = None) -> str:
    """One line from a pydantic ValidationError: the source (file or option group), then up to three
    fields with pydantic's reason and the value that was given."""
    errors = exc.errors()  # type: ignore[attr-defined]
    parts = []
    for err in errors[:3]:
        field = ".".join(str(x) for x in err.get("loc", ())) or "(root)"
        given = repr(err.get("input"))
        given = given if len(given) <= 60 else given[:57] + "..."
        why = str(err.get("msg")).removeprefix("Value error, ")
        parts.append(f"field '{field}': {why} (got {given})")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    prefix = f"{source}: " if source else f"invalid {getattr(exc, 'title', 'value')}: "
    return one_line(prefix + "; ".join(parts) + more)


def _is(exc: BaseException, module: str, name: str) -> bool:
    """isinstance without importing `module` (it cannot have raised if it was never imported)."""
    import sys

    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return isinstance(cls, type) and isinstance(exc, cls)


def _os_message(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {what}"
    if exc.filename is not None:
        return f"{exc.filename}: {what}"
    return str(exc) or what


def describe_error(exc: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input or environment: CultureLLMError,
    OSError, UnicodeDecodeError, pydantic ValidationError, sqlite3.DatabaseError. None for anything else
    (a bug in culturellm)."""
    if isinstance(exc, CultureLLMError):
        msg = str(exc)
    elif isinstance(exc, UnicodeDecodeError):
        bad = exc.object[exc.start : exc.start + 1].hex()
        msg = (
            f"a file is not valid {exc.encoding} text (byte 0x{bad} at offset {exc.start}); save it as UTF-8"
        )
    elif isinstance(exc, OSError):
        msg = _os_message(exc)
    elif _is(exc, "pydantic_core", "ValidationError"):
        msg = validation_message(exc)  # type: ignore[arg-type]
    elif _is(exc, "sqlite3", "DatabaseError"):
        msg = f"database error: {exc} (a cache file may be damaged; `culturellm cache clear` removes it)"
    else:
        return None
    from culturellm.redact import redact_text

    return one_line(redact_text(msg)) or type(exc).__name__
