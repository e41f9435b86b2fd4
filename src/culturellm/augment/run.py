"""`augment()`: drive the augmentation algorithm (`augment.pipeline.Augmenter`) over the seed
questions, resumably: the records of each chunk of seeds are appended (fsync'd) as soon as they are
done, the hidden state file keeps the counters, and a rerun skips finished seeds
(`augment.state`); at the end augment/manifest.json is written (`augment.summary`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturellm.augment.config import AugmentConfig
from culturellm.augment.pipeline import Augmenter, SeedItem
from culturellm.augment.state import (
    MANIFEST,
    OURS,
    RECORDS,
    STATE,
    StateWriter,
    read_complete,
    resume_state,
    state_key,
)
from culturellm.augment.summary import augment_manifest
from culturellm.errors import DataError
from culturellm.jsonio import ResumableRows, write_json
from culturellm.llm.access import ModelAccess
from culturellm.llm.base import ChatModel, Embedder
from culturellm.outdir import check_claim, claim
from culturellm.progress import progress_task


def augment(
    seeds: Sequence[Any],
    llm: ChatModel,
    embedder: Embedder,
    config: AugmentConfig | None = None,
    out_dir: Path | str = "augment",
    *,
    progress: Any = None,
    force: bool = False,
    judge: ChatModel | None = None,
    access: ModelAccess | None = None,
) -> dict[str, Any]:
    """Augment seed questions (wvs Question or Seed objects); write out_dir/augmented.jsonl and
    out_dir/manifest.json; return the manifest. Resumable: seeds already complete in the file are
    skipped (a torn last line is dropped and the file rewritten cleanly).

    out_dir is claimed (culturellm.outdir): a non-empty directory culturellm did not make is refused
    unless force. The settings' key (`state_key`) is stored in the hidden state file, in manifest.json
    and in every seed record, so records made with other settings are refused even when the state
    file is missing (see resume_state). `judge`: the chat model of the judge step (default:
    `load_model(config.judge, access)` when config.judge is set); `access`: how the judge (when not
    given) and the verifier's fluency model are reached and placed (a run passes its own).

    Long because: one resumable loop with its state, judge and manifest in one place."""
    cfg = config or AugmentConfig()
    out_dir = Path(out_dir)
    check_claim(out_dir, "augment", force=force, ours=OURS)
    items = _seed_items(seeds)
    records = ResumableRows(out_dir / RECORDS)
    fingerprint = {"config": cfg.fingerprint(), "llm": llm.name, "embedder": embedder.name}
    key = state_key(fingerprint)
    rows, done = read_complete(records.path)  # damaged records: an error before anything is written
    prev = resume_state(out_dir, fingerprint, key)
    claim(out_dir, "augment", force=force, ours=OURS)
    if cfg.judge and judge is None:
        from culturellm.llm import load_model

        judge = load_model(cfg.judge, access)
    if records.path.exists():
        records.rewrite(rows)  # drop torn / incomplete groups
    todo = [i for i in items if i.question_id not in done]
    placement = access.placement() if access is not None else {}
    aug = Augmenter(llm, embedder, cfg, judge if cfg.judge else None, placement)
    for step, d in prev.get("steps", {}).items():
        if step in aug.stats:
            aug.stats[step].add(d)
    state = StateWriter(out_dir / STATE, key, fingerprint, prev, aug.stats, llm, judge if cfg.judge else None)
    with progress_task(progress, len(items), f"augment ({llm.name})") as advance:
        advance(len(items) - len(todo))
        for start in range(0, len(todo), cfg.batch_size):
            chunk = todo[start : start + cfg.batch_size]
            for group in aug.run_chunk(chunk):
                group[0]["state_key"] = key  # the seed record heads its group
                records.append(group)
            state.save()
            advance(len(chunk))
    wanted = {i.question_id for i in items}
    final = state.save()
    all_rows = [r for r in read_complete(records.path)[0] if r["question_id"] in wanted]
    manifest = augment_manifest(all_rows, cfg, llm, embedder, final, aug, len(items) - len(todo))
    manifest["state_key"] = key
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def _seed_items(seeds: Sequence[Any]) -> list[SeedItem]:
    """The seeds as SeedItems; DataError for a seed without id or text, or a repeated id."""
    items = [SeedItem.of(q) for q in seeds]
    dup = [q for q, c in Counter(i.question_id for i in items).items() if c > 1]
    if dup:
        raise DataError(f"seed questions: duplicate question ids {dup}")
    return items
