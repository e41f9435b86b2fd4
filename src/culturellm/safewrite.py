"""The one output rule: culturellm writes only files it made, atomically, and never through a link.

An output directory is claimed by a marker file, `.culturellm` (see culturellm.outdir), whose JSON holds
a ledger, `files`: the paths (relative to the directory) that culturellm wrote there. Every write goes
through `target` (a new file written under a temporary name, then renamed into place) or `guard` (for
an append), which, for a path inside a claimed directory (the nearest ancestor holding a marker):

- refuses when the path, or any directory between the claimed root and it, is a symbolic link (a link
  would carry the write out of the root; the rename would replace a user's link);
- refuses to replace or append to an existing file the ledger does not name (a file the user put
  there, e.g. their own `results.jsonl`);
- records the path in the ledger before the file appears (before the rename, before an append
  creates it), so a command killed mid-write leaves no file of its own that its rerun would refuse.

A marker without a ledger (written by a version before the ledger) trusts the files that exist; `claim`
upgrades it by recording them. A path in no claimed directory (a cache, a user's config file) is written
atomically, unguarded; a file-path output the user names (`dataset --out FILE`) is checked by
`check_output_file` first: not an input, not a link, not a device, FIFO or socket (whatever `--force`
says), and not an existing file we did not write unless `--force`. No output is ever a special file:
`guard` refuses one for every write (culturellm.regularfiles).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from culturellm.errors import DataError
from culturellm.regularfiles import not_regular, read_input

MARKER = ".culturellm"
_LEDGER_LOCK = threading.RLock()


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def find_root(path: str | Path) -> Path | None:
    """The nearest directory above `path` that holds a marker file (a claimed output), or None."""
    here = Path(os.path.abspath(path)).parent
    for d in (here, *here.parents):
        if _is_file(d / MARKER):
            return d
    return None


def read_marker(root: Path) -> dict[str, Any] | None:
    """The marker's JSON object, or None when it is missing, unreadable or not an object."""
    try:
        info = json.loads(read_input(root / MARKER, "json"))
    except (OSError, ValueError, RecursionError, DataError):
        return None
    return info if isinstance(info, dict) else None


def ledger(root: Path) -> set[str] | None:
    """The files recorded as ours in `root`'s marker; None for a marker without a ledger (trust all)."""
    files = (read_marker(root) or {}).get("files")
    return {f for f in files if isinstance(f, str)} if isinstance(files, list) else None


def _rel(root: Path, path: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), root)).as_posix()


def _check_links(root: Path, path: Path) -> None:
    """No component from below `root` down to `path` may be a symbolic link."""
    parts = Path(_rel(root, path)).parts
    here = root
    for part in parts:
        here = here / part
        if os.path.islink(here):
            raise DataError(
                f"{here}: is a symbolic link inside the output directory {root}; culturellm does not write "
                "through links (remove the link or choose another --out)"
            )


def guard(path: str | Path) -> Path | None:
    """Check that culturellm may write `path` (see the module doc); returns its claimed root or None."""
    path = Path(path)
    what = not_regular(path, follow=False)
    if what not in (None, "a symbolic link", "a directory"):  # a FIFO, a device, a socket
        raise DataError(f"{path}: is {what}; culturellm writes only regular files and will not replace it")
    root = find_root(path)
    if root is None:
        return None
    rel = _rel(root, path)
    _check_links(root, path)
    if os.path.lexists(path):
        if not _is_file(path):
            raise DataError(f"{path}: exists and is not a file; culturellm will not replace it")
        ours = ledger(root)
        if ours is not None and rel not in ours:
            raise DataError(
                f"{path}: exists and was not written by culturellm; move it away or choose another --out "
                "(culturellm never replaces or appends to a file it did not write)"
            )
    return root


def _write_marker(root: Path, info: dict[str, Any]) -> None:
    text = json.dumps(info, indent=2, ensure_ascii=False) + "\n"
    with target(root / MARKER, check=False) as tmp:
        tmp.write_text(text, encoding="utf-8")


def record(root: Path | None, paths: Iterable[str | Path]) -> None:
    """Add `paths` to `root`'s ledger (nothing for no root or a marker without a ledger)."""
    if root is None:
        return
    with _LEDGER_LOCK:  # threads writing into one directory must not lose each other's entries
        info = read_marker(root)
        if info is None or not isinstance(info.get("files"), list):
            return
        have = set(info["files"])
        new = {_rel(root, Path(p)) for p in paths} - have
        if new:
            info["files"] = sorted(have | new)
            _write_marker(root, info)


def existing_files(root: Path) -> list[str]:
    """Every regular file below `root` (links not followed, the marker and temporary files left out)."""
    found = []
    for d, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            p = Path(d) / name
            if name != MARKER and not name.endswith(".tmp") and _is_file(p):
                found.append(_rel(root, p))
    return sorted(found)


def write_marker(root: Path, kind: str, version: str, *, adopt: bool) -> None:
    """Write `root`'s marker: its kind, version and ledger (with `adopt`, every file there now is
    recorded as ours: --force, or a directory from before the ledger)."""
    old = read_marker(root) or {}
    files = set(old.get("files") or []) if isinstance(old.get("files"), list) else set()
    if adopt:
        files |= set(existing_files(root))
    _write_marker(root, {"kind": kind, "version": version, "files": sorted(files)})


@contextlib.contextmanager
def target(path: str | Path, *, check: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so a plot keeps its format); on success it is
    renamed over `path` (atomic), recorded as ours just before; on failure it is removed. `guard` runs
    first."""
    path = Path(path)
    root = guard(path) if check else None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        record(root, [path])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_distinct(out: str | Path, inputs: Iterable[str | Path], flag: str = "--out") -> None:
    """An output that is one of the inputs is an error (it would be replaced while being read)."""
    for inp in inputs:
        if _same(Path(out), Path(inp)):
            raise DataError(f"{flag} {out}: is the input file {inp}; write to another file")


def check_output_file(
    out: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    force: bool = False,
    ours: Callable[[Path], bool] | None = None,
    flag: str = "--out",
) -> Path:
    """Check a file-path output before any work: not an input, not a directory, not a device, FIFO or
    socket (never opened: `ours` reads only a regular file), not a symbolic link, and, unless `force`,
    not an existing file that culturellm did not write (`ours(out)` or the ledger of a claimed
    directory says whether we did). With `force` the file is adopted (may be replaced)."""
    out = Path(out)
    check_distinct(out, inputs, flag)
    what = not_regular(out)  # links followed: a link to /dev/full is refused too
    if what not in (None, "a directory"):
        raise DataError(f"{flag} {out}: is {what}; culturellm writes only regular files (choose a file path)")
    if os.path.isdir(out) and not os.path.islink(out):
        raise DataError(f"{flag} {out}: is a directory, expected a file path")
    root = find_root(out)
    if os.path.islink(out) and not force:
        raise DataError(f"{flag} {out}: is a symbolic link; culturellm does not write through links")
    if os.path.lexists(out) and not force:
        in_ledger = root is not None and _rel(root, out) in (ledger(root) or set())
        if not in_ledger and not (ours is not None and ours(out)):
            raise DataError(
                f"{flag} {out}: exists and was not written by culturellm; choose another file or pass "
                "--force to replace it"
            )
    if force and root is not None and not os.path.islink(out):
        record(root, [out])
    return out


@contextlib.contextmanager
def library_writes(directory: str | Path, *, active: bool = True) -> Iterator[None]:
    """For a library that writes files itself (a Trainer's checkpoints, `save_pretrained`) into the
    claimed `directory`: refuse first if anything in it is a symbolic link (the library would follow
    it); afterwards record every file it left as ours. `active=False` (another process of a
    distributed run, which leaves the marker to the main one): nothing."""
    directory = Path(directory)
    if not active:
        yield
        return
    root = find_root(directory / MARKER)
    for d, dirs, files in os.walk(directory, followlinks=False):
        for name in dirs + files:
            if os.path.islink(Path(d) / name):
                raise DataError(
                    f"{Path(d) / name}: is a symbolic link inside the output directory {directory}; "
                    "culturellm does not write through links (remove the link or choose another --out)"
                )
    yield
    record(root, [directory / f for f in existing_files(directory)])
