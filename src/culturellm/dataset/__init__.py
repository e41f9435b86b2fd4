"""The dataset stage: augmented questions x a culture's survey answers -> a chat fine-tuning JSONL
with its held-out split (`build`), the answer targets and split options (`config`), `culturellm
dataset` (`cli`). See docs/augmentation.md.

    from culturellm.dataset import DatasetConfig, build_training_set, read_split
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DatasetConfig": "culturellm.dataset.config",
    "build_training_set": "culturellm.dataset.build",
    "split_manifest_path": "culturellm.runlayout",
    "read_split": "culturellm.dataset.build",
    "read_augmented": "culturellm.dataset.build",
    "Split": "culturellm.dataset.build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'culturellm.dataset' has no attribute {name!r}")
