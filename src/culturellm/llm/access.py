"""`ModelAccess`: how every model of a command or a run is reached and placed, one value.

The endpoint (`base_url`, the environment variable holding the API key, `timeout`, the response
`cache`) and the placement of local models (`device`, `dtype`, `batch_size`). `load_model(spec,
access=...)` applies it: the endpoint to remote specs, the placement beneath a local spec's own
options. A run's `[models]` table is these fields plus the run's model specs (`config.ModelsConfig`);
a command offers them as flags in two panels, `Endpoint` and `Placement` (the same fields, taken
from here), and hands the value on (`ModelVariant.access`, `Run.access`): there is no other channel
(no process-wide default, no environment variable but the API key's).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from culturellm.llm.placement import BATCH_HELP, DEVICE_HELP, DTYPE_HELP, Device, Dtype
from culturellm.redact import check_url
from culturellm.settings import StageConfig

ENDPOINT = ("base_url", "api_key_env", "timeout", "cache")
PLACEMENT = ("device", "dtype", "batch_size")


class ModelAccess(StageConfig):
    """How models are reached (remote specs) and placed (local specs); see the module docstring.
    Frozen: a value, part of a ModelVariant."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    base_url: Annotated[str | None, AfterValidator(lambda u: None if u is None else check_url(u))] = Field(
        None, description="OpenAI-compatible server (openai:MODEL specs)"
    )
    api_key_env: str | None = Field(
        None, description="environment variable holding the API key of openai:MODEL (None: OPENAI_API_KEY)"
    )
    timeout: float | None = Field(
        None, gt=0, description="seconds per HTTP attempt for openai:MODEL (default 120)"
    )
    cache: bool = Field(True, description="use the response cache")
    device: Device | None = Field(None, description=DEVICE_HELP)
    dtype: Dtype | None = Field(None, description=DTYPE_HELP)
    batch_size: int | None = Field(None, ge=1, description=BATCH_HELP)

    def api_key(self) -> str | None:
        """The key from `api_key_env` (None: the backend's own default, OPENAI_API_KEY)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def placement(self) -> dict[str, Any]:
        """The local load options given (device, dtype, batch_size; unset ones left out)."""
        return {k: v for k in PLACEMENT if (v := getattr(self, k)) is not None}


def access_fields(*names: str) -> dict[str, tuple[Any, FieldInfo]]:
    """ModelAccess's fields (all, or `names`) for `pydantic.create_model`: a class that offers them
    (the flag panels, a run's [models]) takes them from here, so each is written once."""
    fields = ModelAccess.model_fields
    return {n: (fields[n].annotation, fields[n]) for n in names or fields}


Endpoint = create_model(
    "Endpoint",
    __base__=StageConfig,
    __doc__="How a command's models are reached (ModelAccess's endpoint fields, as flags).",
    **access_fields(*ENDPOINT),
)
Placement = create_model(
    "Placement",
    __base__=StageConfig,
    __doc__="Where and how a command's local models run (ModelAccess's placement fields, as flags).",
    **access_fields(*PLACEMENT),
)


def access_of(*parts: StageConfig | None) -> ModelAccess:
    """One ModelAccess from flag panels or a config that hold some of its fields."""
    values: dict[str, Any] = {}
    for part in parts:
        if part is not None:
            values.update({k: v for k, v in part.model_dump().items() if k in ModelAccess.model_fields})
    return ModelAccess(**values)
