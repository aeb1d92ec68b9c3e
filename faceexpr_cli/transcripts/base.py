"""The transcript reader registry, the error that names the bad line or key, and timestamp parsing.

A reader is one module under ``faceexpr_cli/transcripts/readers/`` that registers a ``TranscriptReader``: the
suffixes it claims, a cheap ``sniff`` on the text (for ``.json`` and unknown suffixes) and ``read`` returning one
``Timeline`` per video the file describes (most formats describe one video; the seed's JSON list many).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faceexpr_cli.errors import DataError
from faceexpr_cli.registry import Registry
from faceexpr_cli.transcripts.timeline import Timeline


class TranscriptError(DataError):
    """A transcript that cannot be read; the message names the file and the line or key."""

    def __init__(self, path: str | Path, where: str | int | None, problem: str, hint: str | None = None):
        loc = f"{path}:{where}" if isinstance(where, int) else f"{path}: {where}" if where else str(path)
        super().__init__(f"{loc}: {problem}", hint or "fix the transcript or pass another with --transcript")
        self.path = str(path)
        self.where = where


@dataclass
class TranscriptReader:
    name: str
    suffixes: tuple[str, ...]
    sniff: Callable[[str], bool]
    read: Callable[[str, str], list[Timeline]]  # (text, path) -> timelines
    description: str = ""


READERS: Registry[TranscriptReader] = Registry("transcript format", discover="faceexpr_cli.transcripts.readers")


def register_reader(name: str, suffixes: tuple[str, ...], sniff: Callable[[str], bool], description: str = ""):
    """Decorator for a module's ``read(text, path)`` function."""

    def deco(fn: Callable[[str, str], list[Timeline]]) -> Callable[[str, str], list[Timeline]]:
        READERS.add(name, TranscriptReader(name, suffixes, sniff, fn, description))
        return fn

    return deco


_TS = re.compile(r"^(?:(\d+):)?([0-5]?\d):([0-5]\d)[.,](\d{1,3})$")


def parse_clock(text: str) -> float | None:
    """``hh:mm:ss.mmm``, ``mm:ss.mmm`` or SRT's ``hh:mm:ss,mmm`` -> seconds (None when it is not one)."""
    m = _TS.match(text.strip())
    if not m:
        return None
    h, mi, s, frac = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000.0


def strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text
