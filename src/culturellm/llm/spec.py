"""Model specs: what a user names a model with, parsed once (`culturellm.llm.registry.parse_spec`) into
a `ModelSpec`, a plain value every loader takes.

    parse_spec("bundled")              ModelSpec(kind="bundled", name="bundled", local=True)
    parse_spec("hf:/models/llama")     ModelSpec(kind="hf", path=/models/llama, local=True)
    parse_spec("runs/x/models/arabic") ModelSpec(kind="dir", adapter=..., base=ModelSpec(kind="bundled"))
    parse_spec("openai:gpt-4o-mini")   ModelSpec(kind="openai", name="gpt-4o-mini")
    parse_spec("fake:demo")            ModelSpec(kind="fake", name="demo")

This module imports nothing of the model layer: the registry, the loaders and the backends depend on
it, never the other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """One parsed model spec.

    text: the spec as written (the model's name in outputs and cache keys); kind: the registered spec
    kind that loads it; name: a model name (bundled name, remote model, Hub repo id, fake name);
    path: a local weights directory; revision: a Hub revision; base: the spec an adapter is trained on;
    adapter: a PEFT adapter directory; base_url: the server of a remote model; source: the
    culturellm.json it was read from; local: whether the model has local weights (can be served,
    fine-tuned, loaded with transformers), set by the parser from its kind; options: load options
    (`dtype`, `device`, `device_map`, `batch_size`... for local models; `concurrency`, `timeout`...
    for remote ones).
    """

    text: str
    kind: str
    name: str | None = None
    path: Path | None = None
    revision: str | None = None
    base: ModelSpec | None = None
    adapter: Path | None = None
    base_url: str | None = None
    source: Path | None = None
    local: bool = False
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def with_options(self, **options: Any) -> ModelSpec:
        return dataclasses.replace(self, options={**self.options, **options})
