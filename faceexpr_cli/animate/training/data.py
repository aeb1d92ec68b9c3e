"""Training pairs for FOMM: two frames of one video (source, driving), identities sampled uniformly.

Videos are mp4/mov/mkv files or folders of frames (png/jpg) anywhere under ``data.path``, so ``fx crop`` output
works as it is. Identity of a video: the part of its name before ``#`` (VoxCeleb's ``id#clip`` naming), its parent
folder, or its own name. With ``id_sampling`` each item of an epoch is an identity and one of its videos is drawn,
so people with many clips do not dominate (the original's rule). Augmentation is the same for both frames of a
pair: horizontal flip, time flip (swap), colour jitter.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from faceexpr_cli.errors import DataError

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm"}
FRAME_SUFFIXES = {".png", ".jpg", ".jpeg"}


@dataclass
class VideoItem:
    path: Path
    identity: str
    is_frames: bool


def find_videos(root: str | Path, id_from: str = "prefix") -> list[VideoItem]:
    root = Path(root)
    if not root.exists():
        from faceexpr_cli.errors import MissingFileError

        raise MissingFileError(root, "training data folder")
    items: list[VideoItem] = []
    paths = [root] if root.is_file() else sorted(root.rglob("*"))
    for p in paths:
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."):
            items.append(VideoItem(p, _identity(p, id_from), False))
        elif p.is_dir() and sum(1 for q in p.iterdir() if q.suffix.lower() in FRAME_SUFFIXES) >= 2:
            items.append(VideoItem(p, _identity(p, id_from), True))
    if not items:
        raise DataError(f"{root}: no videos (mp4/mov/mkv) or frame folders found", "point data.path at fx crop output")
    return items


def _identity(path: Path, id_from: str) -> str:
    if id_from == "parent":
        return path.parent.name
    if id_from == "prefix" and "#" in path.stem:
        return path.stem.split("#", 1)[0]
    return path.stem


class FrameSource:
    """Frames of one video at ``size``, decoded on demand (one seek per frame) or all at once and cached."""

    def __init__(self, item: VideoItem, size: int, cache: bool, max_frames: int | None):
        self.item, self.size, self.cache, self.max_frames = item, size, cache, max_frames
        self._frames: np.ndarray | None = None
        self._count: int | None = None
        self._fps = 25.0

    def _load_all(self) -> np.ndarray:
        if self._frames is None:
            if self.item.is_frames:
                files = sorted(q for q in self.item.path.iterdir() if q.suffix.lower() in FRAME_SUFFIXES)
                self._frames = np.stack([self._read_image(f) for f in files[: self.max_frames]])
            else:
                from faceexpr_cli.media import read_frames

                self._frames = read_frames(self.item.path, size=(self.size, self.size), max_frames=self.max_frames)
            self._count = len(self._frames)
        return self._frames

    def _read_image(self, path: Path) -> np.ndarray:
        import cv2

        from faceexpr_cli.media import read_image

        return cv2.resize(read_image(path), (self.size, self.size), interpolation=cv2.INTER_AREA)

    def __len__(self) -> int:
        if self._count is None:
            if self.cache or self.item.is_frames:
                self._load_all()
            else:
                from faceexpr_cli.media import probe

                info = probe(self.item.path)
                self._fps = info.fps or 25.0
                self._count = min(info.frame_count, self.max_frames or info.frame_count)
        return int(self._count or 0)

    def frame(self, index: int) -> np.ndarray:
        if self.cache or self.item.is_frames:
            return self._load_all()[index]
        from faceexpr_cli.media import read_frames

        frames = read_frames(self.item.path, size=(self.size, self.size), start=index / self._fps, max_frames=1)
        if len(frames) == 0:
            raise DataError(f"{self.item.path}: frame {index} could not be decoded")
        return frames[0]


def colour_jitter(frames: torch.Tensor, brightness: float, contrast: float, saturation: float, hue: float,
                  rng: random.Random) -> torch.Tensor:
    """The same random brightness/contrast/saturation/hue change on (N, 3, H, W) frames in [0, 1]."""
    out = frames
    if brightness:
        out = out * rng.uniform(1 - brightness, 1 + brightness)
    gray = (0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2]).unsqueeze(1)
    if contrast:
        out = (out - gray.mean(dim=(1, 2, 3), keepdim=True)) * rng.uniform(1 - contrast, 1 + contrast) + \
            gray.mean(dim=(1, 2, 3), keepdim=True)
    if saturation:
        out = gray + (out - gray) * rng.uniform(1 - saturation, 1 + saturation)
    if hue:  # rotate chroma in YIQ space
        angle = rng.uniform(-hue, hue) * 2 * np.pi
        yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
        c, s = float(np.cos(angle)), float(np.sin(angle))
        rot = torch.tensor([[1.0, 0, 0], [0, c, -s], [0, s, c]])
        m = torch.linalg.inv(yiq) @ rot @ yiq
        out = torch.einsum("ij,njhw->nihw", m, out)
    return out.clamp(0, 1)


class PairDataset(torch.utils.data.Dataset):
    """Items are (source, driving) float tensors (3, S, S) in [0, 1], two distinct frames of one video."""

    def __init__(self, items: list[VideoItem], size: int, *, id_sampling: bool = True, repeats: int = 1,
                 cache: bool = False, max_frames: int | None = None, augmentation=None, seed: int = 0):
        self.sources = [FrameSource(it, size, cache, max_frames) for it in items]
        by_id: dict[str, list[int]] = defaultdict(list)
        for i, it in enumerate(items):
            by_id[it.identity].append(i)
        self.ids = sorted(by_id)
        self.by_id = by_id
        self.id_sampling = id_sampling
        self.repeats = repeats
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new pairs each epoch (call before iterating; worker processes copy the dataset then)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.ids) if self.id_sampling else len(self.sources)) * self.repeats

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = random.Random(hash((self.seed, self.epoch, index)))
        if self.id_sampling:
            video = rng.choice(self.by_id[self.ids[index % len(self.ids)]])
        else:
            video = index % len(self.sources)
        src = self.sources[video]
        n = len(src)
        if n < 2:
            raise DataError(f"{src.item.path}: needs at least 2 frames, has {n}")
        i, j = rng.sample(range(n), 2)
        pair = torch.from_numpy(np.stack([src.frame(i), src.frame(j)])).permute(0, 3, 1, 2).float() / 255.0
        aug = self.augmentation
        if aug is not None:
            if aug.horizontal_flip and rng.random() < 0.5:
                pair = pair.flip(-1)
            if aug.time_flip and rng.random() < 0.5:
                pair = pair.flip(0)
            j = aug.jitter
            pair = colour_jitter(pair, j.brightness, j.contrast, j.saturation, j.hue, rng)
        return {"source": pair[0].contiguous(), "driving": pair[1].contiguous()}
