"""Expression targets from 68-point landmarks: the pose-normalised face, its neutral, and a PCA basis.

The normalised face frame: origin at the midpoint of the four eye corners, x along the line from the right eye's
corners to the left eye's, one unit = the distance between the two eye-corner midpoints. Eye corners do not move
when the eyes blink or the mouth talks, so the frame follows the head alone (turn squash aside). A clip's neutral
face is the mean of its frames with the mouth most closed (lowest decile of the inner-lip gap), with the eyes taken
from its frames with the eyes most open; a frame's expression is its normalised shape minus that neutral,
projected on a PCA basis fitted once on the training set (``ExpressionBasis``, saved with the run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceexpr_cli.errors import CheckpointError

POINTS = 68
MOUTH = np.arange(48, 68)
EYES = np.arange(36, 48)
INNER_LIPS = ((61, 67), (62, 66), (63, 65))
EYELIDS = ((37, 41), (38, 40), (43, 47), (44, 46))


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: origin (T, 2), rotation (T, 2, 2) face -> image axes, and scale (T,) for (T, 68, 2) points."""
    p = np.asarray(points, np.float64)
    right = (p[:, 36] + p[:, 39]) / 2
    left = (p[:, 42] + p[:, 45]) / 2
    origin = (right + left) / 2
    d = left - right
    scale = np.maximum(np.linalg.norm(d, axis=1), 1e-6)
    c, s = d[:, 0] / scale, d[:, 1] / scale
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], 1)
    return origin, rot, scale


def normalise(points: np.ndarray) -> np.ndarray:
    """(T, 68, 2) image points -> the same points in each frame's normalised face frame."""
    origin, rot, scale = face_frame(points)
    local = np.einsum("tpk,tkj->tpj", np.asarray(points, np.float64) - origin[:, None], rot)
    return (local / scale[:, None, None]).astype(np.float32)


def to_image(local: np.ndarray, origin: np.ndarray, rot: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """Normalised points (T, 68, 2) back to image pixels through one frame (origin (2,), rot (2, 2), scale)."""
    return (np.asarray(local, np.float64) * scale @ np.asarray(rot).T + origin).astype(np.float32)


def mouth_opening(shapes: np.ndarray) -> np.ndarray:
    """(T,) mean inner-lip gap of normalised shapes (T, 68, 2)."""
    return np.mean([np.linalg.norm(shapes[:, a] - shapes[:, b], axis=-1) for a, b in INNER_LIPS], axis=0)


def eye_opening(shapes: np.ndarray) -> np.ndarray:
    return np.mean([np.linalg.norm(shapes[:, a] - shapes[:, b], axis=-1) for a, b in EYELIDS], axis=0)


def neutral_face(shapes: np.ndarray) -> np.ndarray:
    """(68, 2): the clip's rest face (closed mouth, open eyes)."""
    mouth, eyes = mouth_opening(shapes), eye_opening(shapes)
    closed = shapes[mouth <= np.quantile(mouth, 0.1)]
    neutral = closed.mean(0)
    neutral[EYES] = shapes[eyes >= np.quantile(eyes, 0.5)][:, EYES].mean(0)
    return neutral.astype(np.float32)


def blink_values(shapes: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(T,) in [0, 1]: 0 eyes as open as the neutral face, 1 closed."""
    rest = float(eye_opening(neutral[None])[0])
    return np.clip(1.0 - eye_opening(shapes) / max(rest, 1e-6), 0.0, 1.0).astype(np.float32)


def synthetic_blinks(n: int, fps: float, period: float = 3.5, length: float = 0.2, first: float = 1.5) -> np.ndarray:
    """A blink every ``period`` s (a triangle ``length`` s long) for inference, where no video gives one."""
    t = np.arange(n) / fps
    local = np.mod(t - first, period)
    out = np.clip(1 - np.abs(local - length / 2) / (length / 2), 0, 1)
    out[t < first] = 0
    return out.astype(np.float32)


@dataclass
class ExpressionBasis:
    """offsets (T, 68 * 2) ~ mean + coefficients @ components; rows past the data's rank are zero."""

    mean: np.ndarray  # (136,)
    components: np.ndarray  # (K, 136)
    variance: np.ndarray  # (K,) explained variance per component

    @property
    def dim(self) -> int:
        return len(self.components)

    @classmethod
    def fit(cls, offsets: np.ndarray, dim: int) -> ExpressionBasis:
        x = np.asarray(offsets, np.float64).reshape(len(offsets), -1)
        mean = x.mean(0)
        import torch  # its SVD keeps to torch's thread count (numpy's BLAS may spin every core)

        _, sv_t, vt_t = torch.linalg.svd(torch.from_numpy(x - mean), full_matrices=False)
        sv, vt = sv_t.numpy(), vt_t.numpy()
        k = min(dim, int((sv > 1e-6 * max(float(sv[0]), 1e-30)).sum()))  # directions the data spans
        comps = np.zeros((dim, x.shape[1]))
        comps[:k] = vt[:k]
        var = np.zeros(dim)
        var[:k] = sv[:k] ** 2 / max(len(x) - 1, 1)
        return cls(mean.astype(np.float32), comps.astype(np.float32), var.astype(np.float32))

    def project(self, offsets: np.ndarray) -> np.ndarray:
        x = np.asarray(offsets, np.float32).reshape(len(offsets), -1)
        return ((x - self.mean) @ self.components.T).astype(np.float32)

    def decode(self, coeffs: np.ndarray) -> np.ndarray:
        """(T, K) -> offsets (T, 68, 2)."""
        c = np.asarray(coeffs, np.float32)
        return (c @ self.components + self.mean).reshape(len(c), -1, 2).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, mean=self.mean, components=self.components, variance=self.variance)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ExpressionBasis:
        try:
            with np.load(path) as z:
                return cls(z["mean"], z["components"], z["variance"])
        except (OSError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: not an expression basis ({exc})") from None
