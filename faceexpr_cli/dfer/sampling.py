"""Which frames and which crop of a clip a model sees (MAE-DFER's sampling, options exposed).

- training: ``frames`` indices ``stride`` apart from a random start inside the clip (a shorter clip repeats its
  last frame), a random square crop of at least ``min_scale`` of the short side resized to ``size``, a random
  horizontal flip;
- testing: ``temporal_views`` windows with evenly spaced starts x ``spatial_views`` square crops evenly spaced
  along the long side; the model's class probabilities are averaged over the views.

The batch of training step k is a pure function of (seed, k), so a resumed run sees the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def window(length: int, frames: int, stride: int, start: int) -> np.ndarray:
    idx = start + np.arange(frames) * stride
    return np.clip(idx, 0, max(length - 1, 0))


def train_start(length: int, frames: int, stride: int, rng: np.random.Generator) -> int:
    spare = length - ((frames - 1) * stride + 1)
    return int(rng.integers(0, spare + 1)) if spare > 0 else 0


def view_starts(length: int, frames: int, stride: int, views: int) -> list[int]:
    spare = max(length - ((frames - 1) * stride + 1), 0)
    if views == 1:
        return [spare // 2]
    return [round(k * spare / (views - 1)) for k in range(views)]


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    interp = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def square_crops(frames: np.ndarray, size: int, views: int) -> list[np.ndarray]:
    """``views`` crops of the short side's size, evenly spaced along the long side, each resized to ``size``."""
    h, w = frames.shape[1:3]
    side = min(h, w)
    spare = max(h, w) - side
    offs = [spare // 2] if views == 1 else [round(k * spare / (views - 1)) for k in range(views)]
    out = []
    for o in offs:
        crop = frames[:, o:o + side, :] if h > w else frames[:, :, o:o + side]
        out.append(_resize(np.ascontiguousarray(crop), size))
    return out


def random_crop(frames: np.ndarray, size: int, min_scale: float, flip: bool, rng: np.random.Generator) -> np.ndarray:
    h, w = frames.shape[1:3]
    side = int(round(min(h, w) * rng.uniform(min_scale, 1.0)))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = frames[:, y:y + side, x:x + side]
    if flip and rng.random() < 0.5:
        crop = crop[:, :, ::-1]
    return _resize(np.ascontiguousarray(crop), size)


@dataclass(frozen=True)
class Sampling:
    size: int
    frames: int
    stride: int
    temporal_views: int = 2
    spatial_views: int = 2
    min_scale: float = 0.7
    flip: bool = True

    def train_clip(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        idx = window(len(frames), self.frames, self.stride, train_start(len(frames), self.frames, self.stride, rng))
        return random_crop(frames[idx], self.size, self.min_scale, self.flip, rng)

    def test_views(self, frames: np.ndarray) -> list[np.ndarray]:
        views = []
        for s in view_starts(len(frames), self.frames, self.stride, self.temporal_views):
            views += square_crops(frames[window(len(frames), self.frames, self.stride, s)], self.size,
                                  self.spatial_views)
        return views


def to_tensor(clips: list[np.ndarray]):
    """uint8 (T, H, W, 3) clips -> float (B, T, 3, H, W) in [0, 1]."""
    import torch

    x = torch.from_numpy(np.stack(clips))
    return x.permute(0, 1, 4, 2, 3).float().div_(255)
