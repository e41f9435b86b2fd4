"""Opening SQLite cache files that may be damaged (a disk filled up, a file overwritten, a copy cut short).

The caches (LLM responses, embeddings) can always be rebuilt, so a damaged file (or one whose tables lack
our columns) is never an error:
it is moved aside as `<name>.corrupt-<time>` (with its -wal/-shm side files), a warning goes to stderr,
and a fresh, empty cache is created in its place.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: SQLite result codes meaning "this file is damaged / not a database" (not "busy" or "locked").
CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


class WrongSchema(sqlite3.DatabaseError):
    """A cache table without the columns this version reads and writes (another program's file, an old
    layout): handled like a damaged file, moved aside and rebuilt."""


def check_columns(conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> None:
    """Raise WrongSchema when `table` lacks any of `columns` (a table created by CREATE TABLE IF NOT
    EXISTS keeps whatever layout it already had)."""
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    missing = [c for c in columns if c not in have]
    if missing:
        raise WrongSchema(
            f"table {table} lacks column(s) {', '.join(missing)}: not a culturellm cache layout"
        )


def is_corruption(exc: BaseException) -> bool:
    """True for an sqlite3 error that says the database file is damaged, not a database, or not laid out
    as our cache (WrongSchema)."""
    if isinstance(exc, WrongSchema):
        return True
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in CORRUPT_CODES
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def move_aside(path: Path, why: BaseException | str) -> Path:
    """Move a damaged database (and its -wal/-shm files) out of the way; returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(target.with_name(target.name + suffix))
    print(
        f"warning: {path}: damaged cache database ({why}); moved aside to {target.name}, starting an empty "
        "cache",
        file=sys.stderr,
    )
    return target


def guarded(path: Path, op: Callable[[], T], reset: Callable[[], None]) -> T:
    """Run `op` (a database operation on `path`); when it fails because the file is damaged, `reset`
    (close connections), move the file aside and run `op` once more on a fresh database."""
    try:
        return op()
    except sqlite3.DatabaseError as e:
        if not is_corruption(e):
            raise
        reset()
        move_aside(path, e)
    return op()
