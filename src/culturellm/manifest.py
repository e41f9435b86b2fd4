"""The run manifest: runs/<name>/manifest.json, what a run did and the record a resumed run reads.

It holds the package versions, the input hashes and, per stage, its key, status, start time, elapsed
seconds, outputs (path relative to the run directory -> sha256), counts and usage. It is rewritten
atomically after every change (culturellm.jsonio.write_json), so a killed run leaves either the old
or the new manifest, never half of one.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from culturellm import __version__
from culturellm.errors import DataError
from culturellm.hashing import sha256_file, stable_hash
from culturellm.jsonio import read_json, write_json
from culturellm.regularfiles import read_input
from culturellm.runlayout import RunLayout


def versions() -> dict[str, str]:
    """The versions a run records: culturellm, Python and the libraries that decide its numbers."""
    out = {"culturellm": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "trl", "sentence-transformers", "openai"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[pkg] = importlib.metadata.version(pkg)
    return out


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Manifest:
    """runs/<name>/manifest.json, rewritten atomically after every stage.

    A torn or wrong-shaped manifest (a disk filled up, an edit gone wrong) is moved aside as
    `manifest.json.damaged` with a warning and the run continues as a fresh one: every stage then
    reruns, and each stage resumes from its own outputs, so nothing already paid for is paid again."""

    def __init__(self, layout: RunLayout, console: Console | None = None):
        self.layout = layout
        self.path = layout.manifest
        self.data: dict[str, Any] = self._read(console) if self.path.exists() else {}
        self.data.setdefault("stages", {})

    def _read(self, console: Console | None) -> dict[str, Any]:
        try:
            data = read_json(self.path, what="run manifest")
            stages = data.get("stages", {})
            if not isinstance(stages, dict) or not all(_stage_ok(v) for v in stages.values()):
                raise DataError(f"{self.path}: damaged run manifest, wrong shape of 'stages'")
            return data
        except DataError as e:
            aside = self.path.with_name(self.path.name + ".damaged")
            self.path.replace(aside)
            (console or Console(stderr=True)).print(
                f"warning: {e}; moved aside to {aside.name}, every stage is checked again",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return {}

    def save(self) -> None:
        write_json(self.path, self.data)

    def stage_is_current(self, name: str, key: str) -> bool:
        """The stage finished with this key and its outputs are on disk unchanged."""
        rec = self.data["stages"].get(name)
        if not rec or rec.get("status") != "done" or rec.get("key") != key:
            return False
        for rel, digest in rec.get("outputs", {}).items():
            p = self.layout.root / rel
            if not p.is_file() or sha256_file(p) != digest:
                return False
        return True

    def start(self, name: str, key: str) -> str:
        """Record that a stage started (status "running"); returns its start time."""
        started = now()
        self.data["stages"][name] = {"status": "running", "key": key, "started_at": started}
        self.save()
        return started

    def finish(self, name: str, key: str, started: str, elapsed_s: float, result: Any) -> None:
        """Record a finished stage: its outputs with their sha256, counts and usage (a StageResult)."""
        self.data["stages"][name] = {
            "status": "done",
            "key": key,
            "started_at": started,
            "elapsed_s": round(elapsed_s, 2),
            "outputs": {self.layout.rel(p): sha256_file(p) for p in result.outputs},
            "counts": result.counts,
            "usage": result.usage,
        }
        self.save()

    def output_digest(self, name: str) -> str:
        """One hash of a finished stage's outputs: the input key of the stages that read them."""
        return stable_hash(self.data["stages"][name]["outputs"])


def _stage_ok(rec: Any) -> bool:
    outputs = rec.get("outputs", {}) if isinstance(rec, dict) else None
    return isinstance(outputs, dict) and all(isinstance(v, str) for v in outputs.values())


def old_run_dir(root: Path) -> bool:
    """A run directory made before output markers existed: its manifest.json is a run manifest."""
    try:
        data = json.loads(read_input(root / "manifest.json", "json"))
    except (OSError, ValueError, RecursionError, DataError):  # 100,000 `[`, a FIFO: not a manifest
        return False
    return isinstance(data, dict) and "stages" in data and "culturellm" in data
