"""The run's record: one manifest row per clip (or per video that made none), and ``stats.json``.

Each finished video writes its rows to ``manifest/parts/<source id>.parquet`` (temporary name, then rename),
so a run killed halfway loses at most the videos in flight, and a re-run reads the parts to skip what is done.
At the end the parts are combined into ``manifest.parquet``. The schema is explicit so that parts whose
optional columns are all empty still combine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATUSES = {
    "ok": "clip written",
    "dropped": "clip left the frame and --out-of-frame drop was asked",
    "no_face": "no face found in the video",
    "no_clip": "faces found, but no track met the rules (see error)",
    "skipped": "not a video file (inside a directory)",
    "error": "the video could not be processed (see error)",
}
DONE = {"ok", "dropped", "no_face", "no_clip", "skipped"}  # a re-run skips sources whose rows all say these
FAILED = {"error"}


def schema():
    import pyarrow as pa

    box_list = pa.list_(pa.list_(pa.float32()))
    return pa.schema([
        ("source", pa.string()), ("source_id", pa.string()), ("status", pa.string()), ("error", pa.string()),
        ("clip", pa.string()), ("track_id", pa.int32()), ("segment", pa.int32()),
        ("start_time", pa.float64()), ("end_time", pa.float64()), ("start_frame", pa.int64()),
        ("end_frame", pa.int64()), ("n_frames", pa.int64()), ("fps", pa.float64()),
        ("src_width", pa.int32()), ("src_height", pa.int32()), ("size", pa.int32()), ("mode", pa.string()),
        ("crop_boxes", box_list), ("face_boxes", box_list), ("mean_score", pa.float32()),
        ("face_size", pa.float32()), ("min_face_size", pa.float32()), ("yaw_mean", pa.float32()),
        ("frontal_fraction", pa.float32()), ("jitter", pa.float32()), ("embedding", pa.list_(pa.float32())),
        ("has_audio", pa.bool_()), ("backend", pa.string()), ("seconds", pa.float64()),
        # what the verified clip file holds (the span above is the source's; these are the file's)
        ("duration", pa.float64()), ("audio_coverage", pa.float32()), ("fps_mode", pa.string()),
        ("bytes", pa.int64()),
        ("worker_pid", pa.int64()),  # the process that cropped the source (fx crop --workers N)
    ])


def new_row(source: str, source_id: str, status: str, error: str | None = None, **values: Any) -> dict[str, Any]:
    row = {name: None for name in schema().names}
    row.update(source=source, source_id=source_id, status=status, error=error, **values)
    return row


def _atomic_write_table(rows: list[dict[str, Any]], path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema()), tmp)
    os.replace(tmp, path)
    return path


def parts_dir(out: Path) -> Path:
    return out / "manifest" / "parts"


def part_path(out: Path, source_id: str) -> Path:
    return parts_dir(out) / f"{source_id}.parquet"


def write_part(out: Path, source_id: str, rows: list[dict[str, Any]]) -> Path:
    return _atomic_write_table(rows, part_path(out, source_id))


def remove_part(out: Path, source_id: str) -> None:
    part_path(out, source_id).unlink(missing_ok=True)


def read_parts(out: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    d = parts_dir(out)
    if d.is_dir():
        for p in sorted(d.glob("*.parquet")):
            try:
                rows.extend(pq.read_table(p).to_pylist())
            except Exception:  # an unreadable part is a video to redo, not a crash
                p.unlink(missing_ok=True)
    return rows


def done_sources(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Sources whose rows are all final and whose clips are all on disk: a re-run skips them."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in read_parts(out):
        by_source.setdefault(row["source"], []).append(row)
    done = {}
    for source, rows in by_source.items():
        final = all(r["status"] in DONE for r in rows)
        clips_there = all(_clip_intact(out, r) for r in rows if r["status"] == "ok")
        if final and clips_there:
            done[source] = rows
    return done


def _clip_intact(out: Path, row: dict[str, Any]) -> bool:
    """An ``ok`` row is trusted only while its clip is on disk with the size it was verified at."""
    if not row.get("clip"):
        return False
    path = out / row["clip"]
    if not path.is_file():
        return False
    size = row.get("bytes")
    return size is not None and path.stat().st_size == size  # rows from before sizes were kept are redone


def write_manifest(out: Path, rows: list[dict[str, Any]]) -> Path:
    rows = sorted(rows, key=lambda r: (r["source"], r["track_id"] if r["track_id"] is not None else -1,
                                       r["segment"] or 0))
    return _atomic_write_table(rows, out / "manifest.parquet")


def write_stats(out: Path, stats: dict[str, Any]) -> Path:
    path = out / "stats.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(stats, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path):
    """The manifest as a pandas DataFrame."""
    import pandas as pd

    return pd.read_parquet(path)
