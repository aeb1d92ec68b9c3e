"""68-point landmarks of the one animated face, per image or per driving frame, through the face layer.

Detection is the costly step (a dlib HOG pass is ~0.1 s on a 320x256 frame), landmark fitting is cheap (~1 ms).
So a video is followed like this: detect on the first frame and every ``detect_every`` frames; in between, the
box is carried over from the previous frame's landmarks (mapped into the detector's framing, which the shape
predictor was trained on). A shape predictor always answers with 68 points, on a face or on a wall, so no landmark
set is used without a confidence behind it: a detection's score, or for a carried box the appearance match of the
face patch with the last detection's (normalised cross-correlation of small grey patches). A carried face that no
longer matches is detected again at once; a face the detector cannot find, or one cut by the frame's edge, is
lost in that frame. Lost frames are filled from the nearest good frame and marked in ``found``: what the
animation then does with them is the pipeline's ``--on-missing-face`` policy (``animate.face_lost``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.errors import DataError

# A carried face whose patch correlates less than this with the last detection's is lost (same face talking and
# turning: >= 0.8 on the sample footage; background or a face half out of the box: < 0.35).
MIN_SIMILARITY = 0.5
# Landmarks more than this fraction outside the frame: the face is cut by the edge, its points are guesses.
MAX_OUTSIDE = 0.05
# A detector box that the frame's edge clipped to narrower than this aspect: the face goes on beyond the edge.
MIN_EDGE_ASPECT = 0.85
PATCH = 32


class NoFaceError(DataError):
    """No face where one is needed; the message names the file (and frame)."""


@dataclass
class LandmarkTrack:
    points: np.ndarray  # (T, 68, 2) pixels of the analysed frames
    found: np.ndarray  # (T,) bool: landmarks measured with confidence (the others are filled in)
    boxes: np.ndarray  # (T, 4) x0, y0, x1, y1
    confidence: np.ndarray | None = None  # (T,) detection score or appearance match; 0 where lost

    def __len__(self) -> int:
        return len(self.points)


def _largest(faces):
    return max(faces, key=lambda f: f.size) if faces else None


def _pick(faces, prev_box: np.ndarray | None = None):
    """The driver's face among the detections: the one overlapping the last box when there is one, else the
    largest of the confident ones. A marginal detection (a mission patch at score 0.02 beside a face at 1.5) is
    never taken for the face because it happens to be larger."""
    if not faces:
        return None
    if prev_box is not None:
        best = max(faces, key=lambda f: _iou(f.bbox, prev_box))
        if _iou(best.bbox, prev_box) > 0.1:
            return best
    top = max(f.score for f in faces)
    return _largest([f for f in faces if f.score >= 0.5 * top])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


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


def face_patch(image: np.ndarray, box: np.ndarray, size: int = PATCH) -> np.ndarray:
    """The box as a small grey patch, zero mean and unit deviation (all zeros for a flat patch); outside the
    frame counts as black, so a face leaving the picture stops matching."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = size / max(x1 - x0, 1.0), size / max(y1 - y0, 1.0)
    m = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], np.float32)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    p = cv2.warpAffine(grey, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    p = cv2.GaussianBlur(p.astype(np.float32), (3, 3), 0)
    p -= p.mean()
    sd = float(p.std())
    return p / sd if sd > 1.0 else np.zeros_like(p)


def outside_fraction(points: np.ndarray, shape: tuple[int, ...]) -> float:
    h, w = shape[:2]
    inside = (points[:, 0] >= -0.5) & (points[:, 0] <= w - 0.5) & (points[:, 1] >= -0.5) & (points[:, 1] <= h - 0.5)
    return float(1.0 - inside.mean())


def cut_by_edge(box: np.ndarray, shape: tuple[int, ...], min_aspect: float | None = None) -> bool:
    """A box touching the frame's edge and narrower there than a face is (backends clip boxes to the frame)."""
    min_aspect = MIN_EDGE_ASPECT if min_aspect is None else min_aspect
    h, w = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    return ((x0 <= 0.5 or x1 >= w - 0.5) and bw / bh < min_aspect) or ((y0 <= 0.5 or y1 >= h - 0.5)
                                                                       and bh / bw < min_aspect)


def image_landmarks(backend, image: np.ndarray, what: str):
    """The largest confident face's ``Face`` (with landmarks68) in one image, or NoFaceError naming ``what``."""
    face = _pick(backend.analyze(image, landmarks=True))
    if face is None or face.landmarks68 is None:
        raise NoFaceError(f"{what}: no face found", "use a frontal, well-lit face at least ~80 px tall")
    return face


class LandmarkFollower:
    """Follows the largest face frame by frame (``update``); ``track`` gives the whole run (see module docstring)."""

    def __init__(self, backend, detect_every: int = 10, min_similarity: float | None = None,
                 max_outside: float | None = None):
        self.backend = backend
        self.detect_every = max(1, int(detect_every))
        self.min_similarity = MIN_SIMILARITY if min_similarity is None else min_similarity
        self.max_outside = MAX_OUTSIDE if max_outside is None else max_outside
        self.relation = np.zeros(4, np.float32)
        self.template: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.points: list[np.ndarray | None] = []
        self.boxes: list[np.ndarray | None] = []
        self.confidence: list[float] = []

    def _detect(self, image: np.ndarray):
        last = self.boxes[-1] if self.boxes and self.boxes[-1] is not None else None
        face = _pick(self.backend.detect(image, keypoints=False), last)
        if face is None or cut_by_edge(face.bbox, image.shape):
            return None, 0.0
        self.backend.landmarks(image, [face])
        if face.landmarks68 is None or outside_fraction(face.landmarks68, image.shape) > self.max_outside:
            return None, 0.0
        self.relation = _relation(face.landmarks68, face.bbox)
        self.template = face_patch(image, _box_from_points(face.landmarks68, self.relation))
        return face, face.score

    def _carry(self, image: np.ndarray):
        from faceexpr_cli.face.types import Face

        face = self.backend.landmarks(image, [Face(_box_from_points(self.prev, self.relation), 1.0)])[0]
        pts = face.landmarks68
        if pts is None or self.template is None or outside_fraction(pts, image.shape) > self.max_outside:
            return None, 0.0
        similarity = float((face_patch(image, _box_from_points(pts, self.relation)) * self.template).mean())
        return (face, similarity) if similarity >= self.min_similarity else (None, similarity)

    def update(self, image: np.ndarray) -> np.ndarray | None:
        """This frame's 68 points, or None when the face is lost here."""
        i = len(self.points)
        face, confidence, detected = None, 0.0, False
        if self.prev is None or i % self.detect_every == 0:
            face, confidence = self._detect(image)
            detected = True
        if face is None and self.prev is not None:
            face, confidence = self._carry(image)
            if face is None and not detected:  # the carried box slipped off: look again before giving up
                face, confidence = self._detect(image)
        if face is None:
            self.prev = None
            self.points.append(None)
            self.boxes.append(None)
            self.confidence.append(0.0)
            return None
        self.prev = face.landmarks68.astype(np.float32)
        self.points.append(self.prev)
        self.boxes.append(face.bbox.astype(np.float32))
        self.confidence.append(float(confidence))
        return self.prev

    def track(self, what: str) -> LandmarkTrack:
        """Every frame so far; lost frames filled from the nearest good one. NoFaceError when none had a face."""
        if not self.points:
            raise NoFaceError(f"{what}: has no frames")
        found = np.array([p is not None for p in self.points])
        if not found.any():
            raise NoFaceError(f"{what}: no face found in any of its {len(self.points)} frames",
                              "use a driver with one visible, roughly frontal face")
        good = np.flatnonzero(found)
        if not found.all():
            log.debug("%s: face lost in %d of %d frame(s)", what, int((~found).sum()), len(found))
        nearest = good[np.abs(np.arange(len(self.points))[:, None] - good[None, :]).argmin(1)]
        pts = np.stack([self.points[j] for j in nearest])
        bxs = np.stack([self.boxes[j] for j in nearest])
        return LandmarkTrack(pts, found, bxs, np.array(self.confidence, np.float32))


def follow_landmarks(backend, frames: Iterable[np.ndarray], what: str, detect_every: int = 10) -> LandmarkTrack:
    """Landmarks of the largest face in every frame (see module docstring); gaps are filled from neighbours."""
    follower = LandmarkFollower(backend, detect_every)
    for image in frames:
        follower.update(image)
    return follower.track(what)


def normalised_shape(points: np.ndarray) -> np.ndarray:
    """Landmarks centred and divided by sqrt(hull area): the find-best-frame comparison space."""
    from faceexpr_cli.animate.motion import hull_area

    centred = points - points.mean(0, keepdims=True)
    return centred / max(np.sqrt(hull_area(points)), 1e-6)


def best_frame(source_points: np.ndarray, driving_points: np.ndarray, usable: np.ndarray | None = None) -> int:
    """Driving frame whose normalised landmarks are closest to the source's (the original's find_best_frame);
    only frames marked ``usable`` (those with a face) compete."""
    src = normalised_shape(source_points)
    dists = np.array([float(((normalised_shape(p) - src) ** 2).sum()) for p in driving_points])
    if usable is not None and usable.any():
        dists[~usable] = np.inf
    return int(np.argmin(dists))
