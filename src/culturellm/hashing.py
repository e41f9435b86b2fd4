"""The project's two hashes: `stable_hash` of a value (a short, canonical key for resuming and
fingerprints) and `sha256_file` of a file's bytes (the identity of an artefact)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def stable_hash(value: Any, length: int = 16) -> str:
    """First `length` hex digits of the sha256 of `value`.

    A `str` is hashed as its UTF-8 text; anything else as canonical JSON (sorted keys, values that
    JSON cannot hold written with `str`, e.g. paths). The same value gives the same hash in every
    process and version, so recorded keys (run manifests, result rows, fine-tuning state) stay valid.
    """
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def sha256_file(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
