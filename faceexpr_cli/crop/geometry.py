"""Crop geometry: which square of the frame becomes each output frame.

Two rules. ``union`` (first-order-model's): one fixed square around the union of all the track's boxes,
enlarged by the margin, so the camera never moves and the face moves inside it. ``follow``: a square of fixed
side (the track's median face size plus margin, so the face never zooms) whose centre follows the smoothed
face box frame by frame. ``align`` adds rotation: an FFHQ-style square from smoothed key points.
"""

from __future__ import annotations

import numpy as np


def square_around(box: np.ndarray, margin: float) -> np.ndarray:
    """The square centred on ``box`` whose side is its longer side times ``1 + 2 * margin``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dtype=np.float32)


def union_crops(boxes: np.ndarray, margin: float) -> np.ndarray:
    """(N, 4) boxes -> (N, 4) copies of one square around their union."""
    boxes = np.asarray(boxes, dtype=np.float32)
    union = np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()])
    return np.repeat(square_around(union, margin)[None], len(boxes), axis=0)


def follow_crops(boxes: np.ndarray, margin: float) -> np.ndarray:
    """(N, 4) smoothed boxes -> (N, 4) squares of one side, centred on each box."""
    boxes = np.asarray(boxes, dtype=np.float32)
    side = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))) * (1 + 2 * margin)
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    return np.concatenate([c - side / 2, c + side / 2], axis=1).astype(np.float32)


def leaves_frame(crops: np.ndarray, width: int, height: int, tolerance: float = 0.02) -> bool:
    """Whether any crop reaches outside the frame by more than ``tolerance`` of its side."""
    crops = np.asarray(crops, dtype=np.float32)
    tol = tolerance * (crops[:, 2] - crops[:, 0])
    return bool(((crops[:, 0] < -tol) | (crops[:, 1] < -tol) | (crops[:, 2] > width + tol)
                 | (crops[:, 3] > height + tol)).any())


def crop_square(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Cut ``box`` out of ``image`` and resize it to ``size`` x ``size``; the part outside the frame is black.

    Done as one affine warp, so sub-pixel box positions move the picture smoothly (no 1-pixel jumps when a
    follow box drifts slowly).
    """
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    s = size / max(x1 - x0, 1e-6)
    m = np.array([[s, 0, -x0 * s], [0, size / max(y1 - y0, 1e-6), -y0 * size / max(y1 - y0, 1e-6)]],
                 dtype=np.float32)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def fill_keypoints(kps: np.ndarray, times: np.ndarray) -> np.ndarray | None:
    """(N, 5, 2) key points with NaN rows -> linearly interpolated in time; None when no row is known."""
    kps = np.asarray(kps, dtype=np.float64)
    known = ~np.isnan(kps[:, 0, 0])
    if not known.any():
        return None
    out = np.empty_like(kps)
    for p in range(5):
        for d in range(2):
            out[:, p, d] = np.interp(times, times[known], kps[known, p, d])
    return out


def align_matrices(kps: np.ndarray, times: np.ndarray, size: int, margin: float) -> np.ndarray | None:
    """Per-frame frame -> crop matrices from smoothed key points (FFHQ-style square, scaled by the margin)."""
    from faceexpr_cli.face.align import ffhq_quad, similarity_transform
    from faceexpr_cli.face.smoothing import smooth_series

    filled = fill_keypoints(kps, times)
    if filled is None:
        return None
    iod = float(np.median(np.linalg.norm(filled[:, 1] - filled[:, 0], axis=1)))
    flat = smooth_series(filled.reshape(len(filled), -1) / max(iod, 1e-6), times).reshape(filled.shape) * iod
    # FFHQ's square spans about four eye distances; the margin widens it like the other rules.
    grow = (1 + 2 * margin) / 1.6
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float32)
    mats = []
    for k in flat:
        quad = ffhq_quad(k)
        c = quad.mean(0)
        mats.append(similarity_transform(c + (quad - c) * grow, corners))
    return np.stack(mats)


def matrix_crop_box(m: np.ndarray, size: int) -> np.ndarray:
    """The axis-aligned frame box that an aligned crop covers (for the manifest)."""
    from faceexpr_cli.face.align import invert_affine, transform_points

    corners = transform_points(invert_affine(m), np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float32))
    return np.array([corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()],
                    dtype=np.float32)
