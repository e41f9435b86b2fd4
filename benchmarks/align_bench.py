"""What the alignment benchmarks (`targets.py`, `frontier.py`) share: the training targets they compare
(the registry's), an alignment cached in a JSON file, so a killed benchmark resumes, and the results
written as OUT/results.json and OUT/table.md."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def registered_targets(sweep: Mapping[str, Sequence[float]] | None = None) -> list[str]:
    """Every registered training target (`culturellm.dataset.targets`), in registry order: a target
    with parameters once per value in `sweep[name]` as NAME:X (X sets its first parameter), else by
    its name (its parameters' defaults). A newly registered target is in the list with no edit here."""
    from culturellm.dataset.targets import get_target, target_names

    out: list[str] = []
    for name in target_names():
        values = (sweep or {}).get(name, ()) if get_target(name).params else ()
        out += [f"{name}:{v:g}" for v in values] or [name]
    return out


def aligned(
    out: Path, label: str, spec: str, culture: str, split: Path, system: str | None
) -> dict[str, Any]:
    """`align` of model `spec` (system prompt `system`) for `culture` on `split`, with the seconds it
    took; kept as OUT/align/LABEL.json and read from there when its key (the model's files, the
    split, the culture and the system prompt) is unchanged: a retrained model is aligned again."""
    from culturellm.evaluate import ModelVariant, align
    from culturellm.hashing import stable_hash

    key = stable_hash({"model": _model_digest(spec), "split": _digest(split), "culture": culture,
                       "system": system})  # fmt: skip
    cache = out / "align" / f"{label}.json"
    if cache.exists() and (res := json.loads(cache.read_text())).get("key") == key:
        return res
    t = time.monotonic()
    res = align(ModelVariant(label, spec, system), culture, split=split)
    res["elapsed_s"] = round(time.monotonic() - t, 1)
    res["key"] = key
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res))
    return res


def _digest(path: Path) -> str:
    from culturellm.hashing import sha256_file

    return sha256_file(path) if Path(path).is_file() else str(path)


def _model_digest(spec: str) -> str:
    """A model directory by its weights (adapter, else its model reference), any other spec by name."""
    d = Path(spec)
    for name in ("adapter_model.safetensors", "culturellm.json"):
        if (d / name).is_file():
            return _digest(d / name)
    return spec


def write_results(out: Path, result: dict[str, Any], rows: list[dict], md: str, t0: float) -> None:
    """OUT/results.json (`result`, the table's rows and the seconds since `t0`) and OUT/table.md (`md`);
    prints the table."""
    result = {**result, "rows": rows, "elapsed_s": round(time.monotonic() - t0, 1)}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "table.md").write_text(md)
    print(md)
