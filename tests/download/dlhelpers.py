"""Helpers shared by the download tests (imported by name: this folder is put on sys.path by conftest.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from faceexpr_cli.download.options import DownloadOptions, VideoOptions
from faceexpr_cli.download.retry import RetryPolicy


def payload(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fast_options(**kw) -> DownloadOptions:
    """Retries that wait milliseconds instead of seconds; everything else as the CLI's defaults."""
    retry = RetryPolicy(attempts=kw.pop("attempts", 4), scale=kw.pop("scale", 0.01), seed=0)
    kw.setdefault("video", VideoOptions())
    return DownloadOptions(retry=retry, **kw)


def write_csv(path: Path, rows: list[dict]) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def read_status(dest: Path) -> dict[str, dict]:
    """The latest JSONL record per key, and check the Parquet copy agrees on the statuses."""
    import pandas as pd

    latest = {}
    for line in (dest / "fx-download.jsonl").read_text().splitlines():
        rec = json.loads(line)
        latest[rec["key"]] = rec
    table = pd.read_parquet(dest / "fx-download.parquet")
    for row in table.to_dict("records"):
        if row["status"] != "skipped":
            assert latest[row["key"]]["status"] == row["status"]
    return latest


def leftovers(dest: Path) -> list[str]:
    """Anything in a destination that is not a finished file or the status manifest."""
    return sorted(p.name for p in dest.iterdir() if p.name.endswith((".part", ".tmp", ".validator")) or p.is_dir())
