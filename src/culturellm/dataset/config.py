"""DatasetConfig: the answer targets and the held-out split of a training set (docs/augmentation.md)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from culturellm.dataset.targets import get_target
from culturellm.errors import UnknownNameError
from culturellm.settings import Flag, StageConfig

Weight = Literal["none", "verifier"]


class DatasetConfig(StageConfig):
    """Configuration of `build_training_set()`: answer targets and the held-out split."""

    RENAMED: ClassVar[dict[str, str]] = {"temperature": "sharpen_temperature"}

    target: str = Field(
        "sharpened",
        description="sharpened (default: soft labels sharpened, distribution ** (1 / sharpen_temperature) "
        "renormalised; the frontier point closest to both agreement and distribution, docs/results.md), "
        "distribution (soft labels: local training learns the survey distribution), "
        "majority (the paper), sampled (hard codes drawn to follow the distribution: for the OpenAI "
        "fine-tuning API), mixed (soft labels plus a majority term: (1 - w) * distribution + w * "
        "one-hot majority, w = majority_weight), or a registered target (culturellm.dataset.targets)",
    )
    majority_weight: float = Field(
        0.25, ge=0.0, le=1.0, description="target mixed: weight w of the one-hot majority answer"
    )
    sharpen_temperature: float = Field(
        0.5,
        gt=0.0,
        le=10.0,
        description="target sharpened: temperature T of the survey distribution (below 1 sharpens; "
        "not a sampling temperature; `temperature`, its old name, still works with a warning)",
    )
    holdout_questions: int = Field(0, ge=0, description="whole seed questions held out of training")
    holdout_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="fraction of seed questions held out (with holdout_questions)"
    )
    holdout_variants: float = Field(
        0.0, ge=0.0, lt=1.0, description="fraction of each question's variants held out for alignment"
    )
    seed: int = Field(0, description="random seed of the split and of sampled targets")
    drop_rejected: Annotated[bool, Flag(off="--keep-rejected")] = Field(
        False, description="leave out the samples reviewers rejected (culturellm review; reviews.jsonl)"
    )
    weight: Weight = Field(
        "none",
        description="per-example loss weight written into each training row: none (every example "
        "weighs 1, no weight column), verifier (a rewording weighs the meaning gate's P(faithful), "
        "1 - p_changed: its record's, written by the gate (import_filter verifier or scored), else the "
        "verdicts.jsonl's beside the augmented set; seed wordings weigh 1). Local training only",
    )

    @field_validator("target")
    @classmethod
    def _known_target(cls, name: str) -> str:
        try:
            get_target(name)
        except UnknownNameError as e:
            raise ValueError(str(e)) from None
        return name
