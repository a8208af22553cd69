"""Registries: what definitions name and code looks up by that name (field types, choice sources, metric sources).

A registry is one per kind of thing, found by that kind (`registry("field type")`), so the definitions layer
can read the names and the declared data of what it checks without importing the packages that register
them. Whoever registers an entry gives it everything it needs in one place (Indico's field classes):
adding a field type, a choice source or a metric source is one registration.

The built-in entries are registered when their modules are imported: `server.builtins` imports them all
(the app factory does, and so do the tests and the benchmarks). A check that needs a registry asks
`require()`, which says so plainly when nothing was registered, instead of passing what it cannot check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(LookupError):
    """An unknown name, a name taken twice, or a registry nothing was registered in."""


class Registry(Generic[T]):
    """Named entries of one kind, in the order they were registered."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self.version = 0  # changes with every registration: what is derived from the entries is kept by it

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise RegistryError(f"{self.kind} '{name}' is registered already")
        self._entries[name] = entry
        self.version += 1
        return entry

    def remove(self, name: str) -> T:
        entry = self._entries.pop(name)
        self.version += 1
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register what it decorates under `name`."""
        return lambda entry: self.add(name, entry)

    @contextmanager
    def registered(self, name: str, entry: T) -> Iterator[T]:
        """Register `entry` for the duration of a `with` block (a test's toy), then take it out again."""
        self.add(name, entry)
        try:
            yield entry
        finally:
            self.remove(name)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(f"unknown {self.kind} '{name}'") from None

    def get(self, name: Any, default: T | None = None) -> T | None:
        return self._entries.get(name, default) if isinstance(name, str) else default

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def where(self, attribute: str) -> Mapping[str, Any]:
        """A live mapping, name → `attribute`, of the entries where it is set: what is registered at each use."""
        return _AttributeView(self, attribute)

    def require(self) -> Registry[T]:
        """This registry, once something is registered in it."""
        if not self._entries:
            raise RegistryError(f"no {self.kind} is registered: import server.builtins first (create_app does)")
        return self

    def markdown(self) -> str:
        """A table of the entries for the docs: each entry's `docs()` gives its row as {column: text}."""
        rows = [entry.docs() for entry in self._entries.values()]  # type: ignore[attr-defined]
        columns = list(dict.fromkeys(column for row in rows for column in row))
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in columns) + " |")
        return "\n".join(lines)


class _AttributeView(Mapping[str, Any]):
    def __init__(self, source: Registry[Any], attribute: str):
        self.source, self.attribute = source, attribute

    def __getitem__(self, name: str) -> Any:
        value = getattr(self.source.get(name), self.attribute, None)
        if not value:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, entry in self.source.items() if getattr(entry, self.attribute, None)])

    def __len__(self) -> int:
        return sum(1 for _name in self)


_REGISTRIES: dict[str, Registry[Any]] = {}


def registry(kind: str) -> Registry[Any]:
    """The registry of one kind of thing (created on first use, by whichever side asks first)."""
    if kind not in _REGISTRIES:
        _REGISTRIES[kind] = Registry(kind)
    return _REGISTRIES[kind]


def versions() -> tuple[tuple[str, int], ...]:
    """Every registry's version: a key for what is derived from all of them (schemas with their names)."""
    return tuple(sorted((kind, r.version) for kind, r in _REGISTRIES.items()))
