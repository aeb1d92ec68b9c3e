"""Streaming clip datasets into PyTorch: ``ClipDataset`` (an ``IterableDataset``) and ``collate_clips``.

Each yielded sample is a dict::

    key          str      the sample key (unique in the dataset)
    frames       uint8    (T, H, W, 3) RGB, or (T, 3, H, W) with ``channels_first=True``
    times        float32  (T,) seconds from the clip's first frame
    fps          float    rate of ``frames`` (the requested ``fps``, or the clip's own)
    length       int      frames that came from the clip (T - length frames are padding: the last frame repeated)
    audio        float32  (C, N) waveform in [-1, 1] at ``sample_rate``, N = round(T / fps * sample_rate),
                          aligned with ``frames``; zeros when the clip has no audio (then ``has_audio`` is False)
    has_audio    bool
    sample_rate  int
    meta         dict     the clip's JSON: source, keyword, matched_text, anchor, window, subject fields, ...
    url          str      the shard (or mp4 file) it came from

Work is split over distributed ranks and DataLoader workers: whole shards when there are at least as many shards
as consumers, else every consumer reads all shards and keeps every n-th sample. Shard order is shuffled per epoch
(``set_epoch``) with the same seed on every consumer, then samples pass through a shuffle buffer.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from faceexpr_cli.console import log
from faceexpr_cli.dataset.sources import iter_shard, list_shards
from faceexpr_cli.errors import FxError
from faceexpr_cli.registry import Registry

# (T, H, W, 3) frames, (width, height) -> (T, height, width, 3): how ``ClipDataset(size=...)`` fits a clip.
RESIZE: Registry[Callable[[np.ndarray, tuple[int, int]], np.ndarray]] = Registry("resize mode")


def _resize_all(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    w, h = size
    if frames.shape[1:3] == (h, w):
        return frames
    interp = cv2.INTER_AREA if w * h < frames.shape[1] * frames.shape[2] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in frames])


@RESIZE.register("crop")
def fit_crop(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Aspect kept: scaled so the clip covers ``size`` (the short side for a square), then centre-cropped."""
    w, h = size
    src_h, src_w = frames.shape[1:3]
    scale = max(w / src_w, h / src_h)
    mid_w, mid_h = max(w, round(src_w * scale)), max(h, round(src_h * scale))
    mid = _resize_all(frames, (mid_w, mid_h))
    x0, y0 = (mid_w - w) // 2, (mid_h - h) // 2
    return np.ascontiguousarray(mid[:, y0:y0 + h, x0:x0 + w])


@RESIZE.register("squash")
def fit_squash(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Stretched to ``size`` whatever the clip's aspect (faces in 16:9 clips come out wide at 1:1)."""
    return _resize_all(frames, size)


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class ClipDataset(IterableDataset):
    """Stream clips from a dataset folder made by ``fx clip``, tar shards (paths or a glob), or a folder of mp4s.

    ``num_frames`` fixes T (clips are cut or padded; ``temporal="random"`` picks a random start inside longer
    clips); ``fps`` resamples; ``size`` (w, h) or an int (square) resizes, keeping the aspect by default
    (``resize="crop"``: the short side to ``size``, then a centre crop) or stretching (``resize="squash"``,
    see ``RESIZE``). ``shuffle`` is a buffer size
    (True: 256, False/0: stored order). ``rank``/``world_size`` default to torch.distributed (or RANK/WORLD_SIZE).
    ``on_error="skip"`` logs and skips clips that do not decode; "raise" stops.
    """

    def __init__(
        self,
        source: str | Path | list[str | Path],
        *,
        num_frames: int | None = None,
        fps: float | None = None,
        size: tuple[int, int] | int | None = None,
        resize: str = "crop",
        audio: bool = True,
        sample_rate: int = 16000,
        channels: int = 1,
        channels_first: bool = False,
        temporal: str = "start",
        shuffle: bool | int = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        filter: Callable[[dict], bool] | None = None,
        on_error: str = "skip",
    ):
        super().__init__()
        self.shards = list_shards(source)
        self.num_frames = num_frames
        self.fps = fps
        self.size = (size, size) if isinstance(size, int) else (tuple(size) if size else None)
        self.resize = resize
        self._fit = RESIZE.get(resize)
        self.audio = audio
        self.sample_rate = sample_rate
        self.channels = channels
        self.channels_first = channels_first
        if temporal not in ("start", "random"):
            raise ValueError("temporal must be 'start' or 'random'")
        self.temporal = temporal
        self.buffer = 256 if shuffle is True else int(shuffle or 0)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.filter = filter
        self.on_error = on_error
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle differently for each epoch (call on every rank before iterating)."""
        self.epoch = epoch

    # --- splitting --------------------------------------------------------------------------------------------
    def _consumer(self) -> tuple[int, int]:
        rank, world = _dist_rank_world()
        rank = self.rank if self.rank is not None else rank
        world = self.world_size if self.world_size is not None else world
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * nw + wid, world * nw

    def _my_shards(self) -> tuple[list[Path], int, int]:
        """(shards to read, sample stride, sample offset)."""
        consumer, total = self._consumer()
        shards = list(self.shards)
        if self.buffer:
            random.Random(self.seed + 7919 * self.epoch).shuffle(shards)
        if len(shards) >= total:
            return shards[consumer::total], 1, 0
        return shards, total, consumer

    # --- iteration --------------------------------------------------------------------------------------------
    def _raw(self):
        shards, stride, offset = self._my_shards()
        n = 0
        for shard in shards:
            for raw in iter_shard(shard):
                if self.filter is not None and not self.filter(raw.meta):
                    continue
                if n % stride == offset:
                    yield raw
                n += 1

    def __iter__(self) -> Iterator[dict[str, Any]]:
        consumer, _ = self._consumer()
        rng = random.Random(self.seed * 1_000_003 + self.epoch * 131 + consumer)
        stream = (s for s in (self._decode(raw, rng) for raw in self._raw()) if s is not None)
        if not self.buffer:
            yield from stream
            return
        buf: list[dict] = []
        for sample in stream:
            buf.append(sample)
            if len(buf) >= self.buffer:
                yield buf.pop(rng.randrange(len(buf)))
        rng.shuffle(buf)
        yield from buf

    def _decode(self, raw, rng: random.Random) -> dict[str, Any] | None:
        from faceexpr_cli.media.clip_decode import decode_clip

        try:
            start = 0.0
            if self.num_frames and self.temporal == "random":
                start = self._random_start(raw.meta, rng)
            clip = decode_clip(raw.video, fps=self.fps, start=start, num_frames=self.num_frames,
                               audio=self.audio, sample_rate=self.sample_rate, channels=self.channels, name=raw.key)
        except FxError as exc:
            if self.on_error == "raise":
                raise
            log.warning("skipping %s from %s: %s", raw.key, raw.url, exc.one_line())
            return None
        frames, length = clip.frames, len(clip.frames)
        if self.size is not None:
            frames = self._fit(frames, self.size)
        if self.num_frames and length < self.num_frames:
            frames = np.concatenate([frames, np.repeat(frames[-1:], self.num_frames - length, axis=0)])
        t = len(frames)
        times = np.arange(t) / clip.fps
        n_audio = int(round(t / clip.fps * self.sample_rate))
        has_audio = clip.audio is not None
        wave = clip.audio if has_audio else np.zeros((self.channels, 0), np.float32)
        wave = np.pad(wave, ((0, 0), (0, max(0, n_audio - wave.shape[1]))))[:, :n_audio]
        video = torch.from_numpy(np.ascontiguousarray(frames))
        if self.channels_first:
            video = video.permute(0, 3, 1, 2).contiguous()
        return {
            "key": raw.key,
            "frames": video,
            "times": torch.from_numpy(times.astype(np.float32)),
            "fps": float(clip.fps),
            "length": length,
            "audio": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
            "has_audio": has_audio,
            "sample_rate": self.sample_rate,
            "meta": raw.meta,
            "url": raw.url,
        }

    def _random_start(self, meta: dict, rng: random.Random) -> float:
        rate = self.fps or float(meta.get("fps") or 0) or 25.0
        frames = meta.get("frames")
        if not frames:
            return 0.0
        duration = frames / float(meta.get("fps") or rate)
        spare = int(np.floor(duration * rate + 1e-6)) - int(self.num_frames or 0)
        return rng.randint(0, spare) / rate if spare > 0 else 0.0


def collate_clips(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples: frames/times/audio stacked (padded to the longest with zeros), the rest as lists."""
    def pad_stack(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
        longest = max(t.shape[dim] for t in tensors)
        padded = []
        for t in tensors:
            if t.shape[dim] < longest:
                shape = list(t.shape)
                shape[dim] = longest - t.shape[dim]
                t = torch.cat([t, t.new_zeros(shape)], dim=dim)
            padded.append(t)
        return torch.stack(padded)

    return {
        "key": [b["key"] for b in batch],
        "frames": pad_stack([b["frames"] for b in batch], 0),
        "times": pad_stack([b["times"] for b in batch], 0),
        "audio": pad_stack([b["audio"] for b in batch], 1),
        "length": torch.tensor([b["length"] for b in batch]),
        "has_audio": torch.tensor([b["has_audio"] for b in batch]),
        "fps": [b["fps"] for b in batch],
        "sample_rate": batch[0]["sample_rate"],
        "meta": [b["meta"] for b in batch],
        "url": [b["url"] for b in batch],
    }


def count_samples(root: str | Path) -> int | None:
    """Samples in a dataset folder, from its index (None when there is no index)."""
    index = Path(root) / "index.parquet"
    if not index.is_file():
        return None
    import pyarrow.parquet as pq

    table = pq.read_table(index, columns=["status"])
    return sum(1 for s in table.column("status").to_pylist() if s == "ok")
