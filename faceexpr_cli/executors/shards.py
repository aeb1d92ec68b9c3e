"""Splitting a run's items into shards, and the per-item checkpoints that make a retried shard cheap.

A shard is K consecutive items (input order), run as one task. As each item finishes, the worker stores its
result under ``<root>/.fx-shards/<run id>/<item key>.pkl`` (temporary name, then rename; through fsspec, so the
root may be a shared folder or a bucket). A shard that Ray retries after its worker died reads these first and
returns the stored results instead of redoing those items; the driver removes the run's folder at the end.
"""

from __future__ import annotations

import math
import os
import pickle
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SHARDS_DIR = ".fx-shards"
TASKS_PER_WORKER = 4  # an automatic shard size leaves about this many shards per worker, for balance


@dataclass(frozen=True)
class Shard:
    index: int
    positions: tuple[int, ...]  # the items' positions in the run's item list


def auto_shard_size(n_items: int, workers: int, *, cap: int = 32) -> int:
    return max(1, min(cap, math.ceil(n_items / max(1, workers * TASKS_PER_WORKER))))


def plan_shards(n_items: int, shard_size: int) -> list[Shard]:
    """Consecutive runs of ``shard_size`` positions; every position in exactly one shard."""
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    return [Shard(i, tuple(range(start, min(start + shard_size, n_items))))
            for i, start in enumerate(range(0, n_items, shard_size))]


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Checkpoints:
    """Item results of one run, readable by any worker of the cluster (picklable: it holds only a URL)."""

    def __init__(self, root: str, run_id: str):
        self.url = f"{str(root).rstrip('/')}/{SHARDS_DIR}/{run_id}"

    def _fs(self):
        from fsspec.core import url_to_fs

        return url_to_fs(self.url)

    def _path(self, key: str) -> tuple[Any, str]:
        fs, base = self._fs()
        return fs, f"{base}/{key}.pkl"

    def put(self, key: str, result: Any) -> None:
        fs, path = self._path(key)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path.rsplit('/', 1)[0]}/.{key}.{os.getpid()}.part"
        with fs.open(tmp, "wb") as f:
            f.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        fs.mv(tmp, path)

    def get(self, key: str) -> Any | None:
        """The stored result, or None (not finished, or a file cut short by a dying worker)."""
        fs, path = self._path(key)
        try:
            with fs.open(path, "rb") as f:
                return pickle.loads(f.read())
        except (FileNotFoundError, EOFError, pickle.UnpicklingError):
            return None

    def count(self) -> int:
        fs, base = self._fs()
        try:
            fs.invalidate_cache(base)
            return sum(1 for p in fs.ls(base, detail=False) if str(p).endswith(".pkl"))
        except (FileNotFoundError, OSError):
            return 0

    def remove(self) -> None:
        import contextlib

        fs, base = self._fs()
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.rm(base, recursive=True)
        parent = base.rsplit("/", 1)[0]
        with contextlib.suppress(FileNotFoundError, OSError):
            if not fs.ls(parent, detail=False):
                fs.rmdir(parent)


def keys_unique(keys: Sequence[str]) -> bool:
    return len(set(keys)) == len(keys)
