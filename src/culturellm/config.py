"""Run configuration for `culturellm run`: one pydantic model, loaded from TOML, written back with
every default filled in (runs/<name>/config.toml), so a run is reproducible from its directory."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from culturellm.errors import DataError
from culturellm.hashing import stable_hash
from culturellm.jsonio import atomic_write_text


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelsConfig(_Section):
    base: str = Field("bundled", description="model to fine-tune and evaluate (spec)")
    augmenter: str = Field("bundled", description="LLM that writes paraphrases and synonyms (spec)")
    embedder: str = Field("bundled", description="sentence embedder for the similarity filters")
    base_url: str | None = Field(None, description="base URL for openai:MODEL specs (else OPENAI_BASE_URL)")
    cache: bool = Field(True, description="use the response cache for every LLM call")


class AugmentSection(_Section):
    """Defaults keep the embedded demo within minutes on a laptop CPU; raise them for real runs."""

    n: int = Field(1, ge=1, description="paraphrases kept per seed (step 1)")
    m: int = Field(2, ge=0, description="synonym variants kept per seed (step 2), spread over paraphrases")
    limit_seeds: int | None = Field(
        16, ge=1, description="augment only the first N seed questions (None: all)"
    )
    retries: int | None = Field(1, ge=0, description="re-asks for seeds short of n (None: module default)")
    t1: float | None = Field(None, description="paraphrase similarity threshold (None: the module default)")
    t2: float | None = Field(None, description="synonym-variant similarity threshold (None: default)")


class DatasetSection(_Section):
    target: Literal["majority", "distribution"] = "majority"
    holdout_questions: int = Field(0, ge=0, description="whole seed questions held out of training")
    holdout_variants: float = Field(
        0.5, ge=0.0, lt=1.0, description="fraction of each question's variants held out for alignment"
    )


class FinetuneSection(_Section):
    preset: str = "cpu-small"
    epochs: float | None = None
    lr: float | None = None
    max_steps: int | None = None
    batch_size: int | None = None


class EvaluateSection(_Section):
    data_dir: Path | None = Field(
        None, description="the release's data/ folder (None: bundled 30-row sample)"
    )
    limit: int | None = Field(10, ge=1, description="examples per task (stratified, seeded); None = all")
    mode: Literal["score", "generate"] = "score"
    calibration: Literal["contextual", "none"] = Field(
        "contextual", description="score mode: divide out the label prior on content-free texts"
    )
    temperature: float | None = Field(
        None, ge=0.0, description="generate mode: temperature (None: 0.7, the paper's; 0 = greedy)"
    )
    max_tokens: int | None = Field(None, ge=1, description="generate mode: new tokens (None: 200)")
    baselines: bool = Field(True, description="also evaluate base + culture system prompt")
    tasks: list[str] | None = Field(None, description="only these task names (None: all of the culture's)")
    align_min_heldout: int = Field(
        5,
        ge=1,
        description="align on held-out items when the split has at least this many, else on all seeds",
    )


class RunConfig(_Section):
    name: str = "run"
    cultures: list[str] = Field(default_factory=lambda: ["arabic"])
    seed: int = 0
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    augment: AugmentSection = Field(default_factory=AugmentSection)
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    finetune: FinetuneSection = Field(default_factory=FinetuneSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)

    def to_toml(self) -> str:
        data = json.loads(self.model_dump_json(exclude_none=True))
        return tomli_w.dumps(data)

    def section_hash(self, *sections: str) -> str:
        """A stable hash of some sections (a stage's inputs), to decide whether it must rerun."""
        dump = self.model_dump(mode="json")
        return stable_hash({s: dump[s] for s in sections})


def load_config(path: str | Path) -> RunConfig:
    """Read a run configuration from TOML; a bad field is a DataError naming the file and the field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{path}: not valid TOML ({e})") from None
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(root)"
        raise DataError(f"{path}: field '{field}': {err['msg']}") from None


def save_config(config: RunConfig, path: str | Path) -> None:
    atomic_write_text(path, config.to_toml())
