"""Geometry beside the swap graph: the face mesh's triangles, each triangle's affine map, the blend mask.

The mesh is a Delaunay triangulation of the source face's landmarks (the 468-point mesh where the face backend
gives one, else the 68 iBUG points), made once; each driving face uses the same triangles on its own points,
so every triangle of the source's skin lands on the matching triangle of the driver's face. The mask is the
face's convex hull (jaw and brows), eroded and feathered, with a hole over the inner lips: where the driver's
mouth is open, the driver's own mouth interior (teeth, tongue) shows, never a stretched copy of the source's lips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INNER_LIPS = list(range(60, 68))
OUTER_LIPS = list(range(48, 60))
MOUTH_MODES = ("interior", "lips", "source")  # what of the driver's mouth shows through the mask
MULTIPLE = 16  # crops are padded to a multiple of 2 ** pyramid levels


def with_forehead(points: np.ndarray, reach: float) -> np.ndarray:
    """68 points plus 10 above the brows, each brow point moved away from the chin by ``reach`` of its distance:
    the mesh (and the mask) then cover the forehead, which carries identity too. Other point sets pass as they are.
    Source and driver get the same construction, so the extra triangles still match."""
    p = np.asarray(points, np.float64)
    if reach <= 0 or len(p) != 68:
        return p
    brows = p[17:27]
    return np.concatenate([p, brows + (brows - p[8]) * reach])


def triangulate(points: np.ndarray) -> np.ndarray:
    """(K, 3) vertex indices of the Delaunay triangles of ``points`` (N, 2)."""
    from scipy.spatial import Delaunay

    return np.ascontiguousarray(Delaunay(np.asarray(points, np.float64)).simplices.astype(np.int32))


@dataclass
class Region:
    """An integer box of the frame (x0, y0, x1, y1) and the padded size the graph works at."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def face_region(points: np.ndarray, shape: tuple[int, ...], margin: float = 0.25) -> Region:
    """The landmarks' box grown by ``margin`` of its size on each side (room for the blend), inside the frame."""
    h, w = shape[:2]
    lo, hi = points.min(0), points.max(0)
    pad = margin * float(max(hi - lo))
    x0, y0 = int(max(0, np.floor(lo[0] - pad))), int(max(0, np.floor(lo[1] - pad)))
    x1, y1 = int(min(w, np.ceil(hi[0] + pad))), int(min(h, np.ceil(hi[1] + pad)))
    return Region(x0, y0, max(x1, x0 + 2), max(y1, y0 + 2))


def padded(n: int, multiple: int = MULTIPLE) -> int:
    return int(-(-n // multiple) * multiple)


def to_normalized(points: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pixel coordinates (pixel centres at integers) -> grid_sample's [-1, 1] (align_corners=False)."""
    p = np.asarray(points, np.float64)
    return np.stack([(2 * p[..., 0] + 1) / w - 1, (2 * p[..., 1] + 1) / h - 1], axis=-1)


def rasterize(triangles: np.ndarray, points: np.ndarray, h: int, w: int) -> np.ndarray:
    """(h, w) float32 map of which triangle each pixel lies in (pixels outside all of them: 0, masked later)."""
    import cv2

    outside = len(triangles)  # the extra, global map (``triangle_affines``' last row)
    out = np.full((h, w), outside, np.int32)
    shift = 4
    pts = np.round(np.asarray(points, np.float64) * (1 << shift)).astype(np.int32)
    for k, tri in enumerate(triangles):  # outlines too: shared edges get a triangle, no seam of outside pixels
        cv2.polylines(out, [pts[tri]], True, int(k), 1, lineType=cv2.LINE_8, shift=shift)
        cv2.fillConvexPoly(out, pts[tri], int(k), lineType=cv2.LINE_8, shift=shift)
    return out.astype(np.float32)


def triangle_affines(triangles: np.ndarray, target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """(K + 1, 6) maps from each target triangle to its source triangle (both normalised coordinates), and last
    the least-squares affine of all points, for the pixels outside the mesh (the blend's coarse levels see them).

    A triangle squashed flat (a closed eye) has no exact inverse; the least-squares solution with a tiny ridge
    still maps it onto its source triangle's line, which is what a closed eye should show."""
    return np.concatenate([_affines(target[triangles], source[triangles]), _affines(target[None], source[None])])


def _affines(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    a = np.concatenate([t, np.ones((*t.shape[:2], 1))], axis=2)  # (K, 3, 3)
    at = a.transpose(0, 2, 1)
    m = np.linalg.solve(at @ a + 1e-9 * np.eye(3), at @ s)  # (K, 3, 2): x' = [x y 1] @ m
    return np.ascontiguousarray(m.transpose(0, 2, 1).reshape(-1, 6), dtype=np.float32)


def hull_mask(points: np.ndarray, h: int, w: int, erode: float = 0.06, blur: float = 0.05,
              mouth: str = "interior") -> np.ndarray:
    """(h, w) float32 in [0, 1]: the face hull, pulled in by ``erode`` and feathered by ``blur`` (fractions of
    the face's size), zero over the driver's mouth: its interior (inside the inner lips), its lips too (``lips``:
    the driver's whole mouth shows, so its articulation is kept exactly) or nothing (``source``)."""
    import cv2

    pts = np.asarray(points, np.float32)
    size = float(max(pts.max(0) - pts.min(0)))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 255)
    k = max(1, int(round(erode * size)))
    if k > 1:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if mouth != "source" and len(pts) >= 68:
        ring = pts[INNER_LIPS if mouth == "interior" else OUTER_LIPS]
        if mouth == "lips":  # a little beyond the lip line, so no rim of the source's lips stays
            centre = ring.mean(0)
            ring = centre + (ring - centre) * 1.15
        cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 0)
    sigma = max(0.8, blur * size)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)


def masked_stats(image: np.ndarray, mask: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (values in [0, 1]) of the pixels where ``mask`` > threshold."""
    sel = image[mask > threshold].astype(np.float64) / 255.0
    if len(sel) < 16:
        sel = image.reshape(-1, 3).astype(np.float64) / 255.0
    return sel.mean(0), np.maximum(sel.std(0), 1e-3)
