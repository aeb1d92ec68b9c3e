"""Helpers shared by the commands that take lists of inputs (crop, clip, extract-feats)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar


class _HasSource(Protocol):
    source: str


T = TypeVar("T", bound=_HasSource)


def unique_by_source(items: Iterable[T]) -> list[T]:
    """The first item for each source, in order: a video named twice (a folder and a manifest) runs once."""
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.source not in seen:
            seen.add(item.source)
            unique.append(item)
    return unique
