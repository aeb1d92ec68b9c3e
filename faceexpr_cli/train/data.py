"""Training data: clip sources, the subject table, and a step-seeded batch sampler.

A *plain folder* of face-clip mp4s is read with random access (``FolderClips``): the batch of step k depends only
on (seed, k, rank), so a resumed run sees exactly the batches an uninterrupted run would have seen. A dataset of
WebDataset shards made by ``fx clip`` is streamed through ``faceexpr_cli.dataset.ClipDataset`` (``ShardClips``);
there a resumed run restarts the stream with a step-dependent seed (same data distribution, not the same order).

Subjects: a ``<clip>.json`` sidecar's ``subject_id``/``subject`` field, else the clip's first-level subfolder, else
one subject named after the folder.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.errors import DataError, MissingFileError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".webm")


@dataclass
class ClipRef:
    key: str
    path: Path
    subject: str
    frames: int
    fps: float
    has_audio: bool = False


@dataclass
class Batch:
    frames: np.ndarray  # (B, T, H, W, 3) uint8
    subjects: list[str]
    clips: list[ClipRef]
    starts: list[int]


def subject_from_meta(meta: dict[str, Any]) -> str | None:
    """The subject id in a clip's metadata (seed-style fields or ``fx clip``'s ``subject`` JSON)."""
    for key in ("subject_id", "subject"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip().startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if isinstance(value, dict):
            value = value.get("subject_id", value.get("id"))
        if value not in (None, ""):
            return str(value)
    return None


class SubjectTable:
    """Subject id (string) -> embedding row. Saved with every checkpoint as ``subjects.json``."""

    def __init__(self, names: list[str] | None = None, capacity: int | None = None):
        self.rows: dict[str, int] = {}
        self.capacity = capacity
        for name in names or []:
            self.add(name)

    def add(self, name: str) -> int:
        if name not in self.rows:
            if self.capacity is not None and len(self.rows) >= self.capacity:
                raise DataError(f"subject '{name}' does not fit: the model has {self.capacity} subject rows",
                                "raise max_subjects in the model args (expression.args.max_subjects=...)")
            self.rows[name] = len(self.rows)
        return self.rows[name]

    def row(self, name: str) -> int:
        if name not in self.rows:
            known = ", ".join(list(self.rows)[:5]) + (" ..." if len(self.rows) > 5 else "")
            raise DataError(f"subject '{name}' is not in the subject table ({len(self.rows)} subjects: {known})",
                            "train with this subject, or pass a known subject id")
        return self.rows[name]

    def to_json(self) -> str:
        return json.dumps({"subjects": list(self.rows)}, indent=1)

    @classmethod
    def load(cls, path: str | Path, capacity: int | None = None) -> SubjectTable:
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(path, "subject table")
        return cls(json.loads(path.read_text())["subjects"], capacity)


class FolderClips:
    """Random access to a folder of clips; decoded clips stay in a small LRU cache."""

    streaming = False

    def __init__(self, root: str | Path, size: int, min_frames: int, fps: float | None = None,
                 cache_clips: int = 64):
        from faceexpr_cli.media import probe

        self.root = Path(root)
        if not self.root.exists():
            raise MissingFileError(self.root, "dataset")
        self.size, self.fps = size, fps
        files = [self.root] if self.root.is_file() else sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise DataError(f"{self.root}: no clips (.mp4/.mov/.mkv) found", "point data.path at a folder of face clips")
        self.clips: list[ClipRef] = []
        short, odd = [], []
        for path in files:
            info = probe(path)
            rate = fps or info.fps
            n = int(info.frame_count if fps is None else np.floor(info.duration * fps + 1e-6))
            if n < min_frames:
                short.append(path.name)
                continue
            if (info.width, info.height) != (size, size):
                odd.append(f"{path.name} {info.width}x{info.height}")
            key = str(path.relative_to(self.root)) if path != self.root else path.name
            self.clips.append(ClipRef(key, path, self._subject(path), n, rate, info.has_audio))
        if short:
            log.warning("%d clip(s) shorter than %d frames skipped (e.g. %s)", len(short), min_frames, short[0])
        if odd:
            log.warning("%d clip(s) are not %dx%d and are resized on the fly (e.g. %s)", len(odd), size, size, odd[0])
        if not self.clips:
            raise DataError(f"{self.root}: no clip has {min_frames} frames", "lower data.frames or add longer clips")
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_clips

    def _subject(self, path: Path) -> str:
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            try:
                found = subject_from_meta(json.loads(sidecar.read_text()))
            except (json.JSONDecodeError, AttributeError) as exc:
                raise DataError(f"{sidecar}: not a JSON object ({exc})") from exc
            if found:
                return found
        rel = path.relative_to(self.root) if path != self.root else Path(path.name)
        return rel.parts[0] if len(rel.parts) > 1 else self.root.name

    def subjects(self) -> list[str]:
        return sorted({c.subject for c in self.clips})

    def frames(self, index: int) -> np.ndarray:
        """All frames of clip ``index`` at size x size, uint8 (T, H, W, 3)."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        from faceexpr_cli.media import read_frames

        clip = self.clips[index]
        arr = read_frames(clip.path, size=(self.size, self.size), fps=self.fps, max_frames=clip.frames)
        if self._cache_size:
            self._cache[index] = arr
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return arr

    def pick(self, rng: np.random.Generator, count: int, length: int) -> list[tuple[int, int]]:
        """``count`` (clip index, start frame) pairs; clips are drawn without replacement when possible."""
        replace = count > len(self.clips)
        idx = rng.choice(len(self.clips), size=count, replace=replace)
        return [(int(i), int(rng.integers(0, self.clips[i].frames - length + 1))) for i in idx]

    def batch(self, picks: list[tuple[int, int]], length: int) -> Batch:
        frames = [self.frames(i)[s:s + length] for i, s in picks]
        return Batch(np.stack(frames), [self.clips[i].subject for i, _ in picks],
                     [self.clips[i] for i, _ in picks], [s for _, s in picks])


class BatchStream:
    """Batches for steps start, start+1, ...; decoded ``workers`` steps ahead in threads (PyAV frees the GIL)."""

    def __init__(self, source: FolderClips, batch_clips: int, length: int, seed: int, rank: int, start: int,
                 workers: int = 2):
        self.source, self.batch_clips, self.length = source, batch_clips, length
        self.seed, self.rank, self.step = seed, rank, start
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers else None
        self.ahead: OrderedDict[int, Any] = OrderedDict()
        self.workers = workers

    def _make(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, step, self.rank])
        return self.source.batch(self.source.pick(rng, self.batch_clips, self.length), self.length)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            if self.pool is None:
                yield self._make(self.step)
            else:
                for s in range(self.step, self.step + self.workers + 1):
                    if s not in self.ahead:
                        self.ahead[s] = self.pool.submit(self._make, s)
                yield self.ahead.pop(self.step).result()
            self.step += 1

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


class ShardClips:
    """A dataset of ``fx clip`` shards, streamed by ``faceexpr_cli.dataset.ClipDataset``."""

    streaming = True

    def __init__(self, root: str | Path, size: int, min_frames: int, fps: float | None = None):
        from faceexpr_cli.dataset import list_shards

        self.root, self.size, self.length, self.fps = Path(root), size, min_frames, fps
        self.shards = list_shards(root)
        if not self.shards:
            raise DataError(f"{root}: no clip shards found", "point data.path at a folder made by `fx clip`")

    def subjects(self) -> list[str]:
        index = self.root / "index.parquet"
        if not index.is_file():
            return []
        import pyarrow.parquet as pq

        rows = pq.read_table(index, columns=["status", "subject"]).to_pylist()
        found = {subject_from_meta({"subject": r["subject"]}) for r in rows if r["status"] == "ok"}
        return sorted(s for s in found if s)

    def stream(self, batch_clips: int, seed: int, rank: int, world: int, start: int) -> Iterator[Batch]:
        from faceexpr_cli.dataset import ClipDataset

        epoch = 0
        while True:
            ds = ClipDataset(self.shards, num_frames=self.length, fps=self.fps, size=self.size, audio=False,
                             temporal="random", shuffle=True, seed=seed + 7 * start, rank=rank, world_size=world)
            ds.set_epoch(epoch)
            group: list[dict] = []
            for sample in ds:
                if sample["length"] < self.length:
                    continue
                group.append(sample)
                if len(group) == batch_clips:
                    yield self._to_batch(group)
                    group = []
            epoch += 1

    def _to_batch(self, samples: list[dict]) -> Batch:
        clips = [ClipRef(s["key"], Path(s["url"] or s["key"]), subject_from_meta(s["meta"]) or self.root.name,
                         int(s["length"]), float(s["fps"])) for s in samples]
        return Batch(np.stack([s["frames"].numpy() for s in samples]), [c.subject for c in clips], clips,
                     [0] * len(clips))


def open_source(path: str | Path, size: int, frames: int, fps: float | None = None, cache_clips: int = 64):
    """A clip folder -> ``FolderClips``; a folder (or glob) of ``clips-*.tar`` shards -> ``ShardClips``."""
    p = Path(path)
    if (p.is_dir() and any(p.glob("*.tar"))) or p.suffix == ".tar" or any(ch in str(path) for ch in "*?["):
        return ShardClips(path, size, frames, fps)
    return FolderClips(path, size, frames, fps, cache_clips)


def make_sample_clips(out: str | Path, seconds: float = 2.0, fps: float = 25.0, size: int = 112,
                      clips_per_subject: int = 2) -> Path:
    """The sample face-clip folder: each public-domain portrait is one subject (subfolder), a few clips each.

    The talking head is rendered square with the face filling most of the frame, i.e. already a face crop.
    """
    from faceexpr_cli.samples import make_talking_head

    out = Path(out)
    for portrait in ("astronaut", "grace_hopper"):
        for k in range(clips_per_subject):
            path = out / portrait / f"clip_{k:02d}.mp4"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                make_talking_head(path, portraits=(portrait,), seconds=seconds, fps=fps, width=size, height=size,
                                  face_fraction=0.7, seed=k)
    return out
