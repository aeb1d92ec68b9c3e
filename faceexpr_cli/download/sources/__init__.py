"""Source handlers: how bytes get from a URL into a local ``.part``; one module each, registered by name.

A source's ``fetch(job)`` writes into ``job.part`` (a file, or a directory for sources that produce several
files), reports every chunk to ``job.meter``, and raises ``TransientError``/``PermanentError``. It does not retry,
verify checksums or rename: the runner does that the same way for every source. A new backend is a module here
with ``@SOURCES.register("name")`` on a class, plus a line in ``pick_source`` if URLs should reach it by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from faceexpr_cli.download.items import Item
from faceexpr_cli.download.limits import Meter
from faceexpr_cli.download.options import DownloadOptions
from faceexpr_cli.registry import Registry


@dataclass
class FetchJob:
    item: Item
    part: Path  # the temporary file (or directory) this item downloads into
    meter: Meter
    options: DownloadOptions
    state: dict[str, Any] = field(default_factory=dict)  # carried between attempts of one item (ETag, ...)


@dataclass
class Fetched:
    files: list[Path]  # finished files, the main one first (all inside job.part, or job.part itself)
    transferred: int = 0  # bytes moved over the network in this attempt
    resumed_from: int = 0
    sha256: str | None = None  # of the main file, when computed while streaming
    final_url: str | None = None
    http_status: int | None = None
    etag: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    part_is_dir: bool

    def __init__(self, options: DownloadOptions) -> None: ...

    def fetch(self, job: FetchJob) -> Fetched: ...


SOURCES: Registry[type[Source]] = Registry("download source", discover="faceexpr_cli.download.sources")

# Hosts whose page URLs are video pages, not files; anything else needs --source ytdlp or a ``source`` column.
VIDEO_SITES = (
    "youtube.com", "youtu.be", "youtube-nocookie.com", "vimeo.com", "dailymotion.com", "twitch.tv", "tiktok.com",
    "instagram.com", "facebook.com", "fb.watch", "x.com", "twitter.com", "bilibili.com", "rumble.com",
    "streamable.com", "ted.com", "archive.org",
)


def _is_video_site(host: str) -> bool:
    host = host.split(":")[0].lower()
    return any(host == site or host.endswith("." + site) for site in VIDEO_SITES)


def pick_source(item: Item, forced: str | None = None) -> str:
    """The source name for an item: a forced one, else by scheme and host."""
    if item.source or forced:
        return item.source or forced  # type: ignore[return-value]
    parts = urlsplit(item.url)
    if parts.scheme in ("http", "https"):
        if _is_video_site(parts.netloc) and not (parts.netloc.endswith("archive.org") and "/download/" in parts.path):
            return "ytdlp"
        return "http"
    return "fsspec"
