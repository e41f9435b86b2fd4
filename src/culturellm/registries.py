"""`Registry`: a table of named plug-in entries (the training targets, `dataset.targets`; the training
backends, `finetune.backends`), one way to add or replace, remove, list and look one up; an unknown
name is one UnknownNameError listing the known ones."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from culturellm.errors import UnknownNameError


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Entries by their `name`, in registration order. `what` names an entry in the unknown-name
    error ("unknown {what} 'x'; {known}: a, b")."""

    def __init__(self, what: str, known: str = "known") -> None:
        self.what, self.known = what, known
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add (or replace) an entry; returns it."""
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> T:
        """The entry `name`; UnknownNameError listing the known ones."""
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.what} {name!r}; {self.known}: {', '.join(self._entries)}")
        return self._entries[name]
