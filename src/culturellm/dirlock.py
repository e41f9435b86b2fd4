"""One writer per output directory: the process that claims a directory (culturellm.outdir.claim) holds
an exclusive lock on it until the command ends, so a second `run` or stage command on the same `--out`
is one clear error naming the process that is writing there, instead of two processes training into
one model directory at once.

The lock is `flock` on the directory itself: nothing is written into the directory for it, and the
kernel drops it when its process ends however it ends, so the lock of a killed process (kill -9, a
crash, a reboot) is taken over by the next command without a stale file to clean up. The holder's
process id is read from /proc/locks (Linux; elsewhere the message names no pid). A filesystem without
locks (some network mounts) or a system without `fcntl` is not locked, as before.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from culturellm.errors import DataError

_HELD: dict[str, int] = {}  # resolved directory -> the open descriptor that holds its lock
_GUARD = threading.Lock()


def lock_dir(out: str | Path) -> None:
    """Hold `out`'s lock for the rest of this process (or until `release_all`); DataError naming the
    holder when another process holds it. A directory this process already holds is accepted."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        return
    out = Path(out)
    key = str(out.resolve())
    with _GUARD:
        if key in _HELD:
            return
        fd = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataError(
                f"{out}: another culturellm process ({holder(out)}) is writing this directory; wait for "
                "it to finish (or stop it), or choose another --out"
            ) from None
        except OSError:  # no locks on this filesystem
            os.close(fd)
            return
        _HELD[key] = fd


def release_all() -> None:
    """Release every directory lock this process holds (the end of a command)."""
    with _GUARD:
        for fd in _HELD.values():
            os.close(fd)  # closing the last descriptor drops the flock
        _HELD.clear()


def holder(out: Path) -> str:
    """'pid N, culturellm run' for the process holding `out`'s lock, as far as this system tells."""
    try:
        st = os.stat(out)
        with open("/proc/locks", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return "its process id unknown"
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        if "FLOCK" in fields and inode in fields:
            pid = fields[fields.index(inode) - 1]
            return f"pid {pid}{_command(pid)}"
    return "its process id unknown"


def _command(pid: str) -> str:
    """', culturellm SUBCOMMAND' from the process's command line (never its options: they may hold
    keys), or ''."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return ""
    at = next((i for i, a in enumerate(argv) if "culturellm" in Path(a).name), None)
    if at is None:
        return ""
    word = next((a for a in argv[at + 1 :] if a and not a.startswith("-")), "")
    return f", culturellm {word}" if word.isidentifier() else ", culturellm"
