"""The one registry idiom: named entries that decorators in built-in modules add.

A registry lives low in the layers and names its built-in modules as strings, loaded on the first
look-up: the registry never imports what registers in it, so there is no import cycle (models,
dataset layouts, stage configs and commands all register this way).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


def load_modules(modules: Sequence[str]) -> list[object]:
    """Import `modules` (absolute names) and return them: how built-in entries get registered."""
    return [importlib.import_module(m) for m in modules]


class Registry(Generic[T]):
    """name -> entry, in registration order; `builtin` modules load before the first look-up."""

    def __init__(self, kind: str, builtin: Sequence[str] = (), unique: bool = False):
        self.kind = kind
        self.builtin = tuple(builtin)
        self.unique = unique  # refuse a second, different entry under a name (else the last one wins)
        self._entries: dict[str, T] = {}
        self._state = "unloaded"

    def add(self, name: str, entry: T) -> T:
        if self.unique and name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda entry: self.add(name, entry)

    def _load(self) -> None:
        if self._state == "unloaded":
            self._state = "loading"  # a built-in module that looks itself up while loading sees what is there
            try:
                load_modules(self.builtin)
            except BaseException:
                self._state = "unloaded"
                raise
            self._state = "loaded"

    def entries(self) -> dict[str, T]:
        self._load()
        return dict(self._entries)

    def names(self) -> list[str]:
        return list(self.entries())

    def get(self, name: str) -> T | None:
        self._load()
        return self._entries.get(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
