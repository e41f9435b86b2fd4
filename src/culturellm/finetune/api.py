"""`finetune()`: one call from training data to a model reference, through the configured backend
(`culturellm.finetune.backends`; the local one resumes as `culturellm.finetune.local_run` says)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from culturellm.finetune.backends import check_records, get_backend
from culturellm.finetune.config import FinetuneConfig
from culturellm.finetune.data import cultures_in, data_sha256, load_records
from culturellm.finetune.local_run import MODEL_FILES, STATE_FILE, SUMMARY_FILE

__all__ = ["MODEL_FILES", "STATE_FILE", "SUMMARY_FILE", "finetune"]


def _as_paths(data: Path | str | Sequence[Path | str]) -> list[Path]:
    if isinstance(data, str | Path):
        return [Path(data)]
    return [Path(p) for p in data]


def finetune(
    data: Path | Sequence[Path],
    base: str,
    out: Path,
    config: FinetuneConfig | None = None,
    progress: bool = True,
    *,
    cultures: Sequence[str] | None = None,
    console: Console | None = None,
) -> Path:
    """Fine-tune `base` on the chat JSONL file(s) `data`; return the path of DIR/culturellm.json.

    Several data files are concatenated (CultureLLM-One: the union of the cultures' sets).
    `cultures` overrides the culture names otherwise parsed from the system prompts.
    """
    config = config or FinetuneConfig()
    backend = get_backend(config.backend)
    paths = _as_paths(data)
    records = load_records(paths)
    check_records(backend.name, records)  # before anything is written or uploaded
    names = [c.lower() for c in cultures] if cultures else cultures_in(records)
    return backend.run(
        records,
        base,
        Path(out),
        config,
        paths=paths,
        data_sha=data_sha256(paths),
        cultures=names,
        progress=progress,
        console=console or Console(stderr=True),
    )
