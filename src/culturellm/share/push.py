"""Push a culture model (PEFT adapter, culturellm.json, model card) or a training set (`culturellm
dataset` output, as Parquet through `datasets`, with its dataset card and split manifest) to the
Hugging Face Hub, in one commit each.

Nothing is written locally: the card is built in memory and the Parquet file in a temporary
directory that is removed afterwards, so a failed push leaves the user's files as they were.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturellm.errors import CultureLLMError, DataError
from culturellm.finetune.local_run import MODEL_FILES  # what a culture model directory publishes
from culturellm.llm.modelref import MODELREF_FILE
from culturellm.regularfiles import files_inside
from culturellm.share.hubrepo import call, check_repo_id, get_token, hub_api

PARQUET = "data/train-00000-of-00001.parquet"


@dataclass
class PushPlan:
    """What a push uploads: `files` (path in the repo -> local file, or bytes), the card text."""

    repo: str
    repo_type: str
    card: str
    files: dict[str, Path | bytes] = field(default_factory=dict)
    revision: str = "main"
    private: bool = False
    commit: str | None = None  # set once pushed
    url: str | None = None
    listed: list[tuple[str, int]] = field(default_factory=list)  # (path in the repo, bytes)

    def listing(self) -> list[tuple[str, int]]:
        return [
            (p, len(f) if isinstance(f, bytes) else f.stat().st_size) for p, f in sorted(self.files.items())
        ]


def is_model_dir(path: Path) -> bool:
    """A directory holding a model reference and an adapter config (present: links are judged later,
    by `plan_model`, so a link there is named rather than taken for a training set)."""
    return path.is_dir() and all(os.path.lexists(path / n) for n in (MODELREF_FILE, "adapter_config.json"))


def plan_model(model_dir: Path, repo: str, results: Path | None = None, revision: str = "main") -> PushPlan:
    """The files and card of a culture model directory (`culturellm.json` kind peft-adapter): regular
    files inside it only (a link that leaves it is refused, never followed)."""
    from culturellm.llm.modelref import read_modelref
    from culturellm.share.cards import model_card

    check_repo_id(repo)
    files: dict[str, Path | bytes] = dict(files_inside(model_dir, MODEL_FILES))  # before reading any
    ref = read_modelref(model_dir / MODELREF_FILE)
    if ref.kind != "peft-adapter" or Path(ref.path or ".") != Path("."):
        raise DataError(f"{model_dir / MODELREF_FILE}: only a PEFT adapter in this directory can be pushed")
    if results is not None and not (results / "eval").is_dir():
        raise CultureLLMError(f"--results {results}: not a run directory (no eval/ in it)")
    if results is None and (model_dir.parent.parent / "eval").is_dir():
        results = model_dir.parent.parent  # runs/<name>/models/<culture>: the run itself
    card = str(model_card(model_dir, repo, results))
    files["README.md"] = card.encode()
    return PushPlan(repo, "model", card, files, revision)


def _dataset_paths(path: Path) -> tuple[Path, Path]:
    """(train.jsonl, train.manifest.json) of a `culturellm dataset` output: the JSONL or its folder,
    regular files in one directory (a link that leaves it is refused, never followed)."""
    from culturellm.runlayout import TRAIN, split_manifest_path

    data = path / TRAIN if path.is_dir() else path
    manifest = split_manifest_path(data)
    files_inside(data.parent, [data.name, manifest.name])
    if not data.is_file() or not manifest.is_file():
        raise DataError(f"{path}: not a training set (a train.jsonl with its train.manifest.json beside it)")
    return data, manifest


def parquet_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows as Parquet keeps them exactly: a mapping column whose keys differ between rows
    (`target_distribution`: the option codes of each question) becomes JSON text, since a Parquet
    struct has one key set and would fill the others with nulls. Returns (rows, those columns)."""
    keep = {"messages"}
    json_columns = sorted({k for r in rows for k, v in r.items() if isinstance(v, dict) and k not in keep})
    out = [{k: json.dumps(v, sort_keys=True) if k in json_columns else v for k, v in r.items()} for r in rows]
    return out, json_columns


def plan_dataset(path: Path, repo: str, workdir: Path, revision: str = "main") -> PushPlan:
    """The Parquet file (written by `datasets` into `workdir`), manifest and card of a training set."""
    from datasets import Dataset

    from culturellm.jsonio import iter_jsonl, read_json
    from culturellm.share.cards import dataset_card

    check_repo_id(repo)
    data, manifest_path = _dataset_paths(path)
    manifest = read_json(manifest_path, what="training-set manifest")
    rows = list(iter_jsonl(data))
    if not rows:
        raise DataError(f"{data}: no records")
    parquet = workdir / "train.parquet"
    table, json_columns = parquet_rows(rows)
    Dataset.from_list(table).to_parquet(str(parquet))
    aug_manifest = Path(str(manifest.get("augmented") or "")).parent / "manifest.json"
    augment = read_json(aug_manifest, what="augment manifest") if aug_manifest.is_file() else {}
    card = str(dataset_card(manifest, augment, repo, len(rows), json_columns))
    files: dict[str, Path | bytes] = {PARQUET: parquet, "train.manifest.json": manifest_path}
    files["README.md"] = card.encode()
    return PushPlan(repo, "dataset", card, files, revision)


def push_plan(plan: PushPlan, *, private: bool = False, message: str | None = None) -> PushPlan:
    """Create the repo (and branch) when missing, then upload every file in one commit."""
    from huggingface_hub import CommitOperationAdd

    api = hub_api(get_token())
    what = f"push to {plan.repo}"
    call(what, api.create_repo, plan.repo, repo_type=plan.repo_type, private=private, exist_ok=True)
    if plan.revision != "main":
        call(
            what, api.create_branch, plan.repo, branch=plan.revision, repo_type=plan.repo_type, exist_ok=True
        )
    ops = [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=f if isinstance(f, bytes) else str(f))
        for p, f in sorted(plan.files.items())
    ]
    info = call(
        what,
        api.create_commit,
        plan.repo,
        ops,
        commit_message=message or f"culturellm: {plan.repo_type} {plan.repo}",
        repo_type=plan.repo_type,
        revision=plan.revision,
    )
    plan.private, plan.commit, plan.url = private, info.oid, info.commit_url
    return plan


def push(
    path: Path,
    repo: str,
    *,
    results: Path | None = None,
    private: bool = False,
    revision: str = "main",
    dry_run: bool = False,
) -> PushPlan:
    """Push a culture model directory or a training set (chosen by what `path` holds)."""
    from culturellm.llm.hub import REVISION

    check_repo_id(repo)
    if not REVISION.match(revision) or ".." in revision:
        raise CultureLLMError(f"--revision {revision!r}: not a branch name")
    if not path.exists():
        raise CultureLLMError(f"{path}: no such file or directory")
    if not dry_run:
        get_token()  # no token: one line before anything is built
    with tempfile.TemporaryDirectory(prefix="culturellm-push-") as tmp:
        if is_model_dir(path):
            plan = plan_model(path, repo, results, revision)
        else:
            if results is not None:
                raise CultureLLMError("--results goes with a culture model directory, not a training set")
            plan = plan_dataset(path, repo, Path(tmp), revision)
        plan.listed = plan.listing()  # while the temporary Parquet file exists
        return plan if dry_run else push_plan(plan, private=private)


def summary(plan: PushPlan) -> dict[str, Any]:
    return {
        "repo": plan.repo,
        "type": plan.repo_type,
        "revision": plan.revision,
        "commit": plan.commit,
        "url": plan.url,
        "files": [p for p, _ in plan.listed],
    }
