"""Model specs: what a user names a model with, parsed once into a `ModelSpec`, and the registry of
spec kinds that parses and loads them.

    parse_spec("bundled")              ModelSpec(kind="bundled", name="bundled")
    parse_spec("hf:/models/llama")     ModelSpec(kind="hf", path=/models/llama)
    parse_spec("runs/x/models/arabic") ModelSpec(kind="dir", adapter=..., base=ModelSpec(kind="bundled"))
    parse_spec("openai:gpt-4o-mini")   ModelSpec(kind="openai", name="gpt-4o-mini")
    parse_spec("fake:demo")            ModelSpec(kind="fake", name="demo")

Every kind is a `SpecKind` (a parser for its prefix or form, a loader, whether it has local weights).
The built-in kinds are registered by `culturellm.llm.builtin_specs.register_kinds(register)`, exactly
as a plugin registers its own: a package that declares an entry point in the group
`culturellm.spec_kinds` pointing at a `register_kinds(register)` function adds kinds (a prefix such as
`vllm:`) without touching this package. Kinds are tried in registration order; a parser returns None
for a spec that is not its own and raises one clear error for a spec that is its own but wrong.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from culturellm.errors import CultureLLMError, UnknownNameError

if TYPE_CHECKING:
    from culturellm.llm.backend import Backend

ENTRY_POINT_GROUP = "culturellm.spec_kinds"


@dataclass(frozen=True)
class ModelSpec:
    """One parsed model spec.

    text: the spec as written (the model's name in outputs and cache keys); kind: the registered
    `SpecKind` that loads it; name: a model name (bundled name, remote model, Hub repo id, fake name);
    path: a local weights directory; revision: a Hub revision; base: the spec an adapter is trained on;
    adapter: a PEFT adapter directory; base_url: the server of a remote model; source: the
    culturellm.json it was read from; options: load options (`dtype`, `device`, `device_map`,
    `batch_size`... for local models; `concurrency`, `timeout`... for remote ones).
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
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def local(self) -> bool:
        """Whether the model has local weights (can be served, fine-tuned, loaded with transformers)."""
        return spec_kind(self.kind).local

    def with_options(self, **options: Any) -> ModelSpec:
        return dataclasses.replace(self, options={**self.options, **options})


@dataclass(frozen=True)
class SpecKind:
    """A kind of model spec: `parse(text)` -> ModelSpec or None (not this kind); `load(spec)` -> a
    `Backend`; `local`: has local weights; `forms`: one help line per accepted form."""

    name: str
    forms: tuple[str, ...]
    parse: Callable[[str], ModelSpec | None]
    load: Callable[[ModelSpec], Backend]
    local: bool = False


_KINDS: dict[str, SpecKind] = {}
_LOADED = False
_LOCK = threading.RLock()


def register_kind(kind: SpecKind, *, before: str | None = None) -> None:
    """Add (or replace) a spec kind; `before`: try it before that kind (e.g. before "dir", the
    catch-all for directories)."""
    with _LOCK:
        _KINDS.pop(kind.name, None)
        if before is None or before not in _KINDS:
            _KINDS[kind.name] = kind
            return
        items = list(_KINDS.items())
        at = [n for n, _ in items].index(before)
        items.insert(at, (kind.name, kind))
        _KINDS.clear()
        _KINDS.update(items)


def spec_kinds() -> list[SpecKind]:
    """The registered kinds in the order they are tried (built-ins first, then plugins)."""
    with _LOCK:
        global _LOADED
        if not _LOADED:
            _LOADED = True
            from culturellm.llm.builtin_specs import register_kinds

            register_kinds(register_kind)
            _load_plugins()
        return list(_KINDS.values())


def _load_plugins() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()(register_kind)
        except Exception as e:  # a broken plugin must not break every command
            import warnings

            warnings.warn(f"culturellm: spec plugin {ep.name!r} failed to load: {e}", stacklevel=2)


def spec_kind(name: str) -> SpecKind:
    for kind in spec_kinds():
        if kind.name == name:
            return kind
    raise CultureLLMError(f"no model spec kind '{name}' is registered")


def spec_forms() -> list[str]:
    return [form for kind in spec_kinds() for form in kind.forms]


def unknown_spec(spec: str, why: str = "") -> UnknownNameError:
    forms = "; ".join(spec_forms())
    return UnknownNameError(f"unknown model spec '{spec}'{': ' + why if why else ''}. Valid forms: {forms}")


def parse_spec(spec: str | Path | ModelSpec, **options: Any) -> ModelSpec:
    """The one parse of a model spec (a ModelSpec is returned as it is, with `options` added)."""
    if isinstance(spec, ModelSpec):
        return spec.with_options(**options) if options else spec
    text = str(spec).strip()
    if not text:
        raise unknown_spec(text, "empty")
    for kind in spec_kinds():
        parsed = kind.parse(text)
        if parsed is not None:
            return parsed.with_options(**options) if options else parsed
    raise unknown_spec(text)


def load_backend(spec: ModelSpec) -> Backend:
    """The backend of a parsed spec, through its kind's loader (uncached; see `load_model`)."""
    return spec_kind(spec.kind).load(spec)
