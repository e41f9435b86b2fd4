"""`culturellm.json`: a small model reference that `chat`, `serve`, `evaluate` accept as a model spec.

A fine-tuned culture model is either a PEFT adapter directory on top of a base model spec, a merged
full model directory, or a remote model id (OpenAI fine-tuning API).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from culturellm.errors import DataError
from culturellm.jsonio import write_json

MODELREF_FILE = "culturellm.json"


class ModelRef(BaseModel):
    format: Literal["culturellm.modelref/1"] = "culturellm.modelref/1"
    kind: Literal["peft-adapter", "merged", "openai"]
    base: str = Field(description="base model spec the adapter/fine-tune was made from, e.g. 'bundled'")
    path: str | None = Field(default=".", description="adapter or merged model dir, relative to this file")
    model: str | None = Field(default=None, description="remote model id (kind=openai)")
    base_url: str | None = None
    cultures: list[str] = Field(default_factory=list)
    data_sha256: str | None = None
    extra: dict[str, object] = Field(default_factory=dict)

    def resolve_path(self, ref_file: Path) -> Path:
        return (ref_file.parent / (self.path or ".")).resolve()


def find_modelref(spec: str | Path) -> Path | None:
    """The culturellm.json a spec points at (the file itself or a directory holding it), else None."""
    p = Path(spec)
    if p.is_dir() and (p / MODELREF_FILE).is_file():
        return p / MODELREF_FILE
    if p.is_file() and p.name.endswith(".json"):
        return p
    return None


def read_modelref(path: str | Path) -> ModelRef:
    path = Path(path)
    try:
        return ModelRef.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: model reference not found") from None
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "(root)"
        raise DataError(f"{path}: invalid model reference, field '{field}': {first['msg']}") from None


def write_modelref(directory: str | Path, ref: ModelRef) -> Path:
    out = Path(directory) / MODELREF_FILE
    write_json(out, ref.model_dump(mode="json"))
    return out
