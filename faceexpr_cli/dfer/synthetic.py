"""A synthetic expression dataset: face crops of the sample portraits that move in four distinct ways.

Classes (label map ``synthetic``): ``still`` (only the slow drift every clip has), ``mouth_open`` (the mouth
opens and closes, painted as the talking-head sample does), ``smile`` (the mouth corners are warped up and back)
and ``blink`` (both eyes close briefly, several times). Each clip draws its own portrait, framing, drift, speed,
phase, strength and noise from its seed, so held-out clips are new instances, never copies. Clips are written
as H.264 mp4 through the media layer, with a MAE-DFER annotation (``train.txt``) and a CSV one (``test.csv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from faceexpr_cli.samples.portraits import Portrait, load_portrait

CLASSES = ("still", "mouth_open", "smile", "blink")
PORTRAITS = ("astronaut", "grace_hopper")
WORK = 96  # the crop is animated at this size, then resized to the clip's size


@dataclass
class SyntheticSet:
    root: Path
    train: Path
    test: Path
    classes: tuple[str, ...] = CLASSES


def _crop(name: str, rng: np.random.Generator) -> tuple[np.ndarray, Portrait]:
    import cv2

    img, p = load_portrait(name)
    cx, cy = p.face_center
    side = p.face_size * 1.4  # aligned crops, as DFER datasets ship them
    x0, y0 = cx - side / 2, cy - side / 2
    s = WORK / side
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float32)
    crop = cv2.warpAffine(img, m, (WORK, WORK), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)

    def at(pt):
        return ((pt[0] - x0) * s, (pt[1] - y0) * s)

    q = replace(p, face_box=(0, 0, WORK, WORK), left_eye=at(p.left_eye), right_eye=at(p.right_eye),
                mouth=at(p.mouth), mouth_width=p.mouth_width * s, eye_width=p.eye_width * s)
    return crop, q


def _smile_warp(img: np.ndarray, p: Portrait, amount: float) -> np.ndarray:
    """Mouth corners pulled up and out by ``amount`` (0..1) of a quarter mouth width."""
    import cv2

    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    mx, my = p.mouth
    dx = np.zeros_like(xx)
    dy = np.zeros_like(yy)
    sigma = 0.25 * p.mouth_width
    for side in (-1, 1):
        cx = mx + side * 0.45 * p.mouth_width
        g = np.exp(-((xx - cx) ** 2 + (yy - my) ** 2) / (2 * sigma ** 2))
        dy += g * 0.6 * p.mouth_width * amount
        dx -= side * g * 0.2 * p.mouth_width * amount
    return cv2.remap(img, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _paint_face(base: np.ndarray, p: Portrait, mouth: float, closed: float) -> np.ndarray:
    """The crop with an open mouth (a dark ellipse) and closed eyes (cheek-coloured lids) painted on."""
    from faceexpr_cli.samples.talking_head import _paint, _soft_ellipse

    img = base.astype(np.float32)
    h, w = img.shape[:2]
    if mouth > 0.02:
        mx, my = p.mouth
        mask = _soft_ellipse(h, w, mx, my + 0.05 * p.mouth_width, 0.32 * p.mouth_width, 0.28 * p.mouth_width * mouth,
                             soft=0.3)
        _paint(img, mask, np.array([60, 15, 20], np.float32))
    if closed > 0.02:
        for ex, ey in (p.left_eye, p.right_eye):
            cy = int(min(h - 1, (ey + p.mouth[1]) / 2))
            skin = base[max(0, cy - 2):cy + 3, max(0, int(ex) - 2):int(ex) + 3].reshape(-1, 3).mean(0)
            mask = _soft_ellipse(h, w, ex, ey, 0.85 * p.eye_width, 0.6 * p.eye_width * closed, soft=0.3)
            _paint(img, mask, skin.astype(np.float32))
    return img


def _blinks(n: int, rng: np.random.Generator) -> np.ndarray:
    period = rng.uniform(6.0, 9.0)
    phase = rng.uniform(0, period)
    length = rng.uniform(3.5, 4.5)
    local = (np.arange(n) + phase) % period
    return np.clip(1 - np.abs(local - length / 2) / (length / 2), 0, 1)


def render_clip(label: str, seed: int, frames: int = 24, size: int = 64, portrait: str = "astronaut"):
    """(frames, size, size, 3) uint8 RGB of one clip."""
    import cv2

    rng = np.random.default_rng(seed)
    base, p = _crop(portrait, rng)
    t = np.arange(frames)
    cycles = rng.uniform(1.5, 2.5)
    wave = 0.5 - 0.5 * np.cos(2 * math.pi * cycles * t / frames + rng.uniform(0, 2 * math.pi))
    strength = rng.uniform(0.85, 1.0)
    drift = rng.uniform(-0.5, 0.5, size=2)
    blink = _blinks(frames, rng)
    out = []
    for i in range(frames):
        mouth = strength * wave[i] if label == "mouth_open" else 0.0
        closed = blink[i] if label == "blink" else 0.0
        img = _paint_face(base, p, mouth, closed)
        if label == "smile":
            img = _smile_warp(img, p, strength * wave[i])
        shift = drift * i / max(frames - 1, 1)
        m = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
        img = cv2.warpAffine(img, m, (WORK, WORK), borderMode=cv2.BORDER_REFLECT)
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        img = img + rng.normal(0, 1.0, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def make_synthetic(out: str | Path, *, train_per_class: int = 12, test_per_class: int = 6, frames: int = 24,
                   size: int = 64, seed: int = 0, fps: float = 25.0) -> SyntheticSet:
    """Write the clips and the two annotation files under ``out`` (a re-run with the same settings rewrites)."""
    from faceexpr_cli.media.writer import write_video

    root = Path(out)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for split, count, offset in (("train", train_per_class, 0), ("test", test_per_class, 10_000)):
        for c, label in enumerate(CLASSES):
            for i in range(count):
                clip_seed = seed * 1_000_003 + offset + c * 1000 + i
                name = f"clips/{split}_{label}_{i:03d}.mp4"
                portrait = PORTRAITS[i % len(PORTRAITS)]  # every class shows every face equally often
                write_video(root / name, render_clip(label, clip_seed, frames, size, portrait), fps, crf=16)
                lines[split].append(f"{name} {c}" if split == "train" else f"{name},{label}")
    train = root / "train.txt"
    train.write_text("\n".join(lines["train"]) + "\n", encoding="utf-8")
    test = root / "test.csv"
    test.write_text("path,label\n" + "\n".join(lines["test"]) + "\n", encoding="utf-8")
    return SyntheticSet(root, train, test)
