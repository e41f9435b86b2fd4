"""User-facing errors: the CLI prints them as one line on stderr and exits with code 2."""

from __future__ import annotations


class CultureLLMError(Exception):
    """An error caused by the user's input (a file, a field, a name), with a message that says what to fix."""


class DataError(CultureLLMError):
    """A data file is missing, unreadable or malformed. The message names the file (and line/field)."""


class UnknownNameError(CultureLLMError):
    """An unknown culture, task, model spec, ... The message lists the known names."""
