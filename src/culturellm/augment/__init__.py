"""Semantic data augmentation (paraphrase -> filter -> synonym swap -> filter [-> translation]) and
training-set building. See docs/augmentation.md.

    from culturellm.augment import AugmentConfig, augment, build_training_set

Names are imported lazily, so `culturellm --help` and other commands do not pay for scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AugmentConfig": "culturellm.augment.config",
    "augment": "culturellm.augment.run",
    "read_complete": "culturellm.augment.state",
    "build_training_set": "culturellm.augment.dataset",
    "split_manifest_path": "culturellm.augment.dataset",
    "read_split": "culturellm.augment.dataset",
    "Split": "culturellm.augment.dataset",
    "DatasetConfig": "culturellm.augment.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'culturellm.augment' has no attribute {name!r}")
