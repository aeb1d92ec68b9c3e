"""What a run of `fx extract-feats` leaves on disk, and how a re-run knows what is done.

::

    OUT/features/<stem>-<id8>.json   the seed's layout: {video_path, label, traj: [[{frame_ind, time, box}]], ...}
                                     (float token arrays only with --json-floats)
    OUT/features/<stem>-<id8>.npz    tokens (N, D) float32 and per-row frame_ind, time, traj, track_id, box
    OUT/features/<stem>-<id8>.parquet  the same N rows as a table: traj, track_id, frame_ind, time, box and
                                     tokens as float32 list columns (tokens_raw with --smooth)
    OUT/index/parts/<source id>.parquet   one row per video, written when the video is finished
    OUT/features.parquet             all rows, one per input
    OUT/stats.json                   counts, failures, timing, model and options

Every file is written under a temporary name and renamed, so a killed run leaves whole files or none. A re-run
skips a video whose row is final, whose files exist and whose settings fingerprint is the current one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

DONE = {"ok", "no_face", "skipped"}  # a re-run skips sources whose row says one of these
FAILED = {"error"}
STATUSES = {
    "ok": "tokens written for at least one trajectory",
    "no_face": "no face on any sampled frame (the JSON lists the frames)",
    "skipped": "not a video file (inside a directory)",
    "error": "the video could not be processed (see error)",
}


def schema():
    import pyarrow as pa

    return pa.schema([
        ("source", pa.string()), ("source_id", pa.string()), ("label", pa.string()), ("label_id", pa.int64()),
        ("status", pa.string()), ("error", pa.string()), ("json", pa.string()), ("npz", pa.string()),
        ("parquet", pa.string()),
        ("fps", pa.float64()), ("width", pa.int32()), ("height", pa.int32()), ("frames", pa.int64()),
        ("sampled_frames", pa.int64()), ("face_frames", pa.int64()), ("no_face_frames", pa.int64()),
        ("trajectories", pa.int32()), ("tokens", pa.int64()), ("token_dim", pa.int32()),
        ("backend", pa.string()), ("settings", pa.string()), ("fields", pa.string()), ("seconds", pa.float64()),
    ])


def new_row(item, status: str, error: str | None = None, **values: Any) -> dict[str, Any]:
    row = {name: None for name in schema().names}
    row.update(source=item.source, source_id=item.source_id, label=item.label, label_id=item.label_id,
               status=status, error=error, fields=json.dumps(item.fields, default=str) if item.fields else None)
    row.update(values)
    return row


def output_stem(item) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(item.source).stem)[:40]
    return f"features/{stem}-{item.source_id[:8]}"


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"), default=str)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    with tmp.open("wb") as fh:  # a file object, so numpy does not append .npz to the temporary name
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    return path


# .npz arrays that become table columns, in order; 2-D arrays become float32 list columns
TOKEN_COLUMNS = ("traj", "track_id", "frame_ind", "time", "box", "crop", "tokens", "tokens_raw", "emotion", "mesh",
                 "head_pose", "apertures", "landmarks")


def write_tokens_table(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """One row per token of a video (the rows of its .npz): analysis tools read it without numpy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {}
    for name in TOKEN_COLUMNS:
        if name not in arrays:
            continue
        a = np.ascontiguousarray(arrays[name])
        if a.ndim >= 2:  # (N, D[, E]) -> (nested) list<float32> per row, the values as they are (no float64 trip)
            col = pa.array(a.astype(np.float32, copy=False).reshape(-1), pa.float32())
            for size in reversed(a.shape[1:]):
                col = pa.FixedSizeListArray.from_arrays(col, size)
            columns[name] = col
        else:
            columns[name] = pa.array(a)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)
    return path


def read_tokens(path: str | Path) -> dict[str, np.ndarray]:
    """A video's token table back as arrays named as in its .npz (list columns as (N, D) float32)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(col.type):
            shape, t = [len(col)], col.type
            while pa.types.is_fixed_size_list(t):
                shape.append(t.list_size)
                t = t.value_type
            flat = col
            while pa.types.is_fixed_size_list(flat.type):
                flat = flat.flatten()
            out[name] = flat.to_numpy(zero_copy_only=False).reshape(shape)
        else:
            out[name] = col.to_numpy()
    return out


def _write_table(rows: list[dict[str, Any]], path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema()), tmp)
    os.replace(tmp, path)
    return path


def parts_dir(out: Path) -> Path:
    return out / "index" / "parts"


def write_part(out: Path, row: dict[str, Any]) -> Path:
    return _write_table([row], parts_dir(out) / f"{row['source_id']}.parquet")


def done_rows(out: Path, settings: str) -> dict[str, dict[str, Any]]:
    """Finished rows by source: final status, same settings, and their files still there."""
    import pyarrow.parquet as pq

    done: dict[str, dict[str, Any]] = {}
    d = parts_dir(out)
    for p in sorted(d.glob("*.parquet")) if d.is_dir() else []:
        try:
            rows = pq.read_table(p).to_pylist()
        except Exception:  # an unreadable part is a video to redo, not a crash
            p.unlink(missing_ok=True)
            continue
        for row in rows:
            files = [row[k] for k in ("json", "npz", "parquet") if row.get(k)]
            if (row["status"] in DONE and row.get("settings") == settings
                    and all((out / f).is_file() for f in files)):
                done[row["source"]] = row
    return done


def write_index(out: Path, rows: list[dict[str, Any]]) -> Path:
    return _write_table(sorted(rows, key=lambda r: r["source"]), out / "features.parquet")


def write_stats(out: Path, stats: dict[str, Any]) -> Path:
    path = out / "stats.json"
    tmp = _tmp(path)
    tmp.write_text(json.dumps(stats, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_index(path: str | Path):
    """``features.parquet`` as a pandas DataFrame."""
    import pandas as pd

    return pd.read_parquet(path)


def read_features(path: str | Path) -> dict[str, np.ndarray]:
    """A video's ``.npz`` as a dict of arrays."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
