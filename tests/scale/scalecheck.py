"""Comparing two runs' outputs by content: rows apart from timings and process ids, clips by decoded frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TIMING = {"seconds", "worker_pid"}


def rows_without_timing(rows: list[dict], key=("source", "track_id", "segment")) -> list[dict]:
    clean = [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
    return sorted(clean, key=lambda r: tuple(str(r.get(k)) for k in key))


def decoded_frames(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def final_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith("."))
