"""A speaking portrait for tests and the demo: the mouth really opens (the jaw and lower lip move) with a voice.

``samples.make_talking_head`` paints the mouth opening as a dark ellipse, which a 68-point landmark fitter barely
sees (correlation ~0.4 between dlib's inner-lip gap and the painted opening). Here the portrait's own landmarks
are moved - lower lip and chin down by ``opening * depth`` inter-ocular units - and the image is warped through them
by the ``landmarks`` engine, so the face geometry changes as in real speech; the audio is a voiced buzz whose
loudness is the opening (``samples.talking_head.mouth_curve``: syllables in words with pauses, per seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOWER_JAW = tuple(range(4, 13))
LOWER_LIP = (55, 56, 57, 58, 59, 64, 65, 66, 67)


@dataclass
class SpeakingSample:
    path: Path
    fps: float
    mouth_open: np.ndarray  # (T,) in [0, 1]: the ground truth the voice's loudness follows
    rate: int = 16000


def voice(opening: np.ndarray, fps: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A buzz (120-160 Hz, a few harmonics) whose amplitude follows ``opening``, plus a little noise."""
    n = int(round(len(opening) / fps * rate))
    t = np.arange(n) / rate
    env = np.interp(t, np.arange(len(opening)) / fps, opening)
    rng = np.random.default_rng(seed)
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6.28))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    buzz = sum(np.sin(k * phase) * 0.8 ** k for k in range(1, 10))
    return np.clip(0.3 * env * buzz + 0.002 * rng.standard_normal(n), -1, 1).astype(np.float32)


def portrait_crop(name: str, size: int) -> np.ndarray:
    """A square crop around the portrait's face (1.8 face widths), resized to ``size``."""
    import cv2

    from faceexpr_cli.samples import load_portrait

    img, p = load_portrait(name)
    x0, y0, x1, y1 = p.face_box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, 0.9 * (x1 - x0)
    y_lo, x_lo = int(max(0, cy - r)), int(max(0, cx - r))
    crop = np.ascontiguousarray(img[y_lo:int(cy + r), x_lo:int(cx + r)])
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def make_speaking_portrait(out: str | Path, *, portrait: str = "astronaut", seconds: float = 4.0, fps: float = 25.0,
                           size: int = 160, seed: int = 0, depth: float = 0.35, audio: bool = True) -> SpeakingSample:
    """Write ``out`` (H.264 + AAC) and return the mouth-opening curve it was made from."""
    import tempfile

    from faceexpr_cli.animate.engines import EngineOptions, Motion, get_engine
    from faceexpr_cli.media import VideoWriter
    from faceexpr_cli.samples.talking_head import mouth_curve, write_wav

    out = Path(out)
    n = max(1, int(round(seconds * fps)))
    opening = mouth_curve(np.arange(n) / fps, seed)
    # a 16x16 spline grid (the card's tiny variant): coarse but ample for a synthetic mouth, ~100x faster
    engine = get_engine("landmarks", EngineOptions(face_backend="dlib", tiny=True))
    source = engine.set_source(portrait_crop(portrait, size), portrait).points[0]
    unit = float(np.linalg.norm((source[42] + source[45]) / 2 - (source[36] + source[39]) / 2))
    move = np.zeros_like(source)
    move[list(LOWER_LIP), 1] = 1.0
    move[list(LOWER_JAW), 1] = 0.6
    targets = source[None] + opening[:, None, None] * move[None] * depth * unit
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "voice.wav", voice(opening, fps, 16000, seed), 16000) if audio else None
        with VideoWriter(out, fps, audio=wav) as writer:
            for i in range(0, n, 16):
                for frame in engine.render(Motion(targets[i:i + 16].astype(np.float32))):
                    writer.write(frame)
    return SpeakingSample(out, fps, opening)
