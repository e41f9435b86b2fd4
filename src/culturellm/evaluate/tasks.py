"""The evaluation task registry: a declarative TOML file, one entry per dataset file.

The bundled `culturellm/data/tasks.toml` describes the 60 classification datasets of the public CultureLLM
release; a `tasks.toml` of the same shape in `culturellm.paths.data_dir()` adds tasks or overrides bundled
ones by name. See docs/evaluation.md for the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturellm.errors import DataError, UnknownNameError
from culturellm.jsonio import read_toml
from culturellm.names import check_name, check_relative
from culturellm.paths import data_dir, layered

TASKS_FILE = "tasks.toml"
_TASK_KEYS = {
    "name",
    "culture",
    "language",
    "type",
    "path",
    "text_fields",
    "label_field",
    "labels",
    "instruction",
}
_SCHEME_KEYS = {"instruction", "labels", "map"}


@dataclass(frozen=True)
class Task:
    """One evaluation dataset.

    labels: canonical label -> verbalization (the answer text scored or parsed), in order.
    label_map: raw label spelling -> canonical label. Raw labels are matched exactly after strip(),
    then case-insensitively (`canonical_label`).
    """

    name: str
    culture: str
    language: str
    type: str
    path: str
    text_fields: tuple[str, ...]
    label_field: str
    labels: dict[str, str]
    label_map: dict[str, str]
    instruction: str
    source: str = ""
    _folded: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded = {k.casefold(): v for k, v in self.label_map.items()}
        for canon in self.labels:
            folded.setdefault(canon.casefold(), canon)
        for canon, verb in self.labels.items():
            folded.setdefault(verb.casefold(), canon)
        self._folded.update(folded)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    @property
    def verbalizations(self) -> tuple[str, ...]:
        return tuple(self.labels.values())

    def canonical_label(self, raw: Any) -> str | None:
        """The canonical label of a raw label value, or None when it is not in the label set."""
        if isinstance(raw, bool):
            raw = int(raw)
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        s = str(raw).strip()
        if s in self.label_map:
            return self.label_map[s]
        return self._folded.get(s.casefold())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "culture": self.culture,
            "language": self.language,
            "type": self.type,
            "path": self.path,
            "text_fields": list(self.text_fields),
            "label_field": self.label_field,
            "labels": dict(self.labels),
            "label_map": dict(self.label_map),
            "instruction": self.instruction,
            "source": self.source,
        }


def _str_table(where: str, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise DataError(f"{where}: field '{key}' must be a non-empty table")
    for k, v in value.items():
        if not isinstance(v, str) or not v.strip():
            raise DataError(f"{where}: {key}.{k} must be a non-empty string")
    return {str(k): str(v) for k, v in value.items()}


def _scheme(where: str, raw: Any) -> tuple[str, dict[str, str], dict[str, str]]:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: a label scheme must be a table with instruction, labels, map")
    unknown = set(raw) - _SCHEME_KEYS
    if unknown:
        raise DataError(f"{where}: unknown field '{sorted(unknown)[0]}'")
    labels = _str_table(where, "labels", raw.get("labels"))
    mapping = _str_table(where, "map", raw.get("map", {k: k for k in labels}))
    bad = sorted(set(mapping.values()) - set(labels))
    if bad:
        raise DataError(f"{where}: map points at '{bad[0]}', which is not one of labels {list(labels)}")
    verbs = [v.casefold() for v in labels.values()]
    if len(set(verbs)) != len(verbs):
        raise DataError(f"{where}: two labels have the same verbalization")
    return str(raw.get("instruction", "")), labels, mapping


def read_tasks(path: str | Path) -> dict[str, Task]:
    """Parse a tasks TOML file; DataError names the file, the task and the bad field."""
    path = Path(path)
    raw = read_toml(path)
    unknown = set(raw) - {"schemes", "tasks"}
    if unknown:
        raise DataError(f"{path}: unknown top-level key '{sorted(unknown)[0]}' (expected schemes, tasks)")
    schemes = {}
    for name, s in (raw.get("schemes") or {}).items():
        schemes[name] = _scheme(f"{path}: [schemes.{name}]", s)
    entries = raw.get("tasks") or []
    if not isinstance(entries, list):
        raise DataError(f"{path}: 'tasks' must be an array of tables ([[tasks]])")
    out: dict[str, Task] = {}
    for i, t in enumerate(entries, 1):
        where = f"{path}: task #{i}" + (
            f" ({t.get('name')})" if isinstance(t, dict) and t.get("name") else ""
        )
        task = _task(where, t, schemes, source=str(path))
        if task.name in out:
            raise DataError(f"{where}: duplicate task name '{task.name}'")
        out[task.name] = task
    return out


def _task(
    where: str, t: Any, schemes: dict[str, tuple[str, dict[str, str], dict[str, str]]], source: str
) -> Task:
    """One [[tasks]] entry of a tasks file (`where` names it in errors); `schemes` are the file's."""
    if not isinstance(t, dict):
        raise DataError(f"{where}: must be a table")
    unknown = set(t) - _TASK_KEYS
    if unknown:
        raise DataError(f"{where}: unknown field '{sorted(unknown)[0]}'")
    for key in ("name", "culture", "path", "text_fields", "labels", "type"):
        if key not in t:
            raise DataError(f"{where}: missing field '{key}'")
    fields = t["text_fields"]
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list) or not fields or not all(isinstance(x, str) for x in fields):
        raise DataError(f"{where}: field 'text_fields' must be a list of field names")
    if isinstance(t["labels"], str):
        if t["labels"] not in schemes:
            raise DataError(f"{where}: unknown label scheme '{t['labels']}' (known: {', '.join(schemes)})")
        instruction, labels, mapping = schemes[t["labels"]]
    else:
        instruction, labels, mapping = _scheme(f"{where}: labels", t["labels"])
    instruction = str(t.get("instruction") or instruction or "Classify the following text.")
    name = check_name(str(t["name"]).strip(), "task name", where, parts=True)
    culture = check_name(str(t["culture"]).strip().lower(), "field 'culture'", where)
    if not isinstance(t["path"], str):
        raise DataError(f"{where}: field 'path' must be a string")
    check_relative(t["path"], "field 'path'", where)
    return Task(
        name=name,
        culture=culture,
        language=str(t.get("language", "")),
        type=str(t["type"]),
        path=str(t["path"]),
        text_fields=tuple(fields),
        label_field=str(t.get("label_field", "label")),
        labels=labels,
        label_map=mapping,
        instruction=instruction,
        source=source,
    )


def user_tasks_path() -> Path:
    return data_dir() / TASKS_FILE


def registry() -> dict[str, Task]:
    """All tasks by name: bundled, extended/overridden by the user's tasks.toml (the one place a new
    task is added: an entry in that file, or in culturellm/data/tasks.toml for a bundled one)."""
    return layered(TASKS_FILE, read_tasks)


def list_tasks(
    culture: str | None = None, type: str | None = None, names: list[str] | None = None
) -> list[Task]:
    """Tasks in registry order, optionally filtered by culture, type and names.

    `names` entries match a full name ("arabic/offensive_detect") or, within the selected cultures, the
    short task name ("offensive_detect"); an entry matching nothing raises UnknownNameError."""
    tasks = list(registry().values())
    if culture is not None:
        key = culture.strip().lower()
        tasks = [t for t in tasks if t.culture == key]
    if type is not None:
        key = type.strip().lower()
        known_types = sorted({t.type for t in registry().values()})
        if key not in known_types:
            raise UnknownNameError(f"unknown task type '{type}'; known: {', '.join(known_types)}")
        tasks = [t for t in tasks if t.type == key]
    if names:
        chosen: list[Task] = []
        for n in names:
            hit = [t for t in tasks if t.name == n or t.name.split("/", 1)[-1] == n]
            if not hit:
                known = ", ".join(t.name for t in tasks) or "none"
                raise UnknownNameError(f"unknown task '{n}' (known here: {known})")
            chosen += [t for t in hit if t not in chosen]
        tasks = [t for t in tasks if t in chosen]
    return tasks


def get_task(name: str) -> Task:
    reg = registry()
    if name in reg:
        return reg[name]
    raise UnknownNameError(f"unknown task '{name}' (see `culturellm tasks`; known: {', '.join(reg)})")
