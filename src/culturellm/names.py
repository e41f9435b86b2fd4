"""One safe-name rule for every name that becomes part of a path (task, culture, run, model label,
country code), and the check that a resolved path stays inside its root.

A safe name is 1-64 characters: ASCII letters, digits, '.', '_', '-', starting with a letter or digit
(so never '.', '..', a hidden file, an absolute path or a drive). Task names are `culture/task`: each
'/'-separated part must be safe. Names are checked where they enter (registry load, `wvs import`,
config load, CLI options), so the rest of the code can join them into paths.
"""

from __future__ import annotations

import re
from pathlib import Path

from culturellm.errors import DataError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RULE = "1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_safe_name(value: object, *, parts: bool = False) -> bool:
    """True when `value` follows the rule (with parts=True: every '/'-separated part does)."""
    if not isinstance(value, str):
        return False
    pieces = value.split("/") if parts else [value]
    return all(SAFE_NAME.fullmatch(p) is not None for p in pieces)


def check_name(value: object, what: str, where: str = "", *, parts: bool = False) -> str:
    """Return `value` when it is a safe name, else raise DataError naming where it came from."""
    if is_safe_name(value, parts=parts):
        return str(value)
    prefix = f"{where}: " if where else ""
    extra = " per '/'-separated part" if parts else ""
    raise DataError(f"{prefix}{what} {value!r} is not a safe name ({RULE}{extra})")


def child(
    directory: str | Path, name: object, what: str, where: str = "", *, prefix: str = "", suffix: str = ""
) -> Path:
    """`directory/<prefix><name><suffix>` for a `name` read from a file (a culture in a result row, a
    set name): the one way such a name becomes a path. A name that breaks the rule (`x/../../victim`,
    `..`, a list) is a DataError naming `where` (the file and row), so the path is always one entry
    directly inside `directory`."""
    return Path(directory) / f"{prefix}{check_name(name, what, where)}{suffix}"


def check_inside(path: str | Path, root: str | Path, what: str = "path") -> Path:
    """Resolve `path` and check that it lies inside `root` (also resolved, symlinks followed);
    DataError otherwise. Returns the resolved path."""
    resolved = Path(path).expanduser().resolve()
    base = Path(root).expanduser().resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise DataError(f"{what} {path} is outside {root}")
    return resolved


def check_relative(value: str, what: str, where: str = "") -> str:
    """A relative path that cannot climb out of its root: not absolute, no '..' part, no drive."""
    prefix = f"{where}: " if where else ""
    p = Path(value)
    if not value.strip() or p.is_absolute() or p.drive or value.startswith(("/", "\\", "~")):
        raise DataError(f"{prefix}{what} {value!r} must be a path relative to the data directory")
    if any(part == ".." for part in re.split(r"[/\\]", value)):
        raise DataError(f"{prefix}{what} {value!r} must not contain '..' (it would leave the data directory)")
    return value


def path_part(label: str) -> str:
    """Any label (a model label, a model spec, a task name part) as one file or folder name: runs of
    other characters than letters, digits, '.', '+', '-' and '_' become '_', at most 100 characters,
    never empty, never '.', '..' or hidden (a leading '.' gets a '_' before it). The one rule for
    output paths built from labels that are not checked safe names."""
    name = re.sub(r"[^\w.+-]+", "_", label).strip("_")[:100] or "model"
    return "_" + name if name.startswith(".") else name
