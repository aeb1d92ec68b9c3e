"""The clip dataset layout, shared by the clip miner (writer) and training (reader).

A dataset is a folder::

    clips-000000.tar        WebDataset shard: per sample ``<key>.mp4`` (H.264 + AAC) and ``<key>.json`` (metadata)
    clips-000000.parquet    the shard's index part: one row per sample written into that shard, plus the failures,
                            dropped hits and finished inputs recorded while it was open (written after the tar:
                            a shard counts as finished only when its part exists)
    index.parquet           every part joined (samples and failures; finished-input markers left out)
    stats.json              counts, seconds of video, hits per keyword, dropped hits and why
    run.json                the settings of the run, so a resume with other settings is refused

Keys contain no dots (WebDataset splits a member name at the first dot into key and extension).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa

SHARD_PREFIX = "clips"
INDEX_NAME = "index.parquet"
STATS_NAME = "stats.json"
RUN_NAME = "run.json"
SHARD_RE = re.compile(rf"^{SHARD_PREFIX}-(\d{{6}})\.tar$")

# Row status values in the index.
OK, FAILED, DROPPED, INPUT_DONE = "ok", "failed", "dropped", "input_done"

INDEX_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("status", pa.string()),  # ok | failed | dropped | input_done
    ("shard", pa.string()),  # tar file name for ok rows
    ("source", pa.string()),  # the input video
    ("transcript", pa.string()),
    ("keyword", pa.string()),
    ("matched_text", pa.string()),
    ("anchor_mode", pa.string()),
    ("anchor", pa.float64()),  # seconds in the source
    ("start", pa.float64()),  # window asked for
    ("end", pa.float64()),
    ("actual_start", pa.float64()),  # where the clip really starts (fast cuts snap to key frames)
    ("snap", pa.float64()),
    ("duration", pa.float64()),
    ("frames", pa.int64()),
    ("fps", pa.float64()),
    ("bytes", pa.int64()),
    ("reason", pa.string()),  # why a hit was dropped / an item failed
    ("error", pa.string()),  # the one-line error for failures
    ("subject", pa.string()),  # JSON of subject fields from the manifest
    ("has_audio", pa.bool_()),  # the clip holds an audio track
    ("audio_coverage", pa.float64()),  # 0-1 of the clip's span that had source audio (the rest is silence)
    ("fps_mode", pa.string()),  # "source" (the source's frame times kept) or "constant" (resampled on purpose)
])


def shard_name(number: int) -> str:
    return f"{SHARD_PREFIX}-{number:06d}.tar"


def part_name(number: int) -> str:
    return f"{SHARD_PREFIX}-{number:06d}.parquet"


def normalise_row(row: dict) -> dict:
    """A row with exactly the schema's columns (missing ones None, subject as JSON text)."""
    out = {name: row.get(name) for name in INDEX_SCHEMA.names}
    subject = out.get("subject")
    if subject is not None and not isinstance(subject, str):
        out["subject"] = json.dumps(subject, sort_keys=True, default=str)
    for col in ("frames", "bytes"):
        if out[col] is not None:
            out[col] = int(out[col])
    return out


def safe_key(text: str) -> str:
    """A WebDataset-safe key: letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "clip"


def finished_parts(root: Path) -> dict[int, Path]:
    parts = {}
    for p in root.glob(f"{SHARD_PREFIX}-*.parquet"):
        m = re.match(rf"^{SHARD_PREFIX}-(\d{{6}})\.parquet$", p.name)
        if m:
            parts[int(m.group(1))] = p
    return dict(sorted(parts.items()))
