"""Run configuration for `culturellm run`: the models and one section per stage, each section that
stage's own config class (AugmentConfig, DatasetConfig, FinetuneConfig, EvaluateConfig, AlignConfig),
so a run TOML can set any option a stage has. Loaded with the one precedence rule of
culturellm.settings (defaults < preset < TOML < flags) and written back with every field shown
(runs/<name>/config.toml), so a run is reproducible from its directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import tomli_w
from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from culturellm.augment.config import AugmentConfig
from culturellm.dataset.config import DatasetConfig
from culturellm.evaluate.config import AlignConfig, EvaluateConfig
from culturellm.finetune.config import FinetuneConfig
from culturellm.hashing import stable_hash
from culturellm.jsonio import atomic_write_text
from culturellm.llm.access import ModelAccess, access_fields, access_of
from culturellm.names import RULE, is_safe_name
from culturellm.settings import Layer, StageConfig, load_toml, resolve
from culturellm.share.config import PushConfig


class _Models(StageConfig):
    """The run's model specs; `ModelsConfig` adds ModelAccess's fields (one [models] table)."""

    base: str = Field("bundled", description="model to fine-tune and evaluate (spec)")
    augmenter: str = Field("bundled", description="LLM that writes paraphrases and synonyms (spec)")
    embedder: str = Field("bundled", description="sentence embedder for the similarity filters")

    @property
    def access(self) -> ModelAccess:
        """How every model of the run is reached and placed (culturellm.llm.access)."""
        return access_of(self)


# [models]: the specs, then how every model of the run is reached and placed (ModelAccess's fields,
# written once in culturellm.llm.access: a new access option is one field there).
ModelsConfig = create_model("ModelsConfig", __base__=_Models, **access_fields())


# Stage sections that take the run's seed unless the TOML sets their own.
SEEDED = ("augment", "dataset", "finetune", "evaluate")

# The run presets: values beneath the TOML's. `demo` (the default) keeps the embedded demo within
# minutes on a laptop CPU; `full` is each stage's own defaults, for real runs.
RUN_PRESETS: dict[str, dict[str, Any]] = {
    "demo": {
        "augment": {"n": 1, "m": 2, "limit_seeds": 16, "retries": 1},
        "dataset": {"holdout_variants": 0.5},
        "evaluate": {"limit": 10, "baselines": True},
    },
    "full": {"evaluate": {"baselines": True}},
}


RunPreset = Literal["demo", "full"]
TrainSets = Literal["all", "cultures", "one"]


class RunConfig(StageConfig):
    """`culturellm run`: the models, and one section per stage holding that stage's own config."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = RUN_PRESETS

    name: str = "run"
    preset: RunPreset = Field(
        "demo", description="demo: small sizes for a laptop CPU; full: every stage's own defaults"
    )
    cultures: list[str] = Field(default_factory=lambda: ["arabic"])
    seed: int = Field(0, description="random seed of every stage (unless a stage sets its own)")
    train: TrainSets = Field(
        "all",
        description="with several cultures, the models trained: all (each culture's and CultureLLM-One), "
        "cultures (each culture's only) or one (CultureLLM-One only)",
    )
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    align: AlignConfig = Field(default_factory=AlignConfig)
    push: PushConfig = Field(default_factory=PushConfig)

    @model_validator(mode="before")
    @classmethod
    def _compose(cls, data: Any) -> Any:
        """Earlier layouts still load; each stage gets the run's seed unless it sets its own."""
        if not isinstance(data, dict):
            return data
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
        ev = data.get("evaluate")
        if isinstance(ev, dict) and "align_min_heldout" in ev:  # before [align] existed
            data["align"] = {"min_heldout": ev.pop("align_min_heldout"), **(data.get("align") or {})}
        seed = data.get("seed", 0)
        for name in SEEDED:
            section = data.setdefault(name, {})
            if isinstance(section, dict):
                section.setdefault("seed", seed)
        return data

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        """The run name becomes runs/<name>: one safe-name rule (culturellm.names)."""
        if not is_safe_name(value):
            raise ValueError(f"the run name must be a safe name ({RULE})")
        return value

    def to_toml(self) -> str:
        """Every field of every section: set values as TOML, unset (None) ones as comments."""
        return render_toml(self)

    def without_credentials(self) -> RunConfig:
        """The config as stored in the run directory: no user name or password in the base URL."""
        from culturellm.redact import redact_url

        url = self.models.base_url
        if not url or redact_url(url) == url:
            return self
        return self.model_copy(
            update={"models": self.models.model_copy(update={"base_url": redact_url(url)})}
        )

    def section_hash(self, *sections: str) -> str:
        """A stable hash of some sections (a stage's inputs), to decide whether it must rerun."""
        dump = self.model_dump(mode="json")
        return stable_hash({s: dump[s] for s in sections})


def render_toml(config: BaseModel) -> str:
    """TOML of a config with every field shown: unset (None) fields, which TOML cannot hold, are
    written as comments with their description, so the file lists every option of every stage."""
    dump = config.model_dump(mode="json")
    top = {k: v for k, v in dump.items() if not isinstance(v, dict)}
    text = _toml_table(top, type(config))
    for key, value in dump.items():
        if isinstance(value, dict):
            sub = type(getattr(config, key))
            text += f"\n[{key}]\n" + _toml_table(value, sub)
    return text


def _toml_table(values: dict[str, Any], cls: type[BaseModel]) -> str:
    lines = []
    for key, value in values.items():
        if value is None:
            info = cls.model_fields.get(key)
            why = f"  ({info.description})" if info is not None and info.description else ""
            lines.append(f"# {key} = (unset){why}")
        else:
            lines.append(tomli_w.dumps({key: value}).rstrip("\n"))
    return "\n".join(lines) + "\n"


def load_config(path: str | Path, overrides: Layer | None = None) -> RunConfig:
    """A run configuration: defaults < preset < the TOML file < `overrides` (command-line flags).
    A bad field is a DataError naming the file (or flag) and the field."""
    return resolve(RunConfig, load_toml(path), overrides)


def save_config(config: RunConfig, path: str | Path) -> None:
    atomic_write_text(path, config.to_toml())
