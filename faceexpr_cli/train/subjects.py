"""Who is in a clip: the ``data.subject_from`` rules that turn a clip's record into a subject id.

A record is a flat dict: a crop manifest row, a ``<clip>.json`` sidecar, or an ``fx clip`` sample's JSON (whose
``subject`` field holds the subject fields of the input manifest). The rules:

    auto     the subject the record names (``subject_id``/``subject``), else the source video (also when the named
             subject is the source path, as in ``fx crop``'s sidecars)
    source   the source video: ``<stem>-<first 8 of sha1(path)>``, the name of the video's clip folder in a crop run
    track    the source video and the face track: ``<source>/t<track_id:03d>``
    NAME     that column or field (also looked up among the ``subject`` fields)

A rule that finds nothing returns None; the callers skip such clips and say how many.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from faceexpr_cli.console import log
from faceexpr_cli.errors import ConfigError

Record = dict[str, Any]


def _present(value: Any) -> bool:
    return value is not None and value != "" and value == value  # NaN != NaN


def _subject_fields(record: Record) -> dict[str, Any]:
    value = record.get("subject")
    if isinstance(value, str) and value.strip().startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    return value if isinstance(value, dict) else {}


def subject_from_meta(meta: Record) -> str | None:
    """The subject id a record names (seed-style fields or ``fx clip``'s ``subject`` JSON)."""
    for key in ("subject_id", "subject"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip().startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if isinstance(value, dict):
            value = value.get("subject_id", value.get("id"))
        if _present(value):
            return str(value)
    return None


def source_subject(record: Record) -> str | None:
    """One subject per source video, named like the video's clip folder in a crop run (``talk-1a2b3c4d``)."""
    source = record.get("source")
    if not _present(source):
        return None
    source = str(source)
    sid = record.get("source_id")
    sid = str(sid) if _present(sid) else hashlib.sha1(source.encode("utf-8")).hexdigest()
    return f"{Path(source).stem}-{sid[:8]}"


def track_subject(record: Record) -> str | None:
    base, track = source_subject(record), record.get("track_id", record.get("track"))
    if base is None or not _present(track) or isinstance(track, dict):
        return None
    return f"{base}/t{int(track):03d}"


def auto_subject(record: Record) -> str | None:
    named = subject_from_meta(record)
    if named is None or named == record.get("source"):  # crop sidecars name the source video as the subject
        return source_subject(record)
    return named


RULES: dict[str, Callable[[Record], str | None]] = {
    "auto": auto_subject, "source": source_subject, "track": track_subject}
NEEDS = {"source": "source", "track": "track_id"}  # the column a rule reads, for error messages


def column_subject(name: str) -> Callable[[Record], str | None]:
    def rule(record: Record) -> str | None:
        value = record[name] if name in record else _subject_fields(record).get(name)
        return str(value) if _present(value) else None

    return rule


def record_fields(record: Record) -> set[str]:
    """The names a column rule can read in a record: its own keys and its ``subject`` fields."""
    return set(record) | set(_subject_fields(record))


def subject_rule(name: str, fields: Iterable[str], where: str) -> Callable[[Record], str | None]:
    """The rule called ``name``; a column name that no record has is a one-line error naming the columns."""
    if name in RULES:
        return RULES[name]
    known = sorted(set(fields))
    if name not in known:
        shown = ", ".join(known[:40]) + (" ..." if len(known) > 40 else "")
        raise ConfigError(f"data.subject_from={name}: {where} has no such column (columns: {shown})",
                          "use auto, source, track or one of those columns")
    return column_subject(name)


def nothing_found(name: str, where: str) -> ConfigError:
    need = NEEDS.get(name, name)
    return ConfigError(f"data.subject_from={name}: no usable clip in {where} records '{need}'",
                       "use another data.subject_from (auto, source, track or a column)")


def warn_unnamed(count: int, name: str, example: str) -> None:
    if count:
        log.warning("%d clip(s) skipped: data.subject_from=%s finds no subject in their record (e.g. %s)",
                    count, name, example)


def check_subjects(names: list[str], subject_from: str = "auto") -> None:
    """One subject means the subject rows cannot tell people apart: say so (training goes on)."""
    if len(names) == 1:
        log.warning("the dataset has one subject ('%s', data.subject_from=%s): the subject embedding cannot tell "
                    "people apart; use data.subject_from=track (one per face track) or a subject column",
                    names[0], subject_from)
