"""Small, safe file I/O: atomic writes and flushed JSONL appends (a killed run never leaves half a file)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from culturellm.errors import DataError
from culturellm.regularfiles import read_input
from culturellm.safewrite import guard, record, target


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename into place; inside a claimed
    output directory only a file culturellm wrote is replaced, never through a link (culturellm.safewrite)."""
    with target(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def read_text(path: str | Path, kind: str = "jsonl") -> str:
    """A text file's content: UTF-8, or UTF-8/16/32 with a byte-order mark (the mark is dropped).
    Anything else (Latin-1, UTF-16 without a mark, binary) is a DataError naming the file and the line
    of the first bad byte; a missing or unreadable file is a DataError too, and so is one that is not a
    regular file (a device, a FIFO) or larger than the limit of its `kind` (culturellm.regularfiles)."""
    path = Path(path)
    try:
        data = read_input(path, kind)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    encoding = "utf-8"
    for bom, enc in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom) :], enc
            break
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        hint = " (it looks like UTF-16 without a byte-order mark)" if b"\x00" in data[:200] else ""
        raise DataError(
            f"{path}:{line}: not {encoding.upper()} text (byte 0x{data[e.start]:02x}){hint}; save it as UTF-8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError(f"{path}:{line}: holds NUL characters: not a text file (save it as UTF-8 text)")
    return text


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; DataError names the file for a missing file, bad encoding or bad TOML."""
    import tomllib

    text = read_text(path, kind="config")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{path}: not valid TOML ({e})") from None


def read_json(path: str | Path, *, what: str = "JSON file") -> dict[str, Any]:
    """Parse a file holding one JSON object; DataError (naming the file) when it is torn, not JSON, or
    not an object."""
    text = read_text(path, kind="json")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: damaged {what}, not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise DataError(f"{path}: damaged {what}, nested too deeply") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: damaged {what}, expected a JSON object, got {type(obj).__name__}")
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def append_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows and flush+fsync, so a record is either fully on disk or not at all. Inside a claimed
    output directory only to a file culturellm wrote, never through a link (culturellm.safewrite)."""
    path = Path(path)
    root = guard(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record(root, [path])  # before the file appears: a kill mid-append leaves a file its rerun may resume
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def iter_jsonl(path: str | Path, *, tolerate_torn_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Read a JSONL file. A malformed line raises DataError naming the file and line number.

    With tolerate_torn_tail, an unterminated, unparsable *last* line (left by a kill mid-write of an
    append) is ignored instead; resumable stages use this and then rewrite the file cleanly.
    """
    for _, obj in numbered_jsonl(path, tolerate_torn_tail=tolerate_torn_tail):
        yield obj


def numbered_jsonl(
    path: str | Path, *, tolerate_torn_tail: bool = False
) -> Iterator[tuple[int, dict[str, Any]]]:
    """`iter_jsonl` with each object's line number (from 1; blank lines are skipped, not renumbered),
    for messages that name the line of a later problem."""
    path = Path(path)
    parts = read_text(path).split("\n")  # not splitlines(): U+2028 inside a JSON string is no newline
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as e:
            msg = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
            if tolerate_torn_tail and i == len(lines) and not line.endswith("\n"):
                return
            raise DataError(f"{path}:{i}: not valid JSON ({msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{i}: expected a JSON object, got {type(obj).__name__}")
        yield i, obj


def read_jsonl(path: str | Path, **kw: Any) -> list[dict[str, Any]]:
    return list(iter_jsonl(path, **kw))


class ResumableRows:
    """A JSONL file of finished rows that a killed command resumes from (evaluation results, alignment
    rows, augmentation records, general-ability rows), written one way:

    - `previous`: the rows on disk when first asked (a torn last line, left by a kill mid-append, is
      dropped);
    - `append(rows)`: each finished row appended and fsync'd at once, the resume checkpoint (before the
      first append, a file whose last line is torn or unterminated is rewritten cleanly, so no record
      is glued to a torn one);
    - `finish(rows, same)`: the file rewritten cleanly once at the end: these rows, and the earlier
      rows that none of them replaces."""

    def __init__(self, path: str | Path, previous: list[dict[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self._previous = previous
        self._clean = False

    @property
    def previous(self) -> list[dict[str, Any]]:
        if self._previous is None:
            exists = self.path.exists()
            self._previous = read_jsonl(self.path, tolerate_torn_tail=True) if exists else []
        return self._previous

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        if not self._clean and self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self.rewrite(self.previous)
        self._clean = True
        append_jsonl(self.path, rows)

    def rewrite(self, rows: Iterable[dict[str, Any]]) -> None:
        write_jsonl(self.path, rows)
        self._clean = True

    def finish(
        self,
        rows: list[dict[str, Any]],
        same: tuple[str, ...],
        *,
        earlier_first: bool = False,
        drop: tuple[str, ...] = (),
    ) -> None:
        """Rewrite the file once: `rows` and the earlier rows that none of them replaces (a row replaces
        the earlier rows with the same values of the fields `same`), in that order or the earlier rows
        first, without the fields in `drop`."""
        mine = {tuple(r.get(f) for f in same) for r in rows}
        kept = [r for r in self.previous if tuple(r.get(f) for f in same) not in mine]
        ordered = kept + rows if earlier_first else rows + kept
        self.rewrite([{k: v for k, v in r.items() if k not in drop} for r in ordered])
