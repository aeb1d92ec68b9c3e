"""Name -> object registries, so that backends, engines, readers and builders resolve by name, not by if/elif."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from faceexpr_cli.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table. ``discover`` names a package whose modules register into it when first looked up."""

    def __init__(self, kind: str, discover: str | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._discover = discover
        self._discovered = discover is None
        self._loading = False
        self._lock = threading.RLock()

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._items[name] = obj

    def _load(self) -> None:
        # Other threads wait until every module has registered; a lookup made while those modules import (same
        # thread) sees what is registered so far instead of recursing.
        if self._discovered:
            return
        with self._lock:
            if self._discovered or self._loading:
                return
            self._loading = True
            try:
                import_submodules(self._discover)
                self._discovered = True
            finally:
                self._loading = False

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            raise UnknownNameError(self.kind, name, list(self._items))
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items


def import_submodules(package: str) -> list[str]:
    """Import every module of a package (not recursive), in name order; returns their names."""
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
