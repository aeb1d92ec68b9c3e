"""Training data: clip sources, the subject table, and a step-seeded batch sampler.

A *plain folder* of face-clip mp4s is read with random access (``FolderClips``): the batch of step k depends only
on (seed, k, rank), so a resumed run sees exactly the batches an uninterrupted run would have seen. A dataset of
WebDataset shards made by ``fx clip`` is streamed through ``faceexpr_cli.dataset.ClipDataset`` (``ShardClips``);
there a resumed run restarts the stream with a step-dependent seed (same data distribution, not the same order).

An ``fx crop`` output folder (it has ``manifest.parquet``) is read through its manifest (``CropFolderClips``, see
``crop_folder``): only ``ok`` rows whose file is there, frame counts from the rows.

Subjects follow ``data.subject_from`` (``subjects``): by default the subject a record names, else the source video
(crop manifest rows, ``fx clip`` metadata, sidecars that record one); a plain folder without such records keeps its
old rule: the clip's first-level subfolder, else one subject named after the folder.
"""

from __future__ import annotations

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
from faceexpr_cli.train.crop_folder import crop_clips, is_crop_folder
from faceexpr_cli.train.subjects import (
    RULES,
    auto_subject,
    column_subject,
    nothing_found,
    record_fields,
    subject_rule,
    warn_unnamed,
)
from faceexpr_cli.train.subjects import check_subjects as check_subjects  # re-exported (older imports)
from faceexpr_cli.train.subjects import subject_from_meta as subject_from_meta

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
                 cache_clips: int = 64, subject_from: str = "auto"):
        self.root = Path(root)
        if not self.root.exists():
            raise MissingFileError(self.root, "dataset")
        self.size, self.fps, self.subject_from = size, fps, subject_from
        self.clips: list[ClipRef] = self._list(min_frames)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_clips

    def _list(self, min_frames: int) -> list[ClipRef]:
        from faceexpr_cli.media import probe

        size, fps = self.size, self.fps
        files = [self.root] if self.root.is_file() else sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise DataError(f"{self.root}: no clips (.mp4/.mov/.mkv) found", "point data.path at a folder of face clips")
        found, short, odd = [], [], []
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
            found.append((ClipRef(key, path, "", n, rate, info.has_audio), self._sidecar(path)))
        if short:
            log.warning("%d clip(s) shorter than %d frames skipped (e.g. %s)", len(short), min_frames, short[0])
        if odd:
            log.warning("%d clip(s) are not %dx%d and are resized on the fly (e.g. %s)", len(odd), size, size, odd[0])
        if not found:
            raise DataError(f"{self.root}: no clip has {min_frames} frames", "lower data.frames or add longer clips")
        if self.subject_from == "auto":
            rule = None
        else:
            fields = set().union(*(record_fields(meta) for _, meta in found))
            rule = subject_rule(self.subject_from, fields, f"{self.root} (its <clip>.json sidecars)")
        clips, unnamed = [], []
        for clip, meta in found:
            clip.subject = self._folder_subject(clip.path, meta) if rule is None else rule(meta)
            (clips if clip.subject else unnamed).append(clip)
        warn_unnamed(len(unnamed), self.subject_from, unnamed[0].key if unnamed else "")
        if not clips:
            raise nothing_found(self.subject_from, f"{self.root} (its <clip>.json sidecars)")
        return clips

    @staticmethod
    def _sidecar(path: Path) -> dict[str, Any]:
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            return {}
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{sidecar}: not a JSON object ({exc})") from exc
        if not isinstance(meta, dict):
            raise DataError(f"{sidecar}: not a JSON object")
        return meta

    def _folder_subject(self, path: Path, meta: dict[str, Any]) -> str:
        """``auto`` on a plain folder: the sidecar's subject (or source video), else the subfolder, else the folder."""
        found = auto_subject(meta)
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
        for (i, _), got in zip(picks, frames, strict=True):
            if len(got) < length:  # the file holds fewer frames than its record (probe or manifest row) says
                clip = self.clips[i]
                raise DataError(f"{clip.path}: decodes to {len(self.frames(i))} frames, its record says {clip.frames}",
                                "re-run fx crop on its source (it re-checks what it wrote), or remove the clip")
        return Batch(np.stack(frames), [self.clips[i].subject for i, _ in picks],
                     [self.clips[i] for i, _ in picks], [s for _, s in picks])


class CropFolderClips(FolderClips):
    """An ``fx crop`` output folder: the clips of its manifest's ``ok`` rows (see ``crop_folder``)."""

    def _list(self, min_frames: int) -> list[ClipRef]:
        return crop_clips(self.root, self.size, min_frames, self.fps, self.subject_from)


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
    """A dataset of ``fx clip`` shards, streamed by ``faceexpr_cli.dataset.ClipDataset``.

    With an ``index.parquet`` the subject of every ``ok`` sample is worked out once from its index row (so the
    subject table and the stream agree); clips too short for the window or without a subject are counted and left
    out. Without an index (a glob of shards) each sample's JSON is read as it streams.
    """

    streaming = True

    def __init__(self, root: str | Path, size: int, min_frames: int, fps: float | None = None,
                 subject_from: str = "auto"):
        from faceexpr_cli.dataset import list_shards

        self.root, self.size, self.length, self.fps = Path(root), size, min_frames, fps
        self.subject_from = subject_from
        self.shards = list_shards(root)  # never empty: it refuses a folder without shards or videos itself
        self.subject_of: dict[str, str] | None = None
        index = self.root / "index.parquet"
        if self.root.is_dir() and index.is_file():
            self.subject_of = self._read_index(index)
            self.rule = None
        else:
            self.rule = None if subject_from == "auto" else RULES.get(subject_from) or column_subject(subject_from)

    def _read_index(self, index: Path) -> dict[str, str]:
        import pyarrow.parquet as pq

        rows = [r for r in pq.read_table(index).to_pylist() if r["status"] == "ok"]
        rule = subject_rule(self.subject_from, set().union(*(record_fields(r) for r in rows)) if rows else set(),
                            str(index))
        subject_of, short, unnamed = {}, [], []
        for r in rows:
            n = r.get("frames")
            if self.fps and r.get("duration"):
                n = int(np.floor(r["duration"] * self.fps + 1e-6))
            if n is not None and n < self.length:
                short.append(r["key"])
                continue
            name = rule(r) or (self.root.name if self.subject_from == "auto" else None)
            if name is None:
                unnamed.append(r["key"])
                continue
            subject_of[r["key"]] = name
        if short:
            log.warning("%d clip(s) shorter than %d frames skipped (e.g. %s)", len(short), self.length, short[0])
        warn_unnamed(len(unnamed), self.subject_from, unnamed[0] if unnamed else "")
        if rows and not subject_of:
            if unnamed:
                raise nothing_found(self.subject_from, str(self.root))
            raise DataError(f"{self.root}: no clip has {self.length} frames", "lower data.frames or add longer clips")
        return subject_of

    def subjects(self) -> list[str]:
        return sorted(set(self.subject_of.values())) if self.subject_of is not None else []

    def _subject(self, sample: dict) -> str | None:
        if self.subject_of is not None:
            return self.subject_of.get(sample["key"])
        found = (self.rule or auto_subject)(sample["meta"])
        return found or (self.root.name if self.rule is None else None)

    def stream(self, batch_clips: int, seed: int, rank: int, world: int, start: int) -> Iterator[Batch]:
        from faceexpr_cli.dataset import ClipDataset

        epoch = 0
        while True:
            ds = ClipDataset(self.shards, num_frames=self.length, fps=self.fps, size=self.size, audio=False,
                             temporal="random", shuffle=True, seed=seed + 7 * start, rank=rank, world_size=world)
            ds.set_epoch(epoch)
            group: list[tuple[dict, str]] = []
            for sample in ds:
                subject = self._subject(sample)
                if sample["length"] < self.length or subject is None:
                    continue
                group.append((sample, subject))
                if len(group) == batch_clips:
                    yield self._to_batch(group)
                    group = []
            epoch += 1

    @staticmethod
    def _to_batch(group: list[tuple[dict, str]]) -> Batch:
        clips = [ClipRef(s["key"], Path(s["url"] or s["key"]), subject, int(s["length"]), float(s["fps"]))
                 for s, subject in group]
        return Batch(np.stack([s["frames"].numpy() for s, _ in group]), [c.subject for c in clips], clips,
                     [0] * len(clips))


def _is_shards(path: str | Path) -> bool:
    p = Path(path)
    return (p.is_dir() and any(p.glob("*.tar"))) or p.suffix == ".tar" or any(ch in str(path) for ch in "*?[")


def _open_crop(path, size, frames, fps, cache, subject_from):
    return CropFolderClips(path, size, frames, fps, cache, subject_from)


def _open_shards(path, size, frames, fps, cache, subject_from):
    return ShardClips(path, size, frames, fps, subject_from)


def _open_folder(path, size, frames, fps, cache, subject_from):
    return FolderClips(path, size, frames, fps, cache, subject_from)


# What data.path can be, tried in order: the first kind whose test passes opens it.
SOURCE_KINDS = (
    ("crop folder", is_crop_folder, _open_crop),
    ("fx clip dataset", _is_shards, _open_shards),
    ("clip folder", lambda path: True, _open_folder),
)


def open_source(path: str | Path, size: int, frames: int, fps: float | None = None, cache_clips: int = 64,
                subject_from: str = "auto"):
    """A crop folder -> ``CropFolderClips``; ``clips-*.tar`` shards (folder or glob) -> ``ShardClips``; else a
    folder of clips -> ``FolderClips``."""
    for _, test, make in SOURCE_KINDS:
        if test(path):
            return make(path, size, frames, fps, cache_clips, subject_from)
    raise AssertionError("the last source kind accepts every path")


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
