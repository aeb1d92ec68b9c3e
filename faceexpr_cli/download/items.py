"""One thing to fetch: its URL, the name it gets at the destination, what verifies it, and the row's metadata.

Names are chosen once, from the manifest, before anything is fetched: a re-run must map each row to the same
file (and the same ``.part``) to skip or resume it, whatever order the rows come in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_MAX_NAME = 150


@dataclass
class Item:
    key: str  # the row's identity in the status manifest: the id column, else the URL
    url: str
    name: str  # file name at the destination (yt-dlp items: the stem; the extension comes from the site)
    source: str | None = None  # a source forced by the row (``source`` column)
    size: int | None = None
    sha256: str | None = None
    spans: list[tuple[float, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # a row that cannot be fetched at all (recorded as failed, never fetched)
    problem_kind: str = "bad_row"  # the error_class of that failure: bad_row, or bad_url for a refused scheme
    index: int = 0

    @property
    def host(self) -> str:
        parts = urlsplit(self.url)
        return parts.netloc.lower() if parts.scheme in ("http", "https") else parts.scheme or "local"


# Schemes fx fetches from; anything else (ftp, zip, memory, data, javascript, ...) is refused before any fetch.
# ``file://`` is a local path (this machine only).
SCHEMES = frozenset({"http", "https", "s3", "s3a", "gs", "gcs", "file"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_NEEDS_HOST = frozenset({"http", "https", "s3", "s3a", "gs", "gcs"})


def url_scheme(text: str) -> str | None:
    """The scheme of ``text`` if it starts with one (``C:\\...`` drive letters are not schemes)."""
    m = _SCHEME.match(text)
    return m.group(1).lower() if m else None


def refused_url(url: str) -> str | None:
    """Why ``url`` may not be fetched (a scheme outside the allow-list, no host), or None when it may."""
    scheme = url_scheme(url)
    if scheme is None:
        return None  # a local path
    if scheme not in SCHEMES:
        return f"scheme {scheme}: is not allowed (use http, https, s3, gs or a local path)"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "the URL contains white space or control characters"
    parts = urlsplit(url)
    if scheme in _NEEDS_HOST and (not parts.netloc or not parts.hostname):
        return f"no host in the {scheme} URL"
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        return f"file:// URL of another host ({parts.hostname})"
    return None


def safe_name(text: str) -> str:
    """A file name from free text: no separators, no leading dots, bounded length."""
    name = _UNSAFE.sub("_", text).strip("._") or "item"
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{(stem or name)[: _MAX_NAME - 20]}-{digest}" + (f".{ext[:10]}" if dot and stem else "")
    return name


def url_basename(url: str) -> str:
    parts = urlsplit(url)
    base = PurePosixPath(unquote(parts.path)).name
    return base or parts.hostname or "item"  # the host, never the user-info (it may hold a password)


def url_suffix(url: str) -> str:
    suffix = PurePosixPath(url_basename(url)).suffix
    return suffix if 1 < len(suffix) <= 8 and suffix[1:].isalnum() else ""


def output_name(item_id: str | None, url: str) -> str:
    """``id`` + the URL's extension, else the URL's own file name."""
    if item_id:
        name = safe_name(item_id)
        suffix = url_suffix(url)
        return name if not suffix or name.lower().endswith(suffix.lower()) else name + suffix
    return safe_name(url_basename(url))


def make_unique(items: list[Item]) -> None:
    """Rows that would write the same file get a short digest of their key appended (stable across runs)."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.name.lower()] = seen.get(item.name.lower(), 0) + 1
    for item in items:
        if seen[item.name.lower()] > 1:
            digest = hashlib.sha1(item.key.encode()).hexdigest()[:8]
            stem, dot, ext = item.name.rpartition(".")
            item.name = f"{stem}-{digest}.{ext}" if dot and stem else f"{item.name}-{digest}"


def shard_of(key: str, count: int) -> int:
    """Which of ``count`` shards a row belongs to: a hash of its key, so adding rows moves no others."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") % count


_TIME = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)$")


def parse_time(text: str) -> float:
    """Seconds from ``12.5``, ``01:02.5`` or ``1:02:03``."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"not a time: {text!r}")
    parts = [float(g) for g in m.groups() if g is not None]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def parse_spans(value: Any) -> list[tuple[float, float]]:
    """Spans from ``"1.5-3;10-12"``, ``"00:01-00:03"``, a JSON string or a list of pairs."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return parse_spans(json.loads(text))
        pairs = []
        for chunk in re.split(r"[;,]", text):
            if chunk.strip():
                start, sep, end = chunk.strip().partition("-")
                if not sep:
                    raise ValueError(f"span {chunk!r} is not START-END")
                pairs.append((parse_time(start), parse_time(end)))
        return _checked(pairs)
    pairs = []
    for pair in value:
        if isinstance(pair, dict):
            pair = (pair.get("start"), pair.get("end"))
        start, end = list(pair)
        pairs.append((float(start), float(end)))
    return _checked(pairs)


def _checked(pairs: list[tuple[float, float]]) -> list[tuple[float, float]]:
    for start, end in pairs:
        if not 0 <= start < end:
            raise ValueError(f"span {start}-{end} is empty or negative")
    return pairs
