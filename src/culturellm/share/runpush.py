"""The run's push stage: every culture model and CultureLLM-One (and their training sets) to the Hub.

Resumable on its own: each finished push is recorded in RUN/push.json (repo -> commit and the sha256
of what was pushed) at once, so a run killed half-way pushes only what is left, and a finished item
whose files did not change is never pushed twice. The manifest records the stage's output (push.json)
and, in its counts, the commit of each repository.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from culturellm.hashing import stable_hash
from culturellm.jsonio import read_json, write_json
from culturellm.share.config import PushConfig

RECORD = "push.json"


def push_items(names: list[str], models: Any, train: Any, run_name: str, cfg: PushConfig) -> list[tuple]:
    """(repo, kind, path) per item: each model directory, and each training set with `datasets`."""
    items = []
    for name in names:
        items.append((f"{cfg.to}/{run_name}-{name}", "model", Path(models(name))))
        if cfg.datasets:
            items.append((f"{cfg.to}/{run_name}-{name}-data", "dataset", Path(train(name)).parent))
    return items


def _content_hash(kind: str, path: Path, results: Path) -> str:
    """What decides whether an item must be pushed again: its files' sha256 (and, for a model, the
    run's result files that go into its card)."""
    from culturellm.hashing import sha256_file
    from culturellm.regularfiles import files_inside

    names = [p.name for p in path.iterdir() if p.is_symlink() or not p.is_dir()] if path.is_dir() else []
    files = sorted(files_inside(path, names).values()) if path.is_dir() else [path]
    if kind == "model":
        files += sorted(results.glob("eval/*/*.jsonl"))
    return stable_hash({str(f.relative_to(path.parent.parent)): sha256_file(f) for f in files})


def push_run(root: Path, items: list[tuple], cfg: PushConfig, console: Any) -> tuple[Path, dict]:
    """Push what is not yet pushed with the same content; returns (RUN/push.json, repo -> commit).
    Without `to`, nothing is pushed and push.json is left as it was (`{}` for a run never pushed)."""
    from culturellm.share.push import plan_dataset, plan_model, push_plan

    record_path = root / RECORD
    record: dict[str, Any] = read_json(record_path, what="push record") if record_path.is_file() else {}
    if cfg.to is None:  # no push: the record as it was (empty for a run never pushed)
        if not record_path.is_file():
            write_json(record_path, record)
        return record_path, {}
    for repo, kind, path in items:
        digest = _content_hash(kind, path, root)
        done = record.get(repo)
        if isinstance(done, dict) and done.get("content") == digest and done.get("revision") == cfg.revision:
            console.print(f"  {repo}: pushed before (commit {done.get('commit')}), skipped", markup=False)
            continue
        with tempfile.TemporaryDirectory(prefix="culturellm-push-") as tmp:
            if kind == "model":
                plan = plan_model(path, repo, root if (root / "eval").is_dir() else None, cfg.revision)
            else:
                plan = plan_dataset(path, repo, Path(tmp), cfg.revision)
            push_plan(plan, private=cfg.private)
        record[repo] = {"kind": kind, "commit": plan.commit, "revision": cfg.revision, "content": digest}
        write_json(record_path, record)  # at once: a killed run does not push this again
        console.print(f"  {repo}: pushed, commit {plan.commit}", markup=False)
    return record_path, {repo: r["commit"] for repo, r in record.items()}
