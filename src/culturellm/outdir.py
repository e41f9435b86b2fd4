"""Output directories are claimed by a marker file, so culturellm never writes over what a user made.

`claim(out, kind)` creates `out` with a `.culturellm` marker (JSON: kind, version), or accepts it when
it already holds our marker of that kind (a resumed run). An existing non-empty directory without the
marker is refused with a message naming `--force`, unless it holds files only culturellm writes there
(`ours`: e.g. `.augment-state.json`, from a version before markers existed), in which case the marker is
added. A path that exists and is not a directory is refused too. Every refusal happens before anything
is written. The claiming process holds the directory's lock until its command ends (culturellm.dirlock):
a second process claiming it meanwhile is refused, naming the first.

The marker also holds the ledger of the files culturellm wrote there (culturellm.safewrite: every writer
refuses to replace or append to any other file, or to write through a symbolic link). With `force`, or
for a directory claimed before the ledger existed, the files present at the claim are recorded as ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict, Unpack

from culturellm.dirlock import lock_dir
from culturellm.errors import DataError
from culturellm.jsonio import read_json
from culturellm.safewrite import MARKER, read_marker, write_marker

__all__ = ["MARKER", "check_claim", "claim", "owner"]


def owner(out: Path) -> str | None:
    """The kind recorded in `out`'s marker, or None when there is no (readable) marker."""
    kind = (read_marker(out) or {}).get("kind")
    return kind if isinstance(kind, str) else None


def _our_json(path: Path) -> bool:
    """A state file of ours from before markers: a regular file holding a JSON object (a user's file
    that merely has the name is not)."""
    try:
        return not path.is_symlink() and isinstance(read_json(path), dict)
    except DataError:
        return False


def check_claim(
    out: str | Path,
    kind: str,
    *,
    force: bool = False,
    ours: Sequence[str] = (),
    accept: Sequence[str] = (),
) -> Path:
    """Everything `claim` checks, without writing anything (use it to refuse before paying for work).
    accept: other kinds of culturellm output this command may write into (e.g. a report into a run)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory (choose another --out)")
    if not out.is_dir() or force:
        return out
    have = owner(out)
    if have is not None:
        if have != kind and have not in accept:
            raise DataError(
                f"{out}: holds a culturellm {have} output, not {kind}; choose another --out "
                "(or pass --force to write into it)"
            )
        return out
    entries = [p.name for p in out.iterdir()]
    if entries and not any(_our_json(out / name) for name in ours):
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise DataError(
            f"{out}: exists, is not empty ({shown}) and was not made by culturellm {kind}; choose another "
            "--out, or pass --force to write into it (files culturellm writes there are replaced)"
        )
    return out


class ClaimOptions(TypedDict, total=False):
    """`claim`'s keyword options: those of `check_claim`."""

    force: bool
    ours: Sequence[str]
    accept: Sequence[str]


def claim(out: str | Path, kind: str, **options: Unpack[ClaimOptions]) -> Path:
    """Check (see check_claim: `options` are its keywords), create `out` and write our marker (unless it
    has one); returns `out`."""
    from culturellm import __version__

    out = check_claim(out, kind, **options)
    out.mkdir(parents=True, exist_ok=True)
    lock_dir(out)  # one writer at a time (culturellm.dirlock): before anything is written here
    info = read_marker(out)
    if info is None or options.get("force"):  # new, forced, or from before markers: what is here is ours
        write_marker(out, kind, __version__, adopt=True)
    elif not isinstance(info.get("files"), list):  # a marker from before the ledger
        write_marker(out, str(info.get("kind", kind)), str(info.get("version", __version__)), adopt=True)
    return out
