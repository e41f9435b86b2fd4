"""Only regular files are read or written as files (issue #31), in one place.

A device (`/dev/zero`, `/dev/full`), a FIFO or a socket named where culturellm reads or writes a file
is one error line, before anything opens it for long: reading `/dev/zero` never ends, opening a FIFO
blocks until someone writes to it. An input is also refused when it is larger than a sane size for
its kind (`LIMITS`), before it is read: every such file is read whole into memory.

- `check_input(path, kind)` / `read_input(path, kind)`: an input (links followed: a user may link
  their data); `jsonio.read_text` and every reader built on it go through `read_input`, streaming
  readers (WVS microdata, training sets) call `check_input` first.
- `not_regular(path)`: what a path is when it is not a regular file; `safewrite` refuses such an
  output (`check_output_file`, `guard`).
- `files_inside(directory, names)`: the regular files of a directory that may be uploaded or copied;
  a link that leaves the directory is refused, never followed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from culturellm.errors import DataError

MIB = 1 << 20
LIMITS = {
    "config": 16 * MIB,  # a TOML file: run configuration, tasks.toml, cultures.toml, settings
    "text": 16 * MIB,  # a context / system-prompt file
    "json": 256 * MIB,  # one JSON object: a manifest, a state file, a split, a model reference
    "jsonl": 2048 * MIB,  # rows read whole: task data, results, augmentation records, releases
    "data": 64 * 1024 * MIB,  # read streaming: WVS microdata, training sets
}
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def describe(mode: int) -> str | None:
    """What a file of this st_mode is when it is not a regular file ('a FIFO (named pipe)', ...)."""
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def not_regular(path: str | Path, *, follow: bool = True) -> str | None:
    """What `path` is when it exists and is not a regular file (a link is followed unless `follow` is
    False, then a link is 'a symbolic link'); None for a regular file or a missing path."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
    if not follow and stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    return describe(st.st_mode)


def _size(n: int) -> str:
    return f"{n / MIB:,.0f} MiB" if n < 1024 * MIB else f"{n / (1024 * MIB):,.1f} GiB"


def _check(path: Path, st: os.stat_result, kind: str) -> None:
    what = describe(st.st_mode)
    if what == "a directory":
        raise IsADirectoryError(21, "Is a directory", str(path))
    if what is not None:
        raise DataError(f"{path}: is {what}, not a regular file; culturellm reads only regular files")
    if st.st_size > LIMITS[kind]:
        raise DataError(
            f"{path}: is {_size(st.st_size)}, larger than {_size(LIMITS[kind])}, the limit for a {kind} "
            "file culturellm reads; is it the right file?"
        )


def check_input(path: str | Path, kind: str = "data") -> os.stat_result:
    """Check an input before it is opened: a regular file (links followed) no larger than LIMITS[kind].
    DataError otherwise; a missing file or a directory raises the OSError the caller would get."""
    path = Path(path)
    st = os.stat(path)
    _check(path, st, kind)
    return st


def read_input(path: str | Path, kind: str = "jsonl") -> bytes:
    """The bytes of an input file, checked as `check_input` (and again on the open file, which is opened
    without blocking, so a FIFO put there meanwhile cannot hang); never more than its kind's limit."""
    path = Path(path)
    check_input(path, kind)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        _check(path, st, kind)
        data = f.read(LIMITS[kind] + 1)
    if len(data) > LIMITS[kind]:  # it grew while being read
        raise DataError(f"{path}: larger than {_size(LIMITS[kind])}, the limit for a {kind} file")
    return data


def files_inside(directory: str | Path, names: Iterable[str]) -> dict[str, Path]:
    """name -> path of each of `names` present in `directory`, for an upload or a copy: a regular file,
    or a link to one that stays inside the directory. A link that leaves the directory is refused
    (DataError naming it and where it points; it is never followed), and so is anything that is not a
    regular file (a FIFO, a device, a directory)."""
    directory = Path(directory)
    base = directory.resolve()
    found = {}
    for name in names:
        p = directory / name
        if not os.path.lexists(p):
            continue
        if os.path.islink(p) and not p.resolve().is_relative_to(base):
            raise DataError(
                f"{p}: is a symbolic link to {os.readlink(p)}, outside {directory}; culturellm uploads "
                "and copies only the files inside the directory (put the file itself there)"
            )
        what = not_regular(p)
        if what is not None or not p.exists():
            what = what or "a broken link"
            raise DataError(f"{p}: is {what}, not a regular file; culturellm will not read it")
        found[name] = p
    return found
