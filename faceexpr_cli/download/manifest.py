"""Manifest readers: a text file of URLs or video ids, CSV/TSV, Parquet or JSON Lines, all turned into Items.

Readers are registered by format name and chosen by extension (or by sniffing the first line), so a new format is
one function. Tabular manifests need a URL column (or an id column, with ``--id-url`` to build the URL); ``id``,
``size``, ``sha256``, ``spans`` and ``source`` are understood, every other column is metadata carried to the
status manifest. A row that cannot be used becomes a failed item with its reason, not an error for the whole run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faceexpr_cli.download.items import (
    Item,
    make_unique,
    output_name,
    parse_spans,
    parse_time,
    refused_url,
    url_scheme,
)
from faceexpr_cli.errors import DataError, MissingFileError
from faceexpr_cli.registry import Registry
from faceexpr_cli.safety import redact, redact_url

Rows = list[dict[str, Any]]
READERS: Registry[Callable[[Path], Rows]] = Registry("manifest format")

ALIASES = {
    "url": ("url", "link", "href", "video_url", "source_url", "uri", "path"),
    "id": ("id", "key", "video_id", "videoid", "name"),
    "size": ("size", "bytes", "expected_size", "content_length"),
    "sha256": ("sha256", "checksum", "hash"),
    "spans": ("spans", "sections", "segments"),
    "source": ("source", "via"),
}
YOUTUBE = "https://www.youtube.com/watch?v={id}"
_EXTENSIONS = {".txt": "txt", ".lst": "txt", ".urls": "txt", ".csv": "csv", ".tsv": "tsv",
               ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@READERS.register("txt")
def read_txt(path: Path) -> Rows:
    rows = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append({"url": line.split()[0]})
    return rows


def _read_table(path: Path, sep: str) -> Rows:
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=sep)
        return [{k.strip(): (None if v in ("", None) else v) for k, v in row.items() if k is not None}
                for row in reader]


@READERS.register("csv")
def read_csv(path: Path) -> Rows:
    return _read_table(path, ",")


@READERS.register("tsv")
def read_tsv(path: Path) -> Rows:
    return _read_table(path, "\t")


@READERS.register("parquet")
def read_parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@READERS.register("jsonl")
def read_jsonl(path: Path) -> Rows:
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        data = json.loads(text)
        return [row if isinstance(row, dict) else {"url": row} for row in data]
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not JSON ({exc.msg})", "each line must be one JSON object") from exc
    return rows


def sniff_format(path: Path) -> str:
    if path.suffix.lower() in _EXTENSIONS:
        return _EXTENSIONS[path.suffix.lower()]
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    first = head.decode("utf-8", "replace").lstrip().split("\n", 1)[0]
    if first.startswith(("{", "[")):
        return "jsonl"
    if "\t" in first:
        return "tsv"
    return "csv" if "," in first and "url" in first.lower() else "txt"


def _column(row: dict[str, Any], field: str) -> Any:
    for alias in ALIASES[field]:
        for key in (alias, alias.upper(), alias.capitalize()):
            if key in row and row[key] not in (None, ""):
                return row[key]
    return None


_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
_MANGLED = re.compile(r"[\s\"'<>{}|^`\x00-\x1f]")


class BadValue(ValueError):
    """A row's URL field that is refused before any fetch; ``kind`` is its error_class."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def is_video_id(text: str, id_url: str = YOUTUBE) -> bool:
    """A bare value that the id template turns into a URL: an 11-character YouTube id for the default template,
    a plain token (letters, digits, ``_-``) for a custom ``--id-url``."""
    pattern = _YOUTUBE_ID if id_url == YOUTUBE else _PLAIN_ID
    return bool(pattern.fullmatch(text))


def _resolve_url(value: str, base: Path, id_url: str) -> str:
    """The URL or local path a row's field stands for; a field that is neither raises ``BadValue``."""
    text = str(value).strip()
    candidate = Path(text).expanduser()
    local = candidate if candidate.is_absolute() else base / candidate
    try:
        exists = bool(text) and local.exists()
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte
        exists = False
    if exists:
        return str(local.resolve())
    if url_scheme(text) is not None:
        problem = refused_url(text)
        if problem is not None:
            kind = "bad_row" if _MANGLED.search(text) else "bad_url"
            raise BadValue(kind, f"{redact_url(text)[:200]}: {problem}")
        return text
    if is_video_id(text, id_url):
        return id_url.format(id=text)
    if not text or _MANGLED.search(text) or ("/" not in text and "\\" not in text and "." not in text):
        shown = redact(text)[:80]
        raise BadValue("bad_row", f"{shown!r} is not a URL, a local path or a video id")
    return str(candidate.resolve() if candidate.is_absolute() else local.resolve())  # a missing local file


def _item(row: dict[str, Any], index: int, base: Path, id_url: str) -> Item:
    known = {a for field in ALIASES for a in ALIASES[field]}
    meta = {k: redact(v) for k, v in row.items() if k.lower() not in known and not k.startswith("_")}
    item_id = _column(row, "id")
    raw_url = _column(row, "url")
    # the key may be the URL: its password and signature never reach the status manifest, logs or names
    item = Item(key=redact_url(str(item_id or raw_url or f"row{index}")), url="", name="", meta=meta, index=index)
    try:
        if raw_url is None and item_id is None:
            raise ValueError("no URL or id in this row")
        item.url = _resolve_url(str(raw_url or item_id), base, id_url)
        if item_id is None and raw_url is not None and is_video_id(str(raw_url).strip(), id_url) \
                and item.url != str(raw_url).strip():
            item_id = str(raw_url).strip()  # a bare video id names its file
            item.key = item_id
        item.name = output_name(str(item_id) if item_id is not None else None, item.url)
        size = _column(row, "size")
        item.size = int(float(size)) if size is not None else None
        sha = _column(row, "sha256")
        item.sha256 = str(sha).strip().lower().removeprefix("sha256:") if sha is not None else None
        if item.sha256 is not None and (len(item.sha256) != 64 or not all(c in "0123456789abcdef" for c in item.sha256)):
            raise ValueError(f"sha256 {sha!r} is not 64 hex digits")
        spans = _column(row, "spans")
        if spans is None and row.get("start") not in (None, "") and row.get("end") not in (None, ""):
            spans = [(parse_time(str(row["start"])), parse_time(str(row["end"])))]
        item.spans = parse_spans(spans)
        source = _column(row, "source")
        item.source = str(source) if source is not None else None
    except (ValueError, TypeError) as exc:
        item.problem = f"row {index + 1}: {exc}"
        item.problem_kind = exc.kind if isinstance(exc, BadValue) else "bad_row"
        item.name = item.name or output_name(item.key, item.url or item.key)
    return item


def read_manifest(path: str | Path, id_url: str = YOUTUBE, fmt: str | None = None) -> list[Item]:
    """Every row of a manifest as an Item, in file order, with unique output names."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(path, "manifest", "give a .txt/.csv/.tsv/.parquet/.jsonl file of URLs")
    reader = READERS.get(fmt or sniff_format(path))
    try:
        rows = reader(path)
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise DataError(f"{path}: cannot read manifest ({exc})", "check the file's format") from exc
    if rows and all(_column(r, "url") is None and _column(r, "id") is None for r in rows[:50]):
        raise DataError(f"{path}: no URL or id column (columns: {', '.join(map(str, rows[0]))})",
                        "name the column 'url' (or 'id' for video ids)")
    items, keys = [], set()
    for index, row in enumerate(rows):
        item = _item(row, index, path.parent, id_url)
        if item.key in keys:
            continue  # the same row twice is fetched once
        keys.add(item.key)
        items.append(item)
    make_unique(items)
    return items
