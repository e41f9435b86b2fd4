"""What the alignment benchmarks (`targets.py`, `frontier.py`) share: an alignment cached in a JSON
file, so a killed benchmark resumes, and the results written as OUT/results.json and OUT/table.md."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def aligned(
    out: Path, label: str, spec: str, culture: str, split: Path, system: str | None
) -> dict[str, Any]:
    """`align` of model `spec` (system prompt `system`) for `culture` on `split`, with the seconds it
    took; kept as OUT/align/LABEL.json and read from there when it exists."""
    from culturellm.evaluate import ModelVariant, align

    cache = out / "align" / f"{label}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    t = time.monotonic()
    res = align(ModelVariant(label, spec, system), culture, split=split)
    res["elapsed_s"] = round(time.monotonic() - t, 1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res))
    return res


def write_results(out: Path, result: dict[str, Any], rows: list[dict], md: str, t0: float) -> None:
    """OUT/results.json (`result`, the table's rows and the seconds since `t0`) and OUT/table.md (`md`);
    prints the table."""
    result = {**result, "rows": rows, "elapsed_s": round(time.monotonic() - t0, 1)}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "table.md").write_text(md)
    print(md)
