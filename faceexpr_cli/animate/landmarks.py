"""68-point landmarks of the one animated face, per image or per driving frame, through the face layer.

Detection is the costly step (a dlib HOG pass is ~0.1 s on a 320x256 frame), landmark fitting is cheap (~1 ms).
So a video is followed like this: detect on the first frame and every ``detect_every`` frames; in between, the
box is carried over from the previous frame's landmarks (mapped into the detector's framing, which the shape
predictor was trained on). Frames where the face is lost are filled from the nearest good frame and reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.errors import DataError


class NoFaceError(DataError):
    """No face where one is needed; the message names the file (and frame)."""


@dataclass
class LandmarkTrack:
    points: np.ndarray  # (T, 68, 2) pixels of the analysed frames
    found: np.ndarray  # (T,) bool: landmarks measured (not filled in)
    boxes: np.ndarray  # (T, 4) x0, y0, x1, y1

    def __len__(self) -> int:
        return len(self.points)


def _largest(faces):
    return max(faces, key=lambda f: f.size) if faces else None


def _box_from_points(points: np.ndarray, relation: np.ndarray) -> np.ndarray:
    """A detector-like box from landmarks: the landmark box moved/scaled by the relation seen at detection."""
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    w, h = x1 - x0, y1 - y0
    dx0, dy0, dx1, dy1 = relation
    return np.array([x0 + dx0 * w, y0 + dy0 * h, x1 + dx1 * w, y1 + dy1 * h], dtype=np.float32)


def _relation(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    return np.array([(box[0] - x0) / w, (box[1] - y0) / h, (box[2] - x1) / w, (box[3] - y1) / h], np.float32)


def image_landmarks(backend, image: np.ndarray, what: str):
    """The largest face's ``Face`` (with landmarks68) in one image, or NoFaceError naming ``what``."""
    face = _largest(backend.analyze(image, landmarks=True))
    if face is None or face.landmarks68 is None:
        raise NoFaceError(f"{what}: no face found", "use a frontal, well-lit face at least ~80 px tall")
    return face


def follow_landmarks(backend, frames: Iterable[np.ndarray], what: str, detect_every: int = 10) -> LandmarkTrack:
    """Landmarks of the largest face in every frame (see module docstring); gaps are filled from neighbours."""
    from faceexpr_cli.face.types import Face

    points: list[np.ndarray | None] = []
    boxes: list[np.ndarray | None] = []
    relation = np.zeros(4, np.float32)
    prev: np.ndarray | None = None
    for i, image in enumerate(frames):
        face = None
        if prev is None or i % detect_every == 0:
            face = _largest(backend.detect(image, keypoints=False))
            if face is not None:
                backend.landmarks(image, [face])
                relation = _relation(face.landmarks68, face.bbox)
        if face is None and prev is not None:
            box = _box_from_points(prev, relation)
            face = backend.landmarks(image, [Face(box, 1.0)])[0]
        if face is None or face.landmarks68 is None:
            points.append(None)
            boxes.append(None)
            prev = None
            continue
        prev = face.landmarks68.astype(np.float32)
        points.append(prev)
        boxes.append(face.bbox.astype(np.float32))
    if not points:
        raise NoFaceError(f"{what}: has no frames")
    found = np.array([p is not None for p in points])
    if not found.any():
        raise NoFaceError(f"{what}: no face found in any of its {len(points)} frames",
                          "use a video with one visible, roughly frontal face")
    good = np.flatnonzero(found)
    if not found.all():
        missing = np.flatnonzero(~found)
        shown = ", ".join(str(int(m)) for m in missing[:8]) + (" ..." if len(missing) > 8 else "")
        log.warning("%s: no face in %d frame(s) (%s); using the nearest frame with a face", what, len(missing), shown)
    nearest = good[np.abs(np.arange(len(points))[:, None] - good[None, :]).argmin(1)]
    pts = np.stack([points[j] for j in nearest])
    bxs = np.stack([boxes[j] for j in nearest])
    return LandmarkTrack(pts, found, bxs)


def normalised_shape(points: np.ndarray) -> np.ndarray:
    """Landmarks centred and divided by sqrt(hull area): the find-best-frame comparison space."""
    from faceexpr_cli.animate.motion import hull_area

    centred = points - points.mean(0, keepdims=True)
    return centred / max(np.sqrt(hull_area(points)), 1e-6)


def best_frame(source_points: np.ndarray, driving_points: np.ndarray) -> int:
    """Driving frame whose normalised landmarks are closest to the source's (the original's find_best_frame)."""
    src = normalised_shape(source_points)
    dists = [float(((normalised_shape(p) - src) ** 2).sum()) for p in driving_points]
    return int(np.argmin(dists))
