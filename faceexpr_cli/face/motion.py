"""Frame-to-frame motion for the tracker: median-flow box tracking and shot-cut detection.

Both work on a small grey thumbnail of each frame (long side ``THUMB_SIDE``), so the tracker's cost between
detections is well under a millisecond per frame and independent of the video's resolution.
"""

from __future__ import annotations

import numpy as np

THUMB_SIDE = 320


def thumbnail(image_rgb: np.ndarray, side: int = THUMB_SIDE) -> tuple[np.ndarray, float]:
    """Grey thumbnail and its scale (thumbnail pixels per frame pixel).

    Grey first, then a bilinear resize: INTER_AREA at non-integer ratios costs more than the rest of a frame's
    tracking, and optical flow does not need the anti-aliasing.
    """
    import cv2

    h, w = image_rgb.shape[:2]
    gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return gray, scale
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if abs(1 / scale - round(1 / scale)) < 1e-6 else cv2.INTER_LINEAR
    return cv2.resize(gray, size, interpolation=interp), scale


def track_box(prev: np.ndarray, cur: np.ndarray, box: np.ndarray, min_points: int = 6) -> np.ndarray | None:
    """Move ``box`` (thumbnail pixels) from ``prev`` to ``cur`` by the median flow of corners inside it.

    Points are tracked forwards and backwards (Lucas-Kanade) and kept only where they return to where they
    started; the box shifts by their median motion and scales by the median ratio of their pairwise
    distances. None when too few points survive (occlusion, blur, a face leaving the frame).
    """
    import cv2

    h, w = prev.shape[:2]
    x0, y0, x1, y1 = box
    # The inner part of the box: the face, not the background or hair at its edges.
    mx, my = 0.2 * (x1 - x0), 0.15 * (y1 - y0)
    ix0, iy0 = int(max(0, x0 + mx)), int(max(0, y0 + my))
    ix1, iy1 = int(min(w, x1 - mx)), int(min(h, y1 - my))
    if ix1 - ix0 < 6 or iy1 - iy0 < 6:
        return None
    pts = cv2.goodFeaturesToTrack(prev[iy0:iy1, ix0:ix1], maxCorners=24, qualityLevel=0.01, minDistance=3)
    if pts is None or len(pts) < min_points:
        return None
    pts = (pts.reshape(-1, 2) + np.array([ix0, iy0], dtype=np.float32)).astype(np.float32)
    lk = {"winSize": (11, 11), "maxLevel": 2,
          "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03)}
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **lk)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, fwd, None, **lk)
    fb = np.linalg.norm(back - pts, axis=1)
    ok = (st1.reshape(-1) == 1) & (st2.reshape(-1) == 1) & (fb < max(1.0, float(np.median(fb))))
    if ok.sum() < min_points:
        return None
    p0, p1 = pts[ok], fwd[ok]
    shift = np.median(p1 - p0, axis=0)
    i, j = np.triu_indices(len(p0), k=1)
    d0 = np.linalg.norm(p0[i] - p0[j], axis=1)
    d1 = np.linalg.norm(p1[i] - p1[j], axis=1)
    keep = d0 > 2
    scale = float(np.median(d1[keep] / d0[keep])) if keep.any() else 1.0
    scale = float(np.clip(scale, 0.8, 1.25))
    cx, cy = (x0 + x1) / 2 + shift[0], (y0 + y1) / 2 + shift[1]
    hw, hh = (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh], dtype=np.float32)


class CutDetector:
    """Flags a shot cut when consecutive thumbnails differ far more than frames of the shot so far did.

    The score (0..1) is the mean of the grey histogram's half-L1 distance and the (doubled, capped) mean
    absolute pixel difference of a 32x18 thumbnail: a talking head in a still shot scores ~0.005, a cut
    ~0.2 or more. A cut needs the score above ``threshold`` and above ``ratio`` times the shot's median score,
    so a shaky or panning shot raises its own bar instead of cutting itself into pieces.
    """

    def __init__(self, threshold: float = 0.12, ratio: float = 5.0, history: int = 30):
        from collections import deque

        self.threshold = threshold
        self.ratio = ratio
        self._recent: deque[float] = deque(maxlen=history)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self.last_score = 0.0

    def __call__(self, gray: np.ndarray) -> bool:
        import cv2

        small = cv2.resize(gray, (64, 36), interpolation=cv2.INTER_AREA)
        tiny = cv2.resize(small, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        hist = np.bincount((small.reshape(-1) >> 4), minlength=16) / small.size
        prev, self._prev = self._prev, (tiny, hist)
        if prev is None or prev[0].shape != tiny.shape:
            return False
        h_dist = 0.5 * float(np.abs(hist - prev[1]).sum())
        p_dist = float(np.abs(tiny - prev[0]).mean())
        score = self.last_score = 0.5 * (h_dist + min(1.0, 2 * p_dist))
        recent = sorted(self._recent)
        baseline = recent[len(recent) // 2] if recent else 0.0
        cut = score > self.threshold and score > self.ratio * baseline + 0.02
        if cut:
            self._recent.clear()
        else:
            self._recent.append(score)
        return cut

    def reset(self) -> None:
        self._prev = None
        self._recent.clear()
