"""Settings of one download run, as plain data (the CLI fills them; tests and other code can too)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceexpr_cli.download.retry import RetryPolicy
from faceexpr_cli.errors import UsageError


@dataclass
class VideoOptions:
    """yt-dlp settings for video-site items."""

    min_height: int | None = None
    codec: str | None = None  # h264, hevc, vp9, av1
    format: str | None = None  # a raw yt-dlp format string wins over min_height/codec
    cookies: Path | None = None
    sleep: float = 0.0  # seconds between requests to the site (and before each download)
    rate_limit: float | None = None  # bytes/s per video
    subtitles: bool = True  # subtitles and automatic captions (VTT keeps YouTube's word timings)
    sub_langs: list[str] = field(default_factory=lambda: ["en.*"])
    sections: bool = False  # fetch only the item's spans


@dataclass
class DownloadOptions:
    jobs: int = 16
    per_host: int = 8
    rate_limit: float | None = None  # bytes/s for the whole run
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0  # seconds without data before a connection counts as stalled
    source: str | None = None  # force one source for every item
    shard: tuple[int, int] | None = None
    storage_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per protocol: s3 -> {...}
    staging: Path | None = None  # where .part files live when the destination is a bucket
    force: bool = False  # fetch again even what the status manifest lists as done
    checksum: bool = True  # sha256 of every file for the status manifest (rows with a sha256 are always checked)
    chunk: int = 1 << 20
    video: VideoOptions = field(default_factory=VideoOptions)

    def wants_hash(self, expected: str | None) -> bool:
        return self.checksum or expected is not None

    def for_protocol(self, protocol: str) -> dict[str, Any]:
        return dict(self.storage_options.get(protocol, {}))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``500K``, ``10M``, ``1.5G`` (powers of 1024, as curl's --limit-rate)."""
    m = _SIZE.match(text)
    if not m:
        raise UsageError(f"not a size: {text!r}", "use a number with an optional K, M or G suffix, e.g. 10M")
    return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2).lower() or "_"))


def parse_shard(text: str) -> tuple[int, int]:
    m = re.match(r"^\s*(\d+)\s*/\s*(\d+)\s*$", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise UsageError(f"bad shard {text!r}", "use I/N with 0 <= I < N, e.g. --shard 0/4 on the first of 4 machines")
    return int(m.group(1)), int(m.group(2))


def parse_storage_options(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``s3.endpoint_url=http://...`` pairs into ``{"s3": {"endpoint_url": ...}}`` (values parsed as YAML)."""
    import yaml

    result: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        protocol, dot, option = key.partition(".")
        if not sep or not dot or not option:
            raise UsageError(f"bad storage option {pair!r}", "use PROTOCOL.KEY=VALUE, e.g. s3.endpoint_url=http://...")
        parsed = yaml.safe_load(value) if value else value
        result.setdefault(protocol.strip(), {})[option.strip()] = parsed
    return result
