"""The one configuration mechanism of culturellm.

- `StageConfig`: base class of every stage's config (augment, dataset, finetune, evaluate, align) and
  of the run config that composes them. Unknown fields are errors; a class with `PRESETS` fills the
  values of its `preset` field beneath the values given (a preset replaces the defaults, never a
  value set in a file or a flag).
- One precedence rule, defaults < preset < TOML < flags, applied by `resolve(cls, *layers)`: each
  `Layer` is one source (a TOML file, the command-line flags); later layers win, nested tables merge,
  a flag left unset (None) is not a value.
- A bad value is one line naming the file (through culturellm.errors.validation_message, the one
  pydantic-error formatter) or the flag, and the field: a DataError (the CLI prints it, exit 2).
- A field is written once: its name, type, default and `description` make its command-line flag
  (culturellm.config_cli); `Flag(...)` in its `Annotated` type only when the flag is not
  `--field-name` (a short alias, a bool's off switch, text parsed into the value). Every field is
  part of the stage's resume key / fingerprint (`StageConfig.keyed()`) unless it is marked
  `Unkeyed(why)`: a new field changes the key by construction.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.fields import FieldInfo

from culturellm.errors import DataError, one_line, validation_message
from culturellm.jsonio import read_text

FLAGS = "flags"  # Layer.source of command-line flags
T = TypeVar("T")


@dataclass(frozen=True, init=False)
class Flag:
    """How a config field is spelled on the command line, in its `Annotated` type, when not
    `--field-name`: `names` (e.g. "--question", "-q"), `off` (a bool's off switch, default
    --no-NAME), `parse` (the flag takes text, turned into the field's value, e.g. a comma list) and
    `none` (no flag at all: the stage's command does not use the field, a run's TOML sets it)."""

    names: tuple[str, ...]
    off: str | None
    parse: Callable[[str], Any] | None
    none: bool

    def __init__(
        self,
        *names: str,
        off: str | None = None,
        parse: Callable[[str], Any] | None = None,
        none: bool = False,
    ) -> None:
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "off", off)
        object.__setattr__(self, "parse", parse)
        object.__setattr__(self, "none", none)


@dataclass(frozen=True)
class Unkeyed:
    """Marks a config field (in its `Annotated` type) that does not change what the stage writes
    (which items run, progress, run control): left out of `StageConfig.keyed()`; `why` says why."""

    why: str


def marker(info: FieldInfo, kind: type[T]) -> T | None:
    """The `kind` marker (Flag, Unkeyed) in a pydantic field's metadata, if any."""
    return next((m for m in info.metadata if isinstance(m, kind)), None)


class StageConfig(BaseModel):
    """Base of every stage config: strict fields, optional named presets."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # every number finite

    # preset name -> field values (nested tables for a composed config); empty: no `preset` field
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    # old field name -> new one: a TOML (or Python) value under the old name still works, with one
    # warning line on stderr naming the new name; both at once is an error
    RENAMED: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        old = [k for k in cls.RENAMED if k in data] if isinstance(data, Mapping) else []
        if not old:
            return data
        data = dict(data)
        for k in old:
            new = cls.RENAMED[k]
            if new in data:
                raise ValueError(f"{k!r} is the old name of {new!r}: give only {new!r}")
            data[new] = data.pop(k)
            print(f"warning: the option {k!r} is now {new!r}; the old name still works", file=sys.stderr)
        return data

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not cls.PRESETS or not isinstance(data, Mapping):
            return data
        name = data.get("preset", cls.model_fields["preset"].default)
        preset = cls.PRESETS.get(str(name).lower()) if isinstance(name, str) else None
        if preset is None:
            return data  # unknown name: the `preset` field's own validation reports it
        return deep_merge(preset, {**data, "preset": str(name).lower()})

    def keyed(self) -> dict[str, Any]:
        """The values that decide the stage's outputs: every field not marked `Unkeyed` (JSON
        values, in field order). Resume keys and fingerprints hash this, so a new field is in them."""
        fields = type(self).model_fields
        dump = self.model_dump(mode="json")
        return {k: v for k, v in dump.items() if marker(fields[k], Unkeyed) is None}


M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Layer:
    """One source of configuration values: `source` is a file path or FLAGS; `names` maps a dotted
    field to the flag that set it (for messages), e.g. {"augment.limit_seeds": "--limit-seeds"}."""

    source: str
    values: Mapping[str, Any]
    names: Mapping[str, str] = field(default_factory=dict)


def flags(values: Mapping[str, Any], names: Mapping[str, str] | None = None) -> Layer:
    """The layer of command-line flags: nested {section: {field: value}} or flat; None = not given."""
    return Layer(FLAGS, _drop_none(values), names or {})


def load_toml(path: str | Path, section: str | None = None) -> Layer:
    """The layer of a TOML file (or one `[section]` of it); a missing or invalid file is a DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: config file not found")
    text = read_text(path, kind="config")  # UTF-8 (or a BOM'd UTF-16/32); else one line naming file, line
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{path}: not valid TOML ({e})") from None
    if section is not None:
        data = data.get(section, {})
        if not isinstance(data, dict):
            raise DataError(f"{path}: '{section}' must be a table ([{section}])")
    return Layer(str(path), data)


def resolve(cls: type[M], *layers: Layer | None) -> M:
    """Build `cls` from its defaults and the layers, later layers winning (defaults < TOML < flags).
    A bad value is a DataError naming its source (file or flag) and the field."""
    given = [layer for layer in layers if layer is not None]
    merged: dict[str, Any] = {}
    for layer in given:
        merged = deep_merge(merged, layer.values)
    try:
        return cls.model_validate(merged)
    except ValidationError as e:
        raise DataError(_message(e, given)) from None


def _message(e: ValidationError, layers: list[Layer]) -> str:
    """The first error, named by the layer that set the field: the flag, or the file and field."""
    err = e.errors()[0]
    loc = tuple(str(x) for x in err["loc"])
    for layer in reversed(layers if loc else []):  # a whole-model error: named by the file
        if _has(layer.values, loc):
            if layer.source == FLAGS:
                name = layer.names.get(".".join(loc)) or "--" + loc[-1].replace("_", "-")
                why = str(err["msg"]).removeprefix("Value error, ")
                return one_line(f"invalid option {name}: {why} (got {err.get('input')!r})")
            return validation_message(e, layer.source)
    files = [layer.source for layer in layers if layer.source != FLAGS]
    return validation_message(e, files[-1] if files else None)


def _has(values: Any, loc: tuple[str, ...]) -> bool:
    for key in loc:
        if not isinstance(values, Mapping) or key not in values:
            return False
        values = values[key]
    return True


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`; tables (dicts) merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            value = _drop_none(value)
            if not value:
                continue
        if value is not None:
            out[key] = value
    return out


def field_help(cls: type[BaseModel], name: str, extra: str = "", defaults: Mapping[str, Any] = {}) -> str:
    """A flag's help: the config field's description and its default (one source for both), or the
    command's own default from `defaults` (its preset, `config_cli.config_command(defaults=...)`)."""
    info = cls.model_fields[name]
    text = info.description or name.replace("_", " ")
    default = defaults[name] if name in defaults else info.get_default(call_default_factory=True)
    if default is not None and not isinstance(default, bool):
        text += f" (default: {default})"
    return text + (f" {extra}" if extra else "")


def comma_list(text: str) -> list[str]:
    """A flag's comma-separated list (Flag(parse=comma_list)): "a, b" -> ["a", "b"]; "none" -> []."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    return [] if items == ["none"] else items
