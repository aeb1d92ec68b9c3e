"""LivePortrait motion as fx's per-frame ``Motion``, eye/lip ratios from fx's 68 landmarks, and smoothing.

A frame's motion is one flat float32 row: pitch, yaw, roll (degrees), t (3), scale (1), exp (3K), kp (3K) - so the
pipeline's missing-face policies (hold, neutral) and references work on it unchanged. ``motion.npz`` templates hold
the same fields as named arrays (no pickle).

Ratios (iBUG 300-W 68-point order): an eye's ratio is its opening over its width,
(|p37 - p41| + |p38 - p40|) / (2 |p36 - p39|) for the left eye in the image (42..47 for the right); the lip ratio is
the inner lips' opening over the mouth's width, |p62 - p66| / |p48 - p54|. They play the role of LivePortrait's
203-point ratios (same idea, opening over width; open eyes about 0.25-0.35, closed below 0.1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceexpr_cli.animate.engines import Motion
from faceexpr_cli.errors import MediaError, UsageError

SCALAR = ("pitch", "yaw", "roll")
FORMAT = "fx-liveportrait-motion/1"


def row_size(num_kp: int) -> int:
    return 7 + 6 * num_kp


def pack(info: dict[str, np.ndarray]) -> np.ndarray:
    """Decoded motion (pitch/yaw/roll (T, 1), t (T, 3), scale (T, 1), exp/kp (T, K, 3)) -> (T, 7 + 6K)."""
    t = len(info["t"])
    parts = [np.asarray(info[k], np.float32).reshape(t, -1) for k in (*SCALAR, "t", "scale", "exp", "kp")]
    return np.concatenate(parts, axis=1)


def unpack(rows: np.ndarray, num_kp: int) -> dict[str, np.ndarray]:
    rows = np.asarray(rows, np.float32).reshape(len(rows), -1)
    if rows.shape[1] != row_size(num_kp):
        raise UsageError(f"motion rows have {rows.shape[1]} values; {num_kp} key points need {row_size(num_kp)}")
    k3 = 3 * num_kp
    out = {k: rows[:, i:i + 1] for i, k in enumerate(SCALAR)}
    out["t"], out["scale"] = rows[:, 3:6], rows[:, 6:7]
    out["exp"] = rows[:, 7:7 + k3].reshape(-1, num_kp, 3)
    out["kp"] = rows[:, 7 + k3:].reshape(-1, num_kp, 3)
    return out


def smooth_rows(motion: Motion, fps: float, cutoff: float, beta: float = 1.0) -> Motion:
    """Zero-phase One-Euro smoothing of every motion value (angles in radians, the rest in LivePortrait's
    normalised units, where the face spans about 1), forwards and backwards averaged."""
    if cutoff <= 0 or len(motion) < 3:
        return motion
    from faceexpr_cli.face.smoothing import OneEuroFilter

    scale = np.ones(motion.points.shape[1])
    scale[:3] = np.pi / 180
    values = motion.points.astype(np.float64) * scale
    times = np.arange(len(values)) / fps

    def run(v: np.ndarray, t: np.ndarray) -> np.ndarray:
        f = OneEuroFilter(cutoff, beta, 1.0)
        return np.stack([f(x, float(ti)) for x, ti in zip(v, t, strict=True)])

    smooth = (run(values, times) + run(values[::-1], -times[::-1])[::-1]) / 2
    return Motion((smooth / scale).astype(np.float32), None, motion.found)


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def eye_ratios(points68: np.ndarray) -> np.ndarray:
    """(left, right) eye opening over width (see the module docstring)."""
    p = np.asarray(points68, np.float64)

    def one(i: int) -> float:
        width = _dist(p[i], p[i + 3])
        return (_dist(p[i + 1], p[i + 5]) + _dist(p[i + 2], p[i + 4])) / (2 * max(width, 1e-6))

    return np.array([one(36), one(42)], np.float32)


def lip_ratio(points68: np.ndarray) -> float:
    p = np.asarray(points68, np.float64)
    return float(_dist(p[62], p[66]) / max(_dist(p[48], p[54]), 1e-6))


def save_template(path: str | Path, rows: np.ndarray, num_kp: int, fps: float, found: np.ndarray | None,
                  eyes: np.ndarray | None = None, lips: np.ndarray | None = None) -> None:
    """A driver's motion as ``.npz`` (plain arrays): the fields, fps, which frames had a face, ratios if known."""
    path = Path(path)
    fields = unpack(rows, num_kp)
    extra = {}
    if eyes is not None:
        extra["eye_ratio"] = np.asarray(eyes, np.float32)
    if lips is not None:
        extra["lip_ratio"] = np.asarray(lips, np.float32)
    tmp = path.with_name(f".{path.stem}.part.npz")
    np.savez(tmp, format=np.array(FORMAT), fps=np.float32(fps), num_kp=np.int32(num_kp),
             found=np.ones(len(rows), bool) if found is None else np.asarray(found, bool), **fields, **extra)
    tmp.replace(path)


def load_template(path: str | Path) -> dict[str, np.ndarray]:
    """Read a ``motion.npz`` written by ``fx animate extract-motion`` (``allow_pickle=False``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except Exception as exc:
        raise MediaError(path, f"cannot be read as a motion template ({type(exc).__name__})",
                         "write one with fx animate extract-motion DRIVING.mp4 -o motion.npz") from exc
    if str(out.get("format", "")) != FORMAT:
        raise MediaError(path, "is not an fx LivePortrait motion template (no 'format' "
                         f"{FORMAT})", "write one with fx animate extract-motion")
    num_kp = int(out["num_kp"])
    rows = pack({k: out[k] for k in (*SCALAR, "t", "scale", "exp", "kp")})
    if not np.isfinite(rows).all() or len(rows) == 0:
        raise MediaError(path, "holds no frames or non-finite values")
    out["rows"] = rows
    out["num_kp"] = num_kp
    return out


def is_template(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".npz"
