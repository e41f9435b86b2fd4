"""EvaluateConfig and AlignConfig: the options of the evaluation and alignment stages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from culturellm.settings import Flag, StageConfig, Unkeyed

Mode = Literal["score", "generate"]
Calibration = Literal["contextual", "none"]


# Fields that select what runs, not what a result row holds: outside the rows' resume key.
SELECTS = Unkeyed("selects tasks or model variants; each row's key has its own task and variant")
FORGETTING = Unkeyed("the forgetting check: general.jsonl rows carry their own key")


class EvaluateConfig(StageConfig):
    """How models are evaluated on the culture tasks (`culturellm evaluate`, the run's evaluate stage).
    Each field is a flag of `culturellm evaluate` and part of a result row's resume key unless marked
    Unkeyed (culturellm.settings; docs/architecture.md, "How to add a stage option")."""

    data_dir: Annotated[Path | None, Unkeyed("keyed as the resolved data directory")] = Field(
        None, description="the release's data/ folder (None: bundled 30-row sample)"
    )
    limit: int | None = Field(None, ge=1, description="examples per task (stratified, seeded); None = all")
    tasks: Annotated[list[str] | None, Flag("--task"), SELECTS] = Field(
        None, description="only these tasks, full or short name (repeatable; None: all of the culture's)"
    )
    mode: Mode = Field("score", description="score (label log-probs) or generate (parse replies)")
    calibration: Calibration = Field(
        "contextual", description="score mode: divide out the label prior on content-free texts, or none"
    )
    temperature: float | None = Field(
        None, ge=0.0, description="generate mode: temperature (None: 0.7, the paper's; 0 = greedy)"
    )
    max_tokens: int | None = Field(None, ge=1, description="generate mode: new tokens (None: 200)")
    baselines: Annotated[bool, SELECTS] = Field(
        False, description="also evaluate each model with the culture system prompt"
    )
    seed: int = Field(0, description="seed of the stratified sample and of sampling")
    general: Annotated[list[str] | None, FORGETTING] = Field(
        None,
        description="forgetting check: lm-eval tasks (mmlu, hellaswag, arc_easy, gsm8k) or local task "
        "directories, run on each base model and its culture models (repeatable or comma-separated)",
    )
    general_limit: Annotated[int | None, FORGETTING] = Field(
        None, ge=1, description="documents per general task (None: all)"
    )


class AlignConfig(StageConfig):
    """WVS alignment of a run's models: on held-out items when the split holds enough."""

    min_heldout: int = Field(
        5,
        ge=1,
        description="align on held-out items when the split has at least this many, else on all seeds",
    )
    retrieve: int | None = Field(
        None,
        ge=1,
        description="also align base+retrieval and culturellm+retrieval: the culture prompt plus the "
        "culture's survey answers to the K training seed questions nearest each asked one "
        "(culturellm.evaluate.retrieval; None: no retrieval baseline)",
    )
