"""Semantic data augmentation (paraphrase -> filter -> synonym swap -> filter [-> translation]) and
the import of a published augmented set. See docs/augmentation.md. What a rewording means is judged
in `culturellm.meaning`; training sets are built in `culturellm.dataset`.

    from culturellm.augment import AugmentConfig, augment

Names are imported lazily, so `culturellm --help` and other commands do not pay for scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AugmentConfig": "culturellm.augment.config",
    "augment": "culturellm.augment.run",
    "read_complete": "culturellm.augment.state",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'culturellm.augment' has no attribute {name!r}")
