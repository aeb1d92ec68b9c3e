"""The one record a face analysis writes into, shared by every backend, the tracker and the pipelines.

Coordinates are pixels of the image that was analysed, x to the right and y down. Key points follow the
insightface/ArcFace order (image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth
corner) whichever backend produced them, so alignment templates work for all backends alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

# iBUG 68-point index groups used to derive the 5 key points and the yaw estimate.
_LEFT_EYE_68 = slice(36, 42)  # the eye on the image's left (the subject's right eye)
_RIGHT_EYE_68 = slice(42, 48)
_NOSE_TIP_68 = 30
_MOUTH_LEFT_68 = 48
_MOUTH_RIGHT_68 = 54
# The nose tip sits about 0.6 inter-ocular distances in front of the eye plane on an average adult head;
# that depth turns the nose's sideways offset into an angle.
_NOSE_DEPTH_IOD = 0.6


def kps5_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """The 5 ArcFace key points (eye centres, nose tip, mouth corners) from iBUG 68 points."""
    p = np.asarray(landmarks68, dtype=np.float32)
    return np.stack([
        p[_LEFT_EYE_68].mean(0),
        p[_RIGHT_EYE_68].mean(0),
        p[_NOSE_TIP_68],
        p[_MOUTH_LEFT_68],
        p[_MOUTH_RIGHT_68],
    ]).astype(np.float32)


def yaw_from_kps5(kps5: np.ndarray) -> float:
    """Head yaw in degrees from 5 key points; 0 is frontal, positive when the nose points to the image right.

    The nose's sideways offset from the eye midpoint, measured along the eye line (so roll does not count),
    over the inter-ocular distance gives tan(yaw) * depth. Good to about 10 degrees, which is what track
    filtering needs (frontal vs. profile), not a head-pose estimator.
    """
    k = np.asarray(kps5, dtype=np.float64)
    le, re, nose = k[0], k[1], k[2]
    axis = re - le
    iod = float(np.hypot(*axis))
    if iod < 1e-6:
        return float("nan")
    offset = float(np.dot(nose - (le + re) / 2, axis / iod)) / iod
    return math.degrees(math.atan(offset / _NOSE_DEPTH_IOD))


@dataclass
class Face:
    """What one frame's analysis found for one face. Fields a backend did not compute stay ``None``."""

    bbox: np.ndarray  # (4,) float32: x0, y0, x1, y1
    score: float
    kps5: np.ndarray | None = None  # (5, 2) float32
    landmarks68: np.ndarray | None = None  # (68, 2) float32, iBUG 300-W order
    embedding: np.ndarray | None = None  # (D,) float32, L2-normalised
    extra: dict[str, Any] = field(default_factory=dict)  # backend specifics (e.g. insightface's 106 points)

    def __post_init__(self) -> None:
        self.bbox = np.asarray(self.bbox, dtype=np.float32).reshape(4)
        self.score = float(self.score)
        if self.kps5 is not None:
            self.kps5 = np.asarray(self.kps5, dtype=np.float32).reshape(5, 2)
        if self.landmarks68 is not None:
            self.landmarks68 = np.asarray(self.landmarks68, dtype=np.float32).reshape(68, 2)
            if self.kps5 is None:
                self.kps5 = kps5_from_68(self.landmarks68)
        if self.embedding is not None:
            self.embedding = np.asarray(self.embedding, dtype=np.float32).reshape(-1)

    @property
    def width(self) -> float:
        return float(self.bbox[2] - self.bbox[0])

    @property
    def height(self) -> float:
        return float(self.bbox[3] - self.bbox[1])

    @property
    def size(self) -> float:
        """Side of the square with the box's area: one number for 'how big is this face'."""
        return math.sqrt(max(self.width, 0.0) * max(self.height, 0.0))

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.bbox[0] + self.bbox[2]) / 2, (self.bbox[1] + self.bbox[3]) / 2], dtype=np.float32)

    def yaw(self) -> float:
        """Yaw estimate in degrees (see ``yaw_from_kps5``); NaN without key points."""
        return yaw_from_kps5(self.kps5) if self.kps5 is not None else float("nan")

    def scaled(self, sx: float, sy: float | None = None) -> Face:
        """The same face in an image resized by (sx, sy), e.g. from a detection thumbnail back to the frame."""
        sy = sx if sy is None else sy
        s = np.array([sx, sy], dtype=np.float32)
        return replace(
            self,
            bbox=self.bbox * np.array([sx, sy, sx, sy], dtype=np.float32),
            kps5=None if self.kps5 is None else self.kps5 * s,
            landmarks68=None if self.landmarks68 is None else self.landmarks68 * s,
            extra=dict(self.extra),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists of floats); the embedding is left out when absent."""
        d: dict[str, Any] = {"bbox": [round(float(v), 2) for v in self.bbox], "score": round(self.score, 4)}
        if self.kps5 is not None:
            d["kps5"] = np.round(self.kps5, 2).tolist()
            d["yaw"] = round(self.yaw(), 1)
        if self.landmarks68 is not None:
            d["landmarks68"] = np.round(self.landmarks68, 2).tolist()
        if self.embedding is not None:
            d["embedding"] = np.round(self.embedding, 5).tolist()
        return d


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (N, 4) and b (M, 4), x0 y0 x1 y1."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
