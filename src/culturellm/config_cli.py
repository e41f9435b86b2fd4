"""The config is the CLI: a stage command's flags are made from its config class's fields.

`@config_command(EvaluateConfig, "evaluate")` turns `def evaluate_command(config: EvaluateConfig,
**own)` into a typer command whose options are the function's own (what is not a stage option: the
models, the output directory, ...), one flag per field of the config and `--config FILE` (that file's
`[evaluate]` table). A field's flag is `--field-name` with the field's type, its `description` and
default as help; `settings.Flag(...)` in the field's `Annotated` type gives other names, a bool's off
switch or a parser of the flag's text. On a call the flags that were given (a flag left unset is not a
value) are resolved with the one precedence rule, defaults < preset < TOML < flags (settings.resolve),
into the config object the function receives: the option is written once, in the config class.

Like transformers' HfArgumentParser / TRL's TrlParser, which make argparse arguments from dataclass
fields (help and aliases in the field's metadata), but on click options through typer.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import typer
from pydantic.fields import FieldInfo

from culturellm.llm import access
from culturellm.settings import Flag, Layer, StageConfig, field_help, flags, load_toml, marker, resolve

C = TypeVar("C", bound=StageConfig)
R = TypeVar("R")
CONFIG_FILE = "config_file"  # the parameter of --config


@dataclass(frozen=True)
class FieldFlag:
    """The command-line flag of one config field."""

    name: str  # the field (and the command function's parameter)
    names: tuple[str, ...]  # e.g. ("--question", "-q"); the first is the one messages name
    off: str | None  # a bool's off switch
    type: Any  # what typer parses the flag's text into
    parse: Callable[[str], Any] | None
    help: str

    @classmethod
    def of(
        cls, config: type[StageConfig], name: str, info: FieldInfo, defaults: Mapping[str, Any] = {}
    ) -> FieldFlag:
        spec = marker(info, Flag) or Flag()
        names = spec.names or ("--" + name.replace("_", "-"),)
        kind = str if spec.parse is not None else _flag_type(config, name, info.annotation)
        off = spec.off or ("--no-" + names[0][2:] if kind is bool else None)
        return cls(name, names, off, kind, spec.parse, field_help(config, name, defaults=defaults))

    def parameter(self, panel: str) -> inspect.Parameter:
        decls = (f"{self.names[0]}/{self.off}", *self.names[1:]) if self.off else self.names
        option = typer.Option(*decls, help=self.help, rich_help_panel=panel, show_default=False)
        annotation = Annotated[self.type | None, option]  # None: not given, so not a value
        return inspect.Parameter(
            self.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
        )

    def value(self, given: Any) -> Any:
        """The field's value from what typer parsed (None and an empty list: the flag was not given)."""
        if given is None or given == []:
            return None
        if self.parse is None:
            return given
        try:
            return self.parse(given)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint=f"'{self.names[0]}'") from None


def _flag_type(config: type[StageConfig], name: str, annotation: Any) -> Any:
    """The field's type without None (what its flag takes); a union of several types needs a parser."""
    args = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    kinds = [a for a in args if a is not type(None)]
    if len(kinds) != 1:
        raise TypeError(f"{config.__name__}.{name}: a {annotation} field needs Flag(parse=...) for its flag")
    kind = kinds[0]
    if get_origin(kind) is list and get_origin(get_args(kind)[0]) is Literal:
        raise TypeError(f"{config.__name__}.{name}: a list of choices needs Flag(parse=...) for its flag")
    return kind


def field_flags(
    config: type[StageConfig], only: Sequence[str] | None = None, defaults: Mapping[str, Any] = {}
) -> list[FieldFlag]:
    """One flag per field of `config`, in field order: every field not marked `Flag(none=True)`, or
    exactly the fields named in `only` (a command that uses a few of a stage's options); `defaults`:
    the command's own defaults, shown in the help."""
    fields = config.model_fields
    unknown = [n for n in only or () if n not in fields]
    if unknown:
        raise TypeError(f"{config.__name__} has no field {', '.join(unknown)}")

    def offered(name: str, info: FieldInfo) -> bool:
        return name in only if only is not None else not (marker(info, Flag) or Flag()).none

    return [FieldFlag.of(config, n, info, defaults) for n, info in fields.items() if offered(n, info)]


def _renamed_flags(config: type[StageConfig], fields: list[FieldFlag]) -> list[tuple[str, FieldFlag, Any]]:
    """A hidden flag per old field name (`config.RENAMED`) whose new field has a flag: still read."""
    by_name = {f.name: f for f in fields}
    out = []
    for old, new in config.RENAMED.items():
        if new in by_name:
            flag = by_name[new]
            name = "--" + old.replace("_", "-")
            hidden = Annotated[flag.type | None, typer.Option(name, hidden=True)]
            kind = inspect.Parameter.KEYWORD_ONLY
            param = inspect.Parameter(f"renamed_{old}", kind, default=None, annotation=hidden)
            out.append((name, flag, param))
    return out


def _old_flag(old: str, flag: FieldFlag, value: Any, given: dict[str, Any]) -> None:
    """An old flag's value: used for its new field with one warning line; both at once is an error."""
    value = flag.value(value)
    if value is None:
        return
    if given.get(flag.name) is not None:
        raise typer.BadParameter(f"{old} is the old name of {flag.names[0]}: give only {flag.names[0]}")
    typer.echo(f"warning: {old} is now {flag.names[0]}; the old name still works", err=True)
    given[flag.name] = value


def config_command(
    config: type[C],
    section: str | None = None,
    panel: str | None = None,
    *,
    fields: Sequence[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate `fn(..., name: C, **own)` into a typer command: `own`'s options, a flag per field of
    `config` (or of the `fields` named: a command that uses only those) and, with a `section`,
    --config FILE (that table of a run TOML); `fn` gets the resolved config as its parameter annotated
    `config`. `defaults`: the command's own preset, beneath the TOML and the flags. Decorators stack
    (one config object each)."""

    def decorate(fn: Callable[..., R]) -> Callable[..., R]:
        hints = get_type_hints(fn, localns={config.__name__: config}, include_extras=True)
        params = list(inspect.signature(fn).parameters.values())
        target = next((p.name for p in params if hints.get(p.name) is config), None)
        if target is None:
            raise TypeError(f"{fn.__name__}: no parameter annotated {config.__name__}")
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params if p.name != target]
        field_list = field_flags(config, fields, defaults or {})
        clash = {p.name for p in own} & {CONFIG_FILE, *(f.name for f in field_list)}
        if clash:
            raise TypeError(f"{fn.__name__}: {sorted(clash)} are both its own and {config.__name__}'s")
        preset = Layer(f"{fn.__name__}'s defaults", dict(defaults)) if defaults else None
        title = panel or f"{str(section).capitalize()} options (also in a run TOML's [{section}])"
        added = [f.parameter(title) for f in field_list]
        if section is not None:
            toml_help = f"a run TOML: its [{section}] table (flags override it)"
            option = typer.Option("--config", help=toml_help)
            kind = inspect.Parameter.KEYWORD_ONLY
            added.insert(
                0,
                inspect.Parameter(CONFIG_FILE, kind, default=None, annotation=Annotated[Path | None, option]),
            )
        renamed = _renamed_flags(config, field_list)
        added += [param for _, _, param in renamed]
        messages = {f.name: f.names[0] for f in field_list}

        def command(**kwargs: Any) -> R:
            path = kwargs.pop(CONFIG_FILE) if section is not None else None
            given = {f.name: f.value(kwargs.pop(f.name)) for f in field_list}
            for old, flag, param in renamed:
                _old_flag(old, flag, kwargs.pop(param.name), given)
            layer = load_toml(path, section) if path is not None and section is not None else None
            kwargs[target] = resolve(config, preset, layer, flags(given, messages))
            return fn(**kwargs)

        command.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            setattr(command, attr, getattr(fn, attr))
        return command

    return decorate


# The flag panels of the commands that load models: ModelAccess's fields (culturellm.llm.access).
Endpoint = access.Endpoint
Placement = access.Placement

MODELS = "Model options"  # the help panel of Endpoint and Placement


# Options of the commands that run a stage, which are not stage options (the terminal, the output
# directory): written here once.
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress.")]
Force = Annotated[
    bool, typer.Option("--force", help="Write into an existing --out directory that culturellm did not make.")
]


def server_key(help: str) -> Any:
    """The --api-key option of the commands that serve HTTP (serve, review): the key every request must
    send as 'Authorization: Bearer KEY', also from CULTURELLM_API_KEY."""
    return typer.Option(None, "--api-key", envvar="CULTURELLM_API_KEY", show_envvar=True, help=help)
