"""``--crop auto`` framing and ``--paste-back``: faces cut to a model's square input and put back afterwards.

Framing follows first-order-model's crop-video rule: the face box (for a video, the union of the boxes over the
frames, a "tube", so the crop does not jitter) is grown by ``increase`` on each side and to a square of side
``(1 + 2 increase) * max(w, h)`` around its centre. Where the original then clips the square at the frame border
(and stretches the face when resizing), we keep it square and fill outside the frame by replicating the border.
Detector boxes differ in tightness: dlib's HOG box covers brows to chin, so the default ``increase`` of 0.4 gives
the VoxCeleb framing that the vox-256 model was trained on (face about half the crop).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faceexpr_cli.animate.landmarks import NoFaceError

DEFAULT_INCREASE = 0.4


@dataclass
class Crop:
    """A square crop: ``matrix`` maps frame pixels to crop pixels (2x3), ``size`` is the crop side."""

    box: np.ndarray  # x0, y0, x1, y1 of the square in frame pixels
    matrix: np.ndarray
    size: int

    def apply(self, image: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.warpAffine(image, self.matrix, (self.size, self.size), flags=cv2.INTER_AREA
                              if self.scale < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    @property
    def scale(self) -> float:
        return float(self.matrix[0, 0])

    def paste(self, frame: np.ndarray, crop: np.ndarray, feather: float = 0.08) -> np.ndarray:
        """Blend an (animated) crop back into ``frame`` with a soft-edged mask."""
        from faceexpr_cli.face.align import paste_back, soft_mask

        if crop.shape[0] != self.size:
            import cv2

            crop = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        mask = soft_mask(self.size, margin=feather, blur=feather / 2)
        return paste_back(frame, crop, self.matrix, mask)


def square_box(box: np.ndarray, increase: float = DEFAULT_INCREASE) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    side = (1 + 2 * increase) * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dtype=np.float64)


def make_crop(box: np.ndarray, size: int, increase: float = DEFAULT_INCREASE) -> Crop:
    sq = square_box(box, increase)
    s = size / (sq[2] - sq[0])
    m = np.array([[s, 0, -sq[0] * s], [0, s, -sq[1] * s]], dtype=np.float64)
    return Crop(sq, m, size)


def union_box(boxes: Iterable[np.ndarray]) -> np.ndarray:
    arr = np.asarray(list(boxes), dtype=np.float64)
    return np.array([arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max()])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def image_crop(backend, image: np.ndarray, size: int, what: str, increase: float = DEFAULT_INCREASE) -> Crop:
    faces = backend.detect(image, keypoints=False)
    if not faces:
        raise NoFaceError(f"{what}: no face found for --crop auto", "pass a photo with a visible face or --crop none")
    face = max(faces, key=lambda f: f.size)
    return make_crop(face.bbox, size, increase)


def tube_crop(backend, frames: Iterable[np.ndarray], size: int, what: str, increase: float = DEFAULT_INCREASE,
              iou_with_first: float = 0.25) -> Crop:
    """One crop for a whole driving video: the union of the face boxes that stay with the first face (IoU with
    the first box above ``iou_with_first``, crop-video's rule), grown to a square."""
    first: np.ndarray | None = None
    kept = []
    for image in frames:
        faces = backend.detect(image, keypoints=False)
        if not faces:
            continue
        if first is None:
            first = max(faces, key=lambda f: f.size).bbox
            kept.append(first)
            continue
        best = max(faces, key=lambda f: _iou(first, f.bbox))
        if _iou(first, best.bbox) > iou_with_first:
            kept.append(best.bbox)
    if not kept:
        raise NoFaceError(f"{what}: no face found in the frames sampled for --crop auto",
                          "use a video with a visible face or --crop none")
    return make_crop(union_box(kept), size, increase)
