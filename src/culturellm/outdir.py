"""Output directories are claimed by a marker file, so culturellm never writes over what a user made.

`claim(out, kind)` creates `out` with a `.culturellm` marker (JSON: kind, version), or accepts it when
it already holds our marker of that kind (a resumed run). An existing non-empty directory without the
marker is refused with a message naming `--force`, unless it holds files only culturellm writes there
(`ours`: e.g. `.augment-state.json`, from a version before markers existed), in which case the marker is
added. A path that exists and is not a directory is refused too. Every refusal happens before anything
is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from culturellm.errors import DataError

MARKER = ".culturellm"


def owner(out: Path) -> str | None:
    """The kind recorded in `out`'s marker, or None when there is no (readable) marker."""
    import json

    marker = out / MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = info.get("kind") if isinstance(info, dict) else None
    return kind if isinstance(kind, str) else None


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
    if entries and not any((out / name).exists() for name in ours):
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise DataError(
            f"{out}: exists, is not empty ({shown}) and was not made by culturellm {kind}; choose another "
            "--out, or pass --force to write into it (files culturellm writes there are replaced)"
        )
    return out


def claim(
    out: str | Path,
    kind: str,
    *,
    force: bool = False,
    ours: Sequence[str] = (),
    accept: Sequence[str] = (),
) -> Path:
    """Check (see check_claim), create `out` and write our marker (unless it has one); returns `out`."""
    from culturellm import __version__
    from culturellm.jsonio import write_json

    out = check_claim(out, kind, force=force, ours=ours, accept=accept)
    out.mkdir(parents=True, exist_ok=True)
    if owner(out) is None or force:
        write_json(out / MARKER, {"kind": kind, "version": __version__})
    return out
