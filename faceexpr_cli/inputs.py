"""Helpers shared by the commands that take lists of inputs (crop, clip, extract-feats)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, TypeVar

from faceexpr_cli.errors import MissingFileError, UsageError


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


def require_inputs(inputs: Iterable[str | Path]) -> None:
    """Every input named on the command line exists, checked before a command makes its ``--out`` folder: a
    mistyped path is one line (exit 2) and leaves nothing behind."""
    paths = list(inputs)
    if not paths:
        raise UsageError("no inputs", "pass videos, folders or a manifest")
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise MissingFileError(path, "input")
