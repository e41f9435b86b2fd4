"""The resume state of augmentation: which seeds are complete in augmented.jsonl, the hidden state
file (step counters, usage, elapsed time, the settings' key) and the check that records on disk were
made with these settings."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from culturellm.augment.pipeline import STEPS, StepStats
from culturellm.errors import CultureLLMError, DataError
from culturellm.hashing import stable_hash
from culturellm.jsonio import ResumableRows, iter_jsonl, read_json, write_json
from culturellm.llm.base import ChatModel
from culturellm.runlayout import MANIFEST, RECORDS

STATE = ".augment-state.json"
OURS = (STATE, RECORDS)  # an augment directory from before output markers existed


def read_complete(path: Path) -> tuple[list[dict[str, Any]], set[str]]:
    """Records of the seeds whose group is complete (seed record's group_size matched), and their ids."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    order: list[str] = []
    for i, r in enumerate(ResumableRows(path).previous, 1):
        bad = [k for k in ("id", "question_id", "step", "text") if not isinstance(r.get(k), str)]
        if not isinstance(r.get("similarity"), int | float) or isinstance(r.get("similarity"), bool):
            bad.append("similarity")
        if bad or r["step"] not in STEPS:
            raise DataError(
                f"{path}: record {i} is not an augmentation record (field '{(bad or ['step'])[0]}'); "
                "use a new --out directory or delete this one"
            )
        q = str(r.get("question_id"))
        if q not in groups:
            order.append(q)
        groups[q].append(r)
    rows, done = [], set()
    for q in order:
        g = groups[q]
        head = next((r for r in g if r.get("step") == "seed"), None)
        if head is not None and head.get("group_size") == len(g):
            rows += g
            done.add(q)
    return rows, done


def state_key(fingerprint: dict[str, Any]) -> str:
    """A short stable hash of the settings that decide the records (config, LLM, embedder)."""
    return stable_hash(fingerprint)


def _warn(message: str) -> None:
    import sys

    print(f"warning: {message}", file=sys.stderr)


def _read_state(state_path: Path) -> dict[str, Any] | None:
    """The hidden state file, or None when it is missing or damaged (a warning says so)."""
    if not state_path.exists():
        return None
    try:
        state = read_json(state_path, what="augmentation state")
    except DataError as e:
        _warn(f"{e}; ignoring it")
        return None
    if not _counters_ok(state) or not isinstance(state.get("fingerprint"), dict):
        _warn(f"{state_path}: damaged augmentation state (wrong shape); ignoring it")
        return None
    return state


def _counters_ok(state: dict[str, Any]) -> bool:
    """True when the step counters, usage and elapsed time of a state (or manifest) can be added up."""
    steps, usage = state.get("steps", {}), state.get("usage", {})
    if not isinstance(steps, dict) or not isinstance(usage, dict):
        return False
    try:
        for d in steps.values():
            StepStats().add(d)
            if not all(isinstance(v, int) for v in d.get("reasons", {}).values()):
                return False
        for v in usage.values():
            float(v)
        float(state.get("elapsed_s", 0.0))
    except (TypeError, ValueError, AttributeError, OverflowError):
        return False
    return True


def _record_keys(path: Path) -> set[str | None]:
    """The state keys of the seed records in the records file (None: a record without a key)."""
    if not path.exists():
        return set()
    return {r.get("state_key") for r in iter_jsonl(path, tolerate_torn_tail=True) if r.get("step") == "seed"}


def resume_state(out_dir: Path, fingerprint: dict[str, Any], key: str) -> dict[str, Any]:
    """The previous state to continue from ({} for a fresh start), checked against the records.

    Records made with other settings (another key in the seed records) are refused, whatever the state
    file says. When the records are ours and the state file is missing, damaged or foreign, the counters
    come from manifest.json when it has our key, else they restart (with a warning); the records are
    kept either way. Records without a key (an older version) are accepted only when the state file
    matches, as before."""
    path, state_path = out_dir / RECORDS, out_dir / STATE
    state = _read_state(state_path)
    keys = _record_keys(path)
    if not keys:
        return state if state and state.get("fingerprint") == fingerprint else {}
    matching_state = state is not None and state.get("fingerprint") == fingerprint
    if keys - {None, key} or (None in keys and not matching_state):
        other = (state or {}).get("fingerprint", {}).get("llm") if state else None
        raise CultureLLMError(
            f"{out_dir}: holds records made with other settings (another configuration, model or "
            f"embedder{f': {other}' if other else ''}); use a new --out directory or delete it"
        )
    if matching_state:
        return state
    manifest = out_dir / MANIFEST
    try:
        m = read_json(manifest, what="augmentation manifest") if manifest.exists() else {}
    except DataError:
        m = {}
    if m.get("state_key") == key and _counters_ok(m):
        _warn(f"{state_path}: missing or not ours; counters restored from {manifest.name}")
        return {k: m.get(k, 0.0) for k in ("steps", "usage", "elapsed_s")} | {"fingerprint": fingerprint}
    _warn(f"{state_path}: missing or not ours; the records are kept, step counters restart")
    return {}


class StateWriter:
    """Writes the hidden state file after every chunk of seeds: the step counters, the usage (earlier
    runs' plus this run's, and the judge's when there is one) and the elapsed time."""

    def __init__(
        self,
        path: Path,
        key: str,
        fingerprint: dict[str, Any],
        prev: dict[str, Any],
        stats: dict[str, StepStats],
        llm: ChatModel,
        judge: ChatModel | None,
    ) -> None:
        self.path, self.key, self.fingerprint, self.prev, self.stats = path, key, fingerprint, prev, stats
        self.llm, self.judge = llm, judge
        self.usage0 = llm.usage.as_dict()
        self.judge0 = judge.usage.as_dict() if judge is not None else None
        self.elapsed_prev = float(prev.get("elapsed_s", 0.0))
        self.t0 = time.monotonic()

    def save(self) -> dict[str, Any]:
        usage = usage_delta(self.prev.get("usage", {}), self.usage0, self.llm.usage.as_dict())
        state = {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "steps": {k: v.as_dict() for k, v in self.stats.items()},
            "usage": usage,
            "elapsed_s": round(self.elapsed_prev + time.monotonic() - self.t0, 2),
        }
        if self.judge0 is not None and self.judge is not None:
            judge_prev = self.prev.get("judge_usage", {})
            state["judge_usage"] = usage_delta(judge_prev, self.judge0, self.judge.usage.as_dict())
        write_json(self.path, state)
        return state


def usage_delta(prev: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Usage of earlier runs (prev) plus what this run added (after - before)."""
    usage = {
        k: round(float(prev.get(k, 0)) + float(after[k]) - float(before[k]), 6)
        for k in ("requests", "cache_hits", "prompt_tokens", "completion_tokens", "cost_usd")
    }
    for k in ("requests", "cache_hits", "prompt_tokens", "completion_tokens"):
        usage[k] = int(usage[k])
    return usage
