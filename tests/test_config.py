"""The configuration layer: stable_hash, stage configs composed by the run config, one precedence
rule (defaults < preset < TOML < flags), one-line validation messages, the run directory layout."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from culturellm.hashing import sha256_file, stable_hash


def test_stable_hash_is_the_recorded_form():
    # pinned: run manifests, result rows and fine-tuning state keep these keys across versions
    assert stable_hash({"b": [1, 2], "a": "x"}) == "5125d018f84d57c4"
    assert stable_hash("3.0:0:None") == "6cfb37d0fa5b2302"
    value = {"path": Path("/d"), "n": 1.5}
    inline = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert stable_hash(value) == inline
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert len(stable_hash([1], length=8)) == 8


def test_sha256_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * (3 << 20))
    assert sha256_file(p) == hashlib.sha256(p.read_bytes()).hexdigest()
