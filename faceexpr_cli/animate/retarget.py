"""Landmark motion transfer and the control points of the training-free (landmarks) engine.

The driver's motion is measured against its reference frame and carried onto the source face through the
similarity (rotation + uniform scale) that aligns the reference to the source, so a driver filmed larger, smaller
or tilted moves the source by the right amount in the right direction. Around the 68 points the warp gets two more
sets of control points: a *head* ring that follows the face rigidly (forehead, hair and ears turn with it instead
of stretching) and a *still* ring further out that never moves, so the background stays where it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEAD_POINTS = 12
STILL_POINTS = 24


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    from faceexpr_cli.face.align import similarity_transform

    return similarity_transform(src, dst).astype(np.float64)


def landmark_targets(source: np.ndarray, driving: np.ndarray, reference: np.ndarray, relative: bool = True,
                     adapt_scale: bool = False) -> np.ndarray:
    """Where the source's 68 points go in each frame: (T, 68, 2) in source pixels.

    relative: ``source + L (driving - reference)`` with L the reference->source similarity's linear part (its
    scale replaced by sqrt(hull area ratio) with ``adapt_scale``); absolute: the driver's points mapped by the
    similarity, which carries the driver's face shape over (identity leaks, as in FOMM's absolute mode).
    """
    m = _similarity(reference, source)
    lin = m[:, :2]
    if not relative:
        return (driving @ lin.T + m[:, 2]).astype(np.float32)
    if adapt_scale:
        from faceexpr_cli.animate.motion import movement_scale

        lin = lin / np.sqrt(abs(np.linalg.det(lin))) * movement_scale(source, reference)
    return (source[None] + (driving - reference[None]) @ lin.T).astype(np.float32)


@dataclass
class FaceFrame:
    """Ellipses around a face's landmarks: the rigid head ring and the still ring (pixels)."""

    center: np.ndarray
    axes: np.ndarray  # semi-axes (rx, ry) of the still ring

    @classmethod
    def around(cls, points: np.ndarray, margin: float = 1.0) -> FaceFrame:
        lo, hi = points.min(0), points.max(0)
        size = hi - lo
        center = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2 - 0.2 * size[1]])
        axes = np.array([size[0] * (0.95 + 0.5 * margin), size[1] * (1.0 + 0.5 * margin)])
        return cls(center.astype(np.float64), axes.astype(np.float64))

    def ring(self, n: int, fraction: float) -> np.ndarray:
        t = np.arange(n) * 2 * np.pi / n
        return np.stack([self.center[0] + fraction * self.axes[0] * np.cos(t),
                         self.center[1] + fraction * self.axes[1] * np.sin(t)], axis=1)

    def region(self, h: int, w: int, inner: float = 0.75) -> np.ndarray:
        """(h, w) weight of the warp: 1 inside ``inner`` of the still ring, smoothly 0 at the ring and beyond."""
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        r = np.sqrt(((xx - self.center[0]) / self.axes[0]) ** 2 + ((yy - self.center[1]) / self.axes[1]) ** 2)
        t = np.clip((1.0 - r) / (1.0 - inner), 0.0, 1.0)
        # Also fade to 0 at the image border, so a face crop pasted back into a photo shows no seam.
        edge = np.minimum(np.minimum(xx + 0.5, w - 0.5 - xx) / w, np.minimum(yy + 0.5, h - 0.5 - yy) / h)
        t = t * np.clip(edge / 0.06, 0.0, 1.0)
        return (t * t * (3 - 2 * t)).astype(np.float32)


def control_points(source: np.ndarray, targets: np.ndarray, frame: FaceFrame) -> tuple[np.ndarray, np.ndarray]:
    """TPS control (output positions, (T, N, 2)) and values (source positions, (N, 2)) in pixels.

    N = 68 landmarks + ``HEAD_POINTS`` moving rigidly with the face (a similarity fitted per frame) +
    ``STILL_POINTS`` that stay put.
    """
    head = frame.ring(HEAD_POINTS, 0.62)
    still = frame.ring(STILL_POINTS, 1.0)
    values = np.concatenate([source, head, still]).astype(np.float32)
    controls = []
    for tgt in targets:
        m = _similarity(source, tgt)
        moved_head = head @ m[:, :2].T + m[:, 2]
        controls.append(np.concatenate([tgt, moved_head, still]))
    return np.stack(controls).astype(np.float32), values


def to_normalized(points: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pixel-index coordinates (x, y), as dlib and OpenCV give them -> grid_sample's [-1, 1] (align_corners=False)."""
    scale = np.array([2.0 / w, 2.0 / h], dtype=np.float32)
    return (points.astype(np.float32) + 0.5) * scale - 1.0
