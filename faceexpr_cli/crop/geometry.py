"""Crop geometry: which square of the frame becomes each output frame, and what fills the part outside it.

Two rules. ``union`` (first-order-model's): one fixed square around the union of all the track's boxes,
enlarged by the margin, so the camera never moves and the face moves inside it. ``follow``: a square of fixed
side (the track's median face size plus margin, so the face never zooms) whose centre follows the smoothed
face box frame by frame. ``align`` adds rotation: an FFHQ-style square from smoothed key points.

Framing: a square that leaves the frame is first shifted inside it (``inside_frame``), so a face near the edge
of 16:9 footage costs no black bars; only a square larger than the frame's short side still reaches outside,
and that part is filled by a ``FILLS`` mode (``blur`` by default: a blurred, edge-extended copy of the crop, as
video editors fill vertical video).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from faceexpr_cli.registry import Registry

DEFAULT_FILL = "blur"

# (image, frame -> crop matrix, output side, interpolation flag) -> the crop, its outside filled.
FillFn = Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]
FILLS: Registry[FillFn] = Registry("fill mode")


def square_around(box: np.ndarray, margin: float) -> np.ndarray:
    """The square centred on ``box`` whose side is its longer side times ``1 + 2 * margin``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dtype=np.float32)


def inside_frame(crops: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes ((4,) or (N, 4)) moved, without resizing, to lie inside a ``width`` x ``height`` frame.

    Along an axis where the box is longer than the frame it is moved as little as possible so that it covers
    the whole frame (it overhangs on both sides, and only that overhang needs a fill).
    """
    out = np.array(crops, dtype=np.float32, copy=True)
    for lo, hi, extent in ((0, 2, width), (1, 3, height)):
        side = out[..., hi] - out[..., lo]
        start = np.clip(out[..., lo], np.minimum(0, extent - side), np.maximum(0, extent - side))
        out[..., lo], out[..., hi] = start, start + side
    return out


def union_crops(boxes: np.ndarray, margin: float, frame: tuple[int, int] | None = None) -> np.ndarray:
    """(N, 4) boxes -> (N, 4) copies of one square around their union; shifted inside ``frame`` (w, h) if given."""
    boxes = np.asarray(boxes, dtype=np.float32)
    union = np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()])
    crops = np.repeat(square_around(union, margin)[None], len(boxes), axis=0)
    return inside_frame(crops, *frame) if frame is not None else crops


def follow_crops(boxes: np.ndarray, margin: float, frame: tuple[int, int] | None = None) -> np.ndarray:
    """(N, 4) smoothed boxes -> (N, 4) squares of one side, centred on each box (then shifted inside ``frame``)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    side = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))) * (1 + 2 * margin)
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    crops = np.concatenate([c - side / 2, c + side / 2], axis=1).astype(np.float32)
    return inside_frame(crops, *frame) if frame is not None else crops


def leaves_frame(crops: np.ndarray, width: int, height: int, tolerance: float = 0.02) -> bool:
    """Whether any crop reaches outside the frame by more than ``tolerance`` of its side."""
    crops = np.asarray(crops, dtype=np.float32)
    tol = tolerance * (crops[:, 2] - crops[:, 0])
    return bool(((crops[:, 0] < -tol) | (crops[:, 1] < -tol) | (crops[:, 2] > width + tol)
                 | (crops[:, 3] > height + tol)).any())


def square_matrix(box: np.ndarray, size: int) -> np.ndarray:
    """The frame -> crop matrix that maps ``box`` (pixel edges) onto a ``size`` x ``size`` output.

    Pixel centres sit at half-integers of the box's edge coordinates, so an integer box at scale 1 is an exact
    copy of ``image[y0:y1, x0:x1]`` and a scaled one samples where ``cv2.resize`` of that region would.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = size / max(x1 - x0, 1e-6), size / max(y1 - y0, 1e-6)
    return np.array([[sx, 0, sx * (0.5 - x0) - 0.5], [0, sy, sy * (0.5 - y0) - 0.5]], dtype=np.float64)


def crop_square(image: np.ndarray, box: np.ndarray, size: int, fill: str = DEFAULT_FILL) -> np.ndarray:
    """Cut ``box`` out of ``image`` and resize it to ``size`` x ``size``; the part outside the frame is filled.

    Done as one affine warp, so sub-pixel box positions move the picture smoothly (no 1-pixel jumps when a
    follow box drifts slowly). Shift the box first (``inside_frame``) when it should not leave the frame.
    """
    return warp_square(image, square_matrix(box, size), size, fill)


def warp_square(image: np.ndarray, m: np.ndarray, size: int, fill: str = DEFAULT_FILL) -> np.ndarray:
    """The ``size`` x ``size`` crop that the frame -> crop matrix ``m`` selects (any similarity: align mode too)."""
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(m, np.float64)[:, :2]))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return FILLS.get(fill)(image, np.asarray(m, np.float64), size, interp)


def _source_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Crop pixel centres (N, 2) -> frame coordinates."""
    a, t = m[:, :2], m[:, 2]
    return (pts - t) @ np.linalg.inv(a).T


def outside_mask(m: np.ndarray, size: int, width: int, height: int) -> np.ndarray | None:
    """(size, size) True where a crop pixel's centre maps outside the frame; None when none does."""
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    src = _source_points(m, corners)
    # the frame and the mapped square are both convex: all four corners inside means every pixel is
    if ((src >= -0.5) & (src <= [width - 0.5, height - 0.5])).all():
        return None
    v, u = np.mgrid[0:size, 0:size]
    src = _source_points(m, np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float64))
    out = (src[:, 0] < -0.5) | (src[:, 0] > width - 0.5) | (src[:, 1] < -0.5) | (src[:, 1] > height - 0.5)
    return out.reshape(size, size)


def _warp(image: np.ndarray, m: np.ndarray, size: int, interp: int, border: int) -> np.ndarray:
    import cv2

    return cv2.warpAffine(image, m.astype(np.float32), (size, size), flags=interp, borderMode=border,
                          borderValue=0)


def _border_fill(border_name: str) -> FillFn:
    def fill(image, m, size, interp):
        import cv2

        return _warp(image, m, size, interp, getattr(cv2, border_name))

    return fill


FILLS.add("black", _border_fill("BORDER_CONSTANT"))
FILLS.add("replicate", _border_fill("BORDER_REPLICATE"))  # the edge row/column repeated outwards
FILLS.add("reflect", _border_fill("BORDER_REFLECT_101"))  # mirrored about the edge pixel: ...dcb|abcd...


@FILLS.register("blur")
def _blur_fill(image: np.ndarray, m: np.ndarray, size: int, interp: int) -> np.ndarray:
    """Inside: the sharp crop. Outside: the mirrored crop, heavily blurred (shrunk, blurred, grown back)."""
    import cv2

    sharp = _warp(image, m, size, interp, cv2.BORDER_REPLICATE)
    mask = outside_mask(m, size, image.shape[1], image.shape[0])
    if mask is None:
        return sharp
    mirrored = _warp(image, m, size, interp, cv2.BORDER_REFLECT_101)
    small_side = max(4, size // 16)
    small = cv2.resize(mirrored, (small_side, small_side), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT_101)
    background = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.where(mask[..., None] if sharp.ndim == 3 else mask, background, sharp)


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
