"""A video whose frames say their own index, with a beeping tone: ground truth for frame-accurate cutting.

Each frame carries its index as 12 black/white blocks along the top (big enough to survive H.264), over a moving
gradient so that the encoder has real work. The audio is a quiet 220 Hz tone with a loud 1 kHz beep starting at
every whole second, so a clip's audio offset can be measured against its first frame.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BITS = 12
BAND = 1 / 6  # the code band's share of the frame height


@dataclass
class CodedVideo:
    path: Path
    fps: float
    n_frames: int
    width: int
    height: int
    beep_every: float = 1.0
    beep_length: float = 0.12


def code_frame(index: int, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    shift = (index * 3) % width
    img = np.stack([(xx + shift) % 256, (yy * 2 + shift) % 256, np.full_like(xx, 96)], axis=-1).astype(np.uint8)
    band = max(8, int(height * BAND))
    img[:band] = 0
    block = width // BITS
    for b in range(BITS):
        if (index >> b) & 1:
            img[2:band - 2, b * block + 2:(b + 1) * block - 2] = 255
    return img


def read_code(image: np.ndarray) -> int:
    """The frame index painted by ``code_frame`` (works after resizing, as long as the aspect is kept)."""
    h, w = image.shape[:2]
    band = max(2, int(h * BAND))
    block = w / BITS
    grey = image[:band].mean(axis=2) if image.ndim == 3 else image[:band]
    value = 0
    for b in range(BITS):
        x0, x1 = int(b * block + block * 0.3), int((b + 1) * block - block * 0.3)
        y0, y1 = int(band * 0.3), max(int(band * 0.3) + 1, int(band * 0.7))
        if grey[y0:y1, x0:x1].mean() > 128:
            value |= 1 << b
    return value


def tone_with_beeps(seconds: float, rate: int = 16000, every: float = 1.0, length: float = 0.12) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    sig = 0.08 * np.sin(2 * np.pi * 220 * t)
    beep = np.mod(t, every) < length
    sig[beep] += 0.7 * np.sin(2 * np.pi * 1000 * t[beep])
    return sig


def beep_onsets(wave: np.ndarray, rate: int) -> np.ndarray:
    """Times (s) where the loud beep starts in a mono waveform."""
    loud = np.abs(wave) > 0.4
    win = max(1, rate // 500)  # 2 ms: an envelope that ignores single zero crossings
    env = np.convolve(loud.astype(float), np.ones(win), mode="same") > 0
    starts = np.flatnonzero(env[1:] & ~env[:-1]) + 1
    if env[0]:
        starts = np.concatenate([[0], starts])
    return starts / rate


def make_coded_video(
    out: str | Path, *, seconds: float = 4.0, fps: float = 25.0, width: int = 192, height: int = 96,
    audio: bool = True,
) -> CodedVideo:
    """Write the coded video (H.264 + AAC, x264's default key frame interval)."""
    from faceexpr_cli.media.writer import VideoWriter
    from faceexpr_cli.samples.talking_head import write_wav

    out = Path(out)
    n = int(round(seconds * fps))
    with tempfile.TemporaryDirectory() as tmp:
        wav = None
        if audio:
            wav = write_wav(Path(tmp) / "tone.wav", tone_with_beeps(seconds), 16000)
        with VideoWriter(out, fps, audio=wav) as writer:
            for i in range(n):
                writer.write(code_frame(i, width, height))
    return CodedVideo(out, fps, n, width, height)
