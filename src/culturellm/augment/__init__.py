"""Semantic data augmentation (paraphrase -> filter -> synonym swap -> filter [-> translation]) and
training-set building. See docs/augmentation.md.

    from culturellm.augment import AugmentConfig, augment, build_training_set
"""

from __future__ import annotations

from culturellm.augment.config import AugmentConfig
from culturellm.augment.dataset import build_training_set, split_manifest_path
from culturellm.augment.pipeline import augment, read_complete

__all__ = ["AugmentConfig", "augment", "build_training_set", "read_complete", "split_manifest_path"]
