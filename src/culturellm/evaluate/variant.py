"""What every evaluation compares and reports, shared by the task evaluation (runner), the WVS
alignment (align) and the forgetting check: a model variant (a model spec, how it is loaded and its
system message) and how a set of rows was scored. Imports nothing of culturellm.evaluate, so the
modules that use it depend on it one way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from culturellm.errors import DataError
from culturellm.llm.access import ModelAccess
from culturellm.llm.base import ChatModel
from culturellm.regularfiles import read_input

RETRIEVE = "retrieve:"  # --context retrieve:K


@dataclass(frozen=True)
class Retrieval:
    """A system message per asked question (culturellm.evaluate.retrieval): the culture prompt and the
    culture's survey answers to the `k` training seed questions nearest to it (`embedder`, cosine)."""

    k: int
    embedder: str = "bundled"

    @classmethod
    def parse(cls, value: str, embedder: str = "bundled") -> Retrieval:
        """`retrieve:K` (K >= 1); a bad K is a DataError naming the option."""
        k = value.removeprefix(RETRIEVE)
        if not k.isdigit() or int(k) < 1:
            raise DataError(f"--context {value}: K of retrieve:K must be a whole number >= 1")
        return cls(int(k), embedder)

    def describe(self) -> str:
        return f"culture+{RETRIEVE}{self.k}"


System = Literal["culture"] | Path | Retrieval | None


@dataclass(frozen=True)
class ModelVariant:
    """A model as compared in a report: `label` (its name in tables), `spec` (a `load_model` spec) and
    `system`: None (no system message), "culture" (culturellm.prompts.culture_system_prompt of the
    evaluated culture), a Path to a text file whose content is the system message (a culture
    context paragraph), or a Retrieval ("retrieve:K": the culture prompt plus the culture's survey
    answers to the K training questions nearest each asked one; WVS alignment only). `access` is how
    it is loaded (`load()`): the command's or run's endpoint and placement
    (`culturellm.llm.access.ModelAccess`)."""

    label: str
    spec: str
    system: System = None
    access: ModelAccess = field(default_factory=ModelAccess)

    def load(self) -> ChatModel:
        """The ChatModel (loaded once per process and set of load options)."""
        from culturellm.llm import load_model

        return load_model(self.spec, self.access)

    def __post_init__(self) -> None:
        if isinstance(self.system, str) and self.system.startswith(RETRIEVE):
            object.__setattr__(self, "system", Retrieval.parse(self.system))
        elif isinstance(self.system, str) and self.system != "culture":
            object.__setattr__(self, "system", Path(self.system))

    def system_prompt(self, culture: str) -> str | None:
        """The system message for `culture` (None: none; a Retrieval: its culture prompt, to which the
        alignment adds each asked question's retrieved answers)."""
        if self.system is None:
            return None
        if self.system == "culture" or isinstance(self.system, Retrieval):
            from culturellm.cultures import get_culture
            from culturellm.prompts import culture_system_prompt

            return culture_system_prompt(get_culture(culture).display)
        path = Path(self.system)
        try:
            text = read_input(path, "text").decode("utf-8").strip()
        except FileNotFoundError:
            raise DataError(f"{path}: context file not found (model {self.label})") from None
        if not text:
            raise DataError(f"{path}: context file is empty (model {self.label})")
        return text

    def describe_system(self) -> str:
        if self.system is None:
            return "none"
        if self.system == "culture":
            return "culture"
        if isinstance(self.system, Retrieval):
            return self.system.describe()
        return f"context:{self.system}"


def variant_from(
    spec_or_variant: ModelVariant | str, system: System = None, access: ModelAccess | None = None
) -> ModelVariant:
    """A ModelVariant as given, or one for a bare spec (labelled by the spec) with `system`."""
    if isinstance(spec_or_variant, ModelVariant):
        return spec_or_variant
    return ModelVariant(str(spec_or_variant), str(spec_or_variant), system, access or ModelAccess())


def scoring_summary(methods: Iterable[str]) -> str:
    """How a set of rows was scored: one method ("exact"), or the counts of each ("exact 3, parse 1")."""
    counts = Counter(methods)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{m} {n}" for m, n in sorted(counts.items()))
