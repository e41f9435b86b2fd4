"""The registry of model spec kinds: register, parse, load.

Every kind is a `SpecKind`: a parser for its prefix or form, a loader, and, for a kind with local
weights, a `weights` hook that says which directory they are in (so a kind with local weights can be a
plugin: serving, fine-tuning and `load_local` ask the hook, never the kind's name). Kinds come from
entry points of the group `culturellm.spec_kinds`, each naming a `register_kinds(register)` function;
the built-in kinds are the first such entry point (`culturellm.llm.builtin_specs:register_kinds`),
loaded exactly as a plugin's is, so this module imports none of them. Kinds are tried in registration
order; a parser returns None for a spec that is not its own and raises one clear error for a spec that
is its own but wrong.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from culturellm.errors import CultureLLMError, UnknownNameError
from culturellm.llm.spec import ModelSpec

if TYPE_CHECKING:
    from culturellm.llm.backend import Backend

ENTRY_POINT_GROUP = "culturellm.spec_kinds"
BUILTIN = EntryPoint("builtin", "culturellm.llm.builtin_specs:register_kinds", ENTRY_POINT_GROUP)


@dataclass(frozen=True)
class SpecKind:
    """A kind of model spec: `parse(text)` -> ModelSpec or None (not this kind); `load(spec)` -> a
    `Backend`; `weights(spec)` -> the directory holding the spec's weights (None: no local weights);
    `forms`: one help line per accepted form; `resolve(spec)` -> the spec once its files are at hand
    (e.g. a Hub repo that turns out to be a PEFT adapter gets its `adapter` and `base`): asked by the
    loaders through `resolve_spec`, never by `parse`, which touches no network or cache."""

    name: str
    forms: tuple[str, ...]
    parse: Callable[[str], ModelSpec | None]
    load: Callable[[ModelSpec], Backend]
    weights: Callable[[ModelSpec], Path] | None = None
    resolve: Callable[[ModelSpec], ModelSpec] | None = None

    @property
    def local(self) -> bool:
        return self.weights is not None


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


def unregister_kind(name: str) -> None:
    with _LOCK:
        _KINDS.pop(name, None)


def spec_kinds() -> list[SpecKind]:
    """The registered kinds in the order they are tried (built-ins first, then plugins)."""
    with _LOCK:
        global _LOADED
        if not _LOADED:
            _LOADED = True
            BUILTIN.load()(register_kind)  # a failure here is a broken install: let it show
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                if ep.value != BUILTIN.value:
                    _load_plugin(ep)
        return list(_KINDS.values())


def _load_plugin(ep: EntryPoint) -> None:
    try:
        ep.load()(register_kind)
    except Exception as e:  # a broken plugin must not break every command
        warnings.warn(f"culturellm: spec plugin {ep.name!r} failed to load: {e}", stacklevel=3)


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
    """The one parse of a model spec (a ModelSpec is returned as it is, with `options` added). The
    parsed spec's `local` says whether its kind has local weights."""
    if isinstance(spec, ModelSpec):
        return spec.with_options(**options) if options else spec
    text = str(spec).strip()
    if not text:
        raise unknown_spec(text, "empty")
    for kind in spec_kinds():
        parsed = kind.parse(text)
        if parsed is not None:
            parsed = dataclasses.replace(parsed, local=spec_kind(parsed.kind).local)
            return parsed.with_options(**options) if options else parsed
    raise unknown_spec(text)


def resolve_spec(spec: ModelSpec) -> ModelSpec:
    """The spec as its kind's `resolve` hook completes it once its files are at hand (a Hub adapter
    repo: `adapter` and `base` filled in); a spec without such a hook, or already an adapter, as it is."""
    if spec.adapter is not None:
        return spec
    hook = spec_kind(spec.kind).resolve
    return hook(spec) if hook is not None else spec


def weights_dir(spec: ModelSpec) -> Path:
    """The directory of weights a parsed spec loads from, through its kind's `weights` hook (an
    adapter's: its base's)."""
    spec = resolve_spec(spec)
    if spec.adapter is not None and spec.base is not None:
        return weights_dir(spec.base)
    hook = spec_kind(spec.kind).weights
    if hook is None:
        where = f"{spec.source}: a remote model" if spec.source else f"'{spec.text}' is a remote model"
        raise CultureLLMError(f"{where}: it has no local weights")
    return hook(spec)


def load_backend(spec: ModelSpec) -> Backend:
    """The backend of a parsed spec, through its kind's loader (uncached; see `load_model`)."""
    return spec_kind(spec.kind).load(spec)
