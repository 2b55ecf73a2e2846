"""A generic name -> object registry with clear errors for duplicates and unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from benchmark.api.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of one kind (proxy classes, embedders, loaders)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering an object under `name`; a duplicate name raises."""

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register `obj` under `name`; a duplicate name raises RegistryError."""
        if not name or not isinstance(name, str):
            raise RegistryError(f"{self.kind} names must be non-empty strings, got {name!r}.")
        if name in self._entries:
            raise RegistryError(
                f"{self.kind} {name!r} is already registered (by {self._entries[name]!r}); choose another name."
            )
        self._entries[name] = obj

    def get(self, name: str) -> T:
        """Return the object registered under `name`, or raise with the closest valid names."""
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self._unknown_message(name)) from None

    def _unknown_message(self, name: str) -> str:
        valid = sorted(self._entries)
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"Unknown {self.kind} {name!r}.{hint} Valid names: {', '.join(valid) or '(none registered)'}."

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
