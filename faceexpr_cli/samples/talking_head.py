"""A deterministic talking-head test video built from a portrait, with known per-frame motion.

The head (an elliptical cut-out of the portrait around the face) moves over a still background: a turn
(horizontal shift with a slight horizontal squash), a nod (vertical shift with a small roll), the mouth opens and
closes in syllables, and the eyes blink. The audio is a voiced buzz whose loudness follows the mouth opening, so
lip sync can be checked. Every frame's affine head transform and the resulting face key points are returned.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceexpr_cli.samples.portraits import Portrait, load_portrait


@dataclass
class ActorTrack:
    portrait: str
    affine: np.ndarray  # (T, 2, 3): portrait pixels -> frame pixels
    face_box: np.ndarray  # (T, 4) x0, y0, x1, y1 in frame pixels
    left_eye: np.ndarray  # (T, 2)
    right_eye: np.ndarray
    mouth: np.ndarray


@dataclass
class TalkingHead:
    path: Path
    fps: float
    n_frames: int
    width: int
    height: int
    mouth_open: np.ndarray  # (T,) in [0, 1]
    eyes_closed: np.ndarray  # (T,) in [0, 1]
    actors: list[ActorTrack] = field(default_factory=list)
    audio_rate: int = 16000

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


def mouth_curve(t: np.ndarray, seed: int) -> np.ndarray:
    """Syllables at ~4 Hz grouped in words, with pauses; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi)
    syll = np.abs(np.sin(2 * np.pi * 2.0 * t + phase))
    words = (np.sin(2 * np.pi * 0.35 * t + phase * 0.5) > -0.4).astype(float)
    return np.clip(syll * words, 0, 1)


def blink_curve(t: np.ndarray, period: float = 1.7, length: float = 0.16) -> np.ndarray:
    """Eyes close for ``length`` seconds every ``period`` seconds (first blink at 0.8 s)."""
    local = np.mod(t - 0.8, period)
    closed = np.clip(1 - np.abs(local - length / 2) / (length / 2), 0, 1)
    closed[t < 0.8 - 1e-9] = 0
    return closed


def head_affine(
    t: float, p: Portrait, center: tuple[float, float], scale: float, phase: float = 0.0
) -> np.ndarray:
    """Portrait -> frame transform at time t: turn (shift + squash), nod (shift + roll)."""
    turn = math.sin(2 * math.pi * 0.4 * t + phase)
    nod = math.sin(2 * math.pi * 0.7 * t + 1.3 + phase)
    fx, fy = p.face_center
    squash = 1.0 - 0.08 * abs(turn)
    angle = math.radians(4.0 * nod)
    cx = center[0] + 0.12 * scale * p.face_size * turn
    cy = center[1] + 0.06 * scale * p.face_size * nod
    c, s = math.cos(angle), math.sin(angle)
    a = np.array([[c * squash, -s], [s * squash, c]]) * scale
    shift = np.array([cx, cy]) - a @ np.array([fx, fy])
    return np.concatenate([a, shift[:, None]], axis=1)


def _apply(m: np.ndarray, pt: tuple[float, float]) -> np.ndarray:
    return m[:, :2] @ np.asarray(pt, dtype=float) + m[:, 2]


def _soft_ellipse(h: int, w: int, cx: float, cy: float, rx: float, ry: float, soft: float = 0.15) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - cx) / max(rx, 1e-3)) ** 2 + ((yy - cy) / max(ry, 1e-3)) ** 2)
    return np.clip((1 - r) / soft, 0, 1)


def _paint(img: np.ndarray, mask: np.ndarray, color: np.ndarray) -> None:
    img[:] = img * (1 - mask[..., None]) + color * mask[..., None]


def _face_frame(base: np.ndarray, p: Portrait, mouth: float, closed: float) -> np.ndarray:
    """The portrait with this frame's mouth opening and eye closure painted on."""
    img = base.astype(np.float32)
    h, w = img.shape[:2]
    if mouth > 0.02:
        mx, my = p.mouth
        mask = _soft_ellipse(h, w, mx, my + 0.05 * p.mouth_width * mouth, 0.27 * p.mouth_width,
                             0.16 * p.mouth_width * mouth, soft=0.35)
        _paint(img, mask, np.array([70, 20, 25], np.float32))
    if closed > 0.02:
        for ex, ey in (p.left_eye, p.right_eye):
            sx, sy = int(ex), int(min(h - 1, ey + 0.9 * p.eye_width))
            skin = base[max(0, sy - 2):sy + 3, max(0, sx - 2):sx + 3].reshape(-1, 3).mean(0)
            mask = _soft_ellipse(h, w, ex, ey, 0.75 * p.eye_width, 0.45 * p.eye_width * closed, soft=0.35)
            _paint(img, mask, skin.astype(np.float32))
    return img


def _background(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    bg = np.stack([70 + 60 * u, 90 + 50 * v, 120 + 40 * np.sin(3 * u + 2 * v)], axis=-1)
    import cv2

    noise = cv2.GaussianBlur(rng.normal(0, 18, (height, width, 3)).astype(np.float32), (0, 0), 3)
    return np.clip(bg + noise, 0, 255).astype(np.float32)


def _voice(mouth_open: np.ndarray, fps: float, rate: int, seed: int) -> np.ndarray:
    n = int(round(len(mouth_open) / fps * rate))
    t = np.arange(n) / rate
    env = np.interp(t, np.arange(len(mouth_open)) / fps, mouth_open)
    f0 = 140 + 15 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 8))
    rng = np.random.default_rng(seed)
    sig = 0.25 * env * buzz + 0.003 * rng.standard_normal(n)
    return np.clip(sig, -1, 1)


def write_wav(path: Path, signal: np.ndarray, rate: int) -> Path:
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def make_talking_head(
    out: str | Path,
    *,
    portraits: tuple[str, ...] | list[str] = ("astronaut",),
    seconds: float = 4.0,
    fps: float = 25.0,
    width: int = 320,
    height: int = 256,
    face_fraction: float = 0.35,
    seed: int = 0,
    audio: bool = True,
    crf: int = 20,
) -> TalkingHead:
    """Render the video to ``out`` (mp4, H.264 + AAC) and return its ground truth.

    ``face_fraction`` is the face height relative to the frame height; several portraits stand side by side.
    """
    import cv2

    from faceexpr_cli.media.writer import VideoWriter

    out = Path(out)
    n = max(1, int(round(seconds * fps)))
    times = np.arange(n) / fps
    mouth = mouth_curve(times, seed)
    closed = blink_curve(times)
    bg = _background(width, height, seed)
    actors_src = [load_portrait(name) for name in portraits]
    k = len(actors_src)
    tracks = []
    for i, (_, p) in enumerate(actors_src):
        scale = face_fraction * height / p.face_size
        center = (width * (i + 0.5) / k, height * 0.5)
        mats = np.stack([head_affine(t, p, center, scale, phase=1.7 * i) for t in times])
        corners = np.array([[p.face_box[0], p.face_box[1]], [p.face_box[2], p.face_box[1]],
                            [p.face_box[0], p.face_box[3]], [p.face_box[2], p.face_box[3]]], float)
        boxes = []
        for m in mats:
            c = corners @ m[:, :2].T + m[:, 2]
            boxes.append([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])
        tracks.append(ActorTrack(
            portrait=p.name,
            affine=mats,
            face_box=np.array(boxes),
            left_eye=np.stack([_apply(m, p.left_eye) for m in mats]),
            right_eye=np.stack([_apply(m, p.right_eye) for m in mats]),
            mouth=np.stack([_apply(m, p.mouth) for m in mats]),
        ))
    head_masks = []
    for img, p in actors_src:
        h, w = img.shape[:2]
        fx, fy = p.face_center
        head_masks.append(_soft_ellipse(h, w, fx, fy - 0.1 * p.face_size, 0.85 * p.face_size, 1.05 * p.face_size, 0.2))

    wav_path = out.with_name(f".{out.stem}.voice.wav")
    if audio:
        write_wav(wav_path, _voice(mouth, fps, 16000, seed), 16000)
    try:
        with VideoWriter(out, fps, audio=wav_path if audio else None, crf=crf) as writer:
            for ti in range(n):
                frame = bg.copy()
                for (img, p), track, hmask in zip(actors_src, tracks, head_masks, strict=True):
                    face = _face_frame(img, p, float(mouth[ti]), float(closed[ti]))
                    m = track.affine[ti]
                    warped = cv2.warpAffine(face, m, (width, height), flags=cv2.INTER_LINEAR)
                    alpha = cv2.warpAffine(hmask, m, (width, height), flags=cv2.INTER_LINEAR)[..., None]
                    frame = frame * (1 - alpha) + warped * alpha
                writer.write(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    finally:
        wav_path.unlink(missing_ok=True)
    return TalkingHead(out, fps, n, width, height, mouth, closed, tracks)
