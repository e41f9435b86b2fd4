"""What the issue-29 experiment drivers (`levers.py`, `loo_one.py`, `retrieval.py`) share.

- One *setting* of an experiment is a `culturellm run` of a base config with some fields overridden
  (`run_setting`): the run's stage machinery resumes it (a killed driver loses at most the stage in
  progress, and fine-tuning resumes from its checkpoint), and a finished setting is skipped stage by
  stage, by key.
- Runs whose `[augment]` sections are the same share one import (`share_augment`): before a new run's
  first stage, the finished augment stage of another run is copied in (its directory and its manifest
  entry); the new run's augment key is then compared as always, and its outputs' sha256 checked, so a
  different `[augment]` simply imports again.
- Own − best other against every one of the nine surveys (`own_vs_others`), from a culture model's
  per-question answers, with paired 95% bootstrap CIs over questions (culturellm.evaluate.matrix).
- The flags every driver takes for a pilot (`add_size_flags`, `size_overrides`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NINE = ("arabic", "bengali", "chinese", "english", "german", "korean", "portuguese", "spanish", "turkish")
MEASURES = ("majority_agreement", "one_minus_jsd", "one_minus_wasserstein")
SHORT = {"majority_agreement": "agreement", "one_minus_jsd": "1 − JSD", "one_minus_wasserstein": "1 − W1"}


def add_size_flags(ap: argparse.ArgumentParser) -> None:
    """The flags that shrink an experiment (a pilot) or point it at the rewordings."""
    ap.add_argument("--import-file", type=Path, help="overrides [augment] import_file")
    ap.add_argument("--limit-seeds", type=int, help="only the first N seed questions (a pilot)")
    ap.add_argument("--holdout-questions", type=int, help="overrides [dataset] holdout_questions")
    ap.add_argument("--max-steps", type=int, help="overrides [finetune] max_steps")
    ap.add_argument("--limit", type=int, help="overrides [evaluate] limit (task examples per task)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")


def size_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The sections the size flags set (nested, as a run config)."""
    out: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            out.setdefault(section, {})[key] = value

    put("augment", "import_file", str(args.import_file) if args.import_file else None)
    put("augment", "limit_seeds", args.limit_seeds)
    put("dataset", "holdout_questions", args.holdout_questions)
    put("finetune", "max_steps", args.max_steps)
    put("evaluate", "limit", args.limit)
    return out


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Nested dicts merged, later ones winning."""
    out: dict[str, Any] = {}
    for layer in layers:
        for k, v in layer.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def setting_config(path: Path, overrides: dict[str, Any]) -> Any:
    """The run config of one setting: the TOML at `path` < `overrides` (culturellm.settings)."""
    from culturellm.config import load_config
    from culturellm.settings import flags

    return load_config(path, flags(overrides))


def share_augment(src: Path | None, dst: Path) -> bool:
    """Before `dst`'s first run: copy `src`'s finished augment stage into it (augment/, the run marker and
    the stage's manifest entry). The run then checks that stage's key and outputs as always. False
    when there is nothing to share or `dst` has begun."""
    from culturellm.outdir import MARKER

    if src is None or (dst / "manifest.json").exists() or not (src / "manifest.json").exists():
        return False
    rec = json.loads((src / "manifest.json").read_text(encoding="utf-8"))["stages"].get("augment")
    if not rec or rec.get("status") != "done" or (dst.exists() and any(dst.iterdir())):
        return False
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "augment", dst / "augment")
    shutil.copy2(src / MARKER, dst / MARKER)
    (dst / "manifest.json").write_text(json.dumps({"stages": {"augment": rec}}), encoding="utf-8")
    return True


def run_setting(cfg: Any, out: Path, share: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """`culturellm run` of `cfg` in `out` (resumed stage by stage); returns the run manifest."""
    from culturellm.pipeline import Pipeline

    if share_augment(share, out):
        print(f"{out}: augment stage shared from {share}", flush=True)
    return Pipeline(cfg, out, progress=progress).run()


def augment_source(done: dict[str, Path], cfg: Any, out: Path) -> Path | None:
    """A finished run with the same [augment] section as `cfg` (recorded in `done` once `out` ran)."""
    key = cfg.section_hash("augment")
    src = done.get(key)
    done.setdefault(key, out)
    return src if src != out else None


def model_rows(run: Path, culture: str, label: str = "culturellm") -> list[dict[str, Any]]:
    """The per-question answers of a run's model `label` aligned with `culture` (held-out items)."""
    from culturellm.jsonio import read_jsonl

    path = run / "eval" / culture / "align" / label / f"{culture}.jsonl"
    return list(read_jsonl(path)) if path.exists() else []


def own_vs_others(rows: list[dict[str, Any]], own: str, cultures: tuple[str, ...] = NINE) -> dict[str, Any]:
    """A culture model's answers (`rows`, asked as itself) against every culture's survey: per measure
    own − best other with its paired CI on the items both surveys answered, and the best other."""
    from culturellm.evaluate.matrix import own_minus_best_other, rescore

    cells = {c: rescore({"questions": rows}, c) for c in cultures}
    cells = {c: v for c, v in cells.items() if v["n_questions"] or c == own}  # surveys without these items
    cultures = tuple(cells)
    items = {("m", c): cells[c].pop("items") for c in cultures}
    matrix = {"models": ["m"], "cultures": list(cultures), "own": {"m": own}}
    for m in MEASURES:
        matrix[m] = [[cells[c][m] for c in cultures]]
    out = own_minus_best_other(matrix, items)["m"]
    out["own"] = {m: cells[own]["ci"][m] for m in MEASURES}
    return out


def ci(d: dict[str, Any] | None, signed: bool = False) -> str:
    if not d or d.get("n", 1) == 0:
        return "–"
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(d['mean'])} [{f.format(d['lo'])}, {f.format(d['hi'])}]"


def write_outputs(out: Path, name: str, lines: list[str], data: Any) -> None:
    """OUT/NAME.md (the tables, also printed) and OUT/NAME.json (every number)."""
    from culturellm.jsonio import atomic_write_text, write_json

    text = "\n".join(lines)
    print(text)
    atomic_write_text(out / f"{name}.md", text + "\n")
    write_json(out / f"{name}.json", data)
