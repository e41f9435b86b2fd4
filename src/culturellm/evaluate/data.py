"""Loading a task's examples from the release's `data/` folder, and the stratified `--limit` subsample."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from culturellm.errors import DataError
from culturellm.evaluate.tasks import Task
from culturellm.jsonio import numbered_jsonl
from culturellm.paths import package_data

MAX_TEXT_CHARS = 2000  # longer texts are cut (a documented bound on prompt length and memory)
SAMPLE_DIR_NAME = "release-sample"


def bundled_data_dir() -> Path:
    """The bundled 30-rows-per-file sample of the release (NOT the benchmark: for tries and tests)."""
    return package_data(SAMPLE_DIR_NAME)


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """The release's data/ folder; None means the bundled sample."""
    if data_dir is None:
        return bundled_data_dir()
    p = Path(data_dir).expanduser()
    if not p.is_dir():
        raise DataError(f"{p}: data directory not found (point --data-dir at the release's data/ folder)")
    if (p / "data").is_dir() and not any(p.glob("*/*/*.jsonl")):
        return p / "data"
    return p


def is_bundled_sample(data_dir: Path) -> bool:
    try:
        return data_dir.resolve() == bundled_data_dir().resolve()
    except OSError:
        return False


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # canonical label
    line: int  # 1-based line in the source file
    truncated: bool = False  # text cut to max_chars


@dataclass
class TaskData:
    task: Task
    path: Path
    examples: list[Example]
    skipped_empty: int  # rows whose label is empty/missing
    truncated: int  # texts cut to MAX_TEXT_CHARS
    total: int  # labelled rows before --limit


def _text(task: Task, row: dict, path: Path, line: int) -> str | None:
    parts = []
    for f in task.text_fields:
        v = row.get(f)
        if v is None:
            continue
        parts.append(str(v).strip())
    if not any(f in row for f in task.text_fields):
        raise DataError(
            f"{path}:{line}: no text field {' / '.join(task.text_fields)} (fields: {', '.join(row)}) "
            f"for task {task.name}"
        )
    text = "\n\n".join(p for p in parts if p)
    return text


def load_task(task: Task, data_dir: str | Path | None, max_chars: int = MAX_TEXT_CHARS) -> TaskData:
    """Read every labelled example of a task. Missing file, bad JSON, a missing text field or a label
    outside the task's label set raise DataError naming the file and line; rows with an empty label or
    a null/empty text are skipped and counted. The file must be UTF-8 (or carry a UTF-16/32 byte-order
    mark); Latin-1 and other encodings are a DataError naming the file and line."""
    root = resolve_data_dir(data_dir)
    path = root / task.path
    if not path.exists():  # a FIFO or a device is refused by the reader, by name
        raise DataError(f"{path}: file not found for task {task.name} (data dir {root})")
    examples: list[Example] = []
    skipped = truncated = 0
    for i, row in numbered_jsonl(path):
        raw = row.get(task.label_field)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            skipped += 1
            continue
        label = task.canonical_label(raw)
        if label is None:
            raise DataError(
                f"{path}:{i}: label {raw!r} is not in the label set of task {task.name} "
                f"(known spellings: {', '.join(task.label_map)}); add it to the task's map"
            )
        text = _text(task, row, path, i)
        if not text:  # "tweet": null or "": nothing to classify (skipped and counted, not scored as "")
            skipped += 1
            continue
        cut = len(text) > max_chars
        if cut:
            text = text[:max_chars]
            truncated += 1
        examples.append(Example(text=text, label=label, line=i, truncated=cut))
    if not examples:
        raise DataError(
            f"{path}: no labelled example for task {task.name} ({skipped} rows with an empty label or "
            "text skipped)"
        )
    return TaskData(task, path, examples, skipped, truncated, len(examples))


def stratified_sample(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """At most `limit` examples, each label's share kept (largest-remainder allocation, every label that
    is present keeps at least one example when limit allows), seeded; original order is kept."""
    if limit is None or limit >= len(examples):
        return list(examples)
    if limit <= 0:
        raise DataError(f"--limit must be positive, got {limit}")
    by: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by.setdefault(e.label, []).append(i)
    n = len(examples)
    labels = sorted(by)
    quota = {lab: limit * len(by[lab]) / n for lab in labels}
    take = {lab: int(quota[lab]) for lab in labels}
    if limit >= len(labels):
        for lab in labels:
            take[lab] = max(take[lab], 1)
    rest = limit - sum(take.values())
    order = sorted(labels, key=lambda lab: (-(quota[lab] - int(quota[lab])), lab))
    k = 0
    while rest > 0:
        lab = order[k % len(order)]
        if take[lab] < len(by[lab]):
            take[lab] += 1
            rest -= 1
        k += 1
    while rest < 0:  # the minimum-one rule overshot: trim the largest
        lab = max(labels, key=lambda x: (take[x], x))
        take[lab] -= 1
        rest += 1
    rng = random.Random(f"culturellm-limit-{seed}")
    chosen: list[int] = []
    for lab in labels:
        chosen += rng.sample(by[lab], take[lab])
    return [examples[i] for i in sorted(chosen)]
