"""Which faces to swap: the source photo's face (``--source-face``) and the driving faces (``--driving-face``).

Driving faces are followed as ``fx animate`` follows its driver (``animate.landmarks.LandmarkFollower``: a
detection every few frames, landmark boxes carried in between and checked by appearance), one follower per
person. The choice decides which detection a follower takes: ``largest`` (the largest confident face),
``INDEX`` (the INDEX-th face from the left, 0 first), ``REF.jpg`` (the face whose identity embedding is nearest
to the reference photo's, within the backend's same-person distance) or ``all`` (every face; a face that appears
later gets a follower of its own at the next detection).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceexpr_cli.animate.landmarks import (
    LandmarkFollower,
    NoFaceError,
    _box_from_points,
    _iou,
    _relation,
    cut_by_edge,
    face_patch,
    outside_fraction,
)
from faceexpr_cli.console import log
from faceexpr_cli.errors import UsageError
from faceexpr_cli.swap.engines import DrivingFace

# dlib's 128-d descriptors: the same person is usually within 0.6 (L2), its authors' threshold
SAME_PERSON_L2 = 0.6


def _confident(faces):
    if not faces:
        return []
    top = max(f.score for f in faces)
    return [f for f in faces if f.score >= 0.5 * top]


def source_face(backend, image: np.ndarray, what: str, index: int | None = None):
    """The source photo's face with landmarks: ``index`` from the left, or the largest (said so when several)."""
    faces = [f for f in _confident(backend.analyze(image, landmarks=True)) if f.landmarks68 is not None]
    if not faces:
        raise NoFaceError(f"{what}: no face found in the source", "use a frontal, well-lit face at least ~80 px tall")
    if index is not None:
        ordered = sorted(faces, key=lambda f: float(f.center[0]))
        if not 0 <= index < len(ordered):
            raise UsageError(f"--source-face {index}: the source has {len(ordered)} face(s)",
                             f"use 0..{len(ordered) - 1} (faces numbered from the left)")
        return ordered[index]
    face = max(faces, key=lambda f: f.size)
    if len(faces) > 1:
        log.warning("%s: %d faces in the source; using the largest (choose with --source-face INDEX)", what,
                    len(faces))
    return face


class _Detections:
    """One detection pass per frame, shared by every follower (and embeddings only when a reference needs them)."""

    def __init__(self, backend, embed: bool):
        self.backend, self.embed = backend, embed
        self._key: int | None = None
        self._faces: list = []

    def __call__(self, image: np.ndarray) -> list:
        if self._key != id(image):
            if self.embed:
                faces = self.backend.analyze(image, landmarks=True, embed=True)
            else:
                faces = self.backend.detect(image, keypoints=False)
            self._key, self._faces = id(image), _confident(faces)
        return self._faces


class _ChosenFollower(LandmarkFollower):
    """A follower whose detections are chosen by ``choose(faces, last_box)`` instead of 'the largest'."""

    def __init__(self, backend, detect_every: int, detections: _Detections, choose: Callable):
        super().__init__(backend, detect_every)
        self.detections, self.choose = detections, choose
        self.last_box: np.ndarray | None = None
        self.mesh: np.ndarray | None = None  # the last face's dense mesh (a backend's 468 points), if any

    def _carry(self, image: np.ndarray):
        face, similarity = super()._carry(image)
        self.mesh = face.extra.get("mesh468") if face is not None else None
        return face, similarity

    def _detect(self, image: np.ndarray):
        face = self.choose(self.detections(image), self.last_box)
        if face is None or cut_by_edge(face.bbox, image.shape):
            return None, 0.0
        if face.landmarks68 is None:
            self.backend.landmarks(image, [face])
        if face.landmarks68 is None or outside_fraction(face.landmarks68, image.shape) > self.max_outside:
            return None, 0.0
        self.relation = _relation(face.landmarks68, face.bbox)
        self.template = face_patch(image, _box_from_points(face.landmarks68, self.relation))
        self.last_box = face.bbox.copy()
        self.mesh = face.extra.get("mesh468")
        return face, face.score


def _overlapping(faces, last_box):
    if last_box is None or not faces:
        return None
    best = max(faces, key=lambda f: _iou(f.bbox, last_box))
    return best if _iou(best.bbox, last_box) > 0.3 else None


class DrivingFaces:
    """Per frame, the chosen driving faces (``update``); ``choice`` is all, largest, an index or an image path."""

    def __init__(self, backend, choice: str = "largest", detect_every: int = 10, max_pixels: int | None = None):
        self.backend, self.detect_every = backend, max(1, int(detect_every))
        self.choice = choice
        self.ref: np.ndarray | None = None
        self.index: int | None = None
        choice = choice.strip()
        if choice not in ("all", "largest"):
            if choice.lstrip("-").isdigit():
                self.index = int(choice)
                if self.index < 0:
                    raise UsageError(f"--driving-face {choice}: use all, largest, an index from 0 or a reference image")
            else:
                self.ref = self._reference(Path(choice), max_pixels)
        self.detections = _Detections(backend, embed=self.ref is not None)
        self.followers: list[_ChosenFollower] = []
        self.frame = 0

    def _reference(self, path: Path, max_pixels: int | None) -> np.ndarray:
        from faceexpr_cli.animate.inputs import check_image
        from faceexpr_cli.errors import MissingFileError
        from faceexpr_cli.media import read_image

        if not path.is_file():
            raise MissingFileError(path, "--driving-face reference image (or use all, largest or an index)")
        check_image(path, max_pixels)
        faces = [f for f in self.backend.analyze(read_image(path), landmarks=True, embed=True)
                 if f.embedding is not None]
        if not faces:
            raise NoFaceError(f"{path}: no face found in the --driving-face reference")
        return max(faces, key=lambda f: f.size).embedding

    def _chooser(self, slot: int) -> Callable:
        def choose(faces, last_box):
            near = _overlapping(faces, last_box)
            if near is not None and self.ref is None:
                return near
            if self.ref is not None:
                scored = [(float(np.linalg.norm(f.embedding - self.ref)), f) for f in faces if f.embedding is not None]
                scored = [s for s in scored if s[0] <= SAME_PERSON_L2]
                return min(scored, key=lambda s: s[0])[1] if scored else None
            if self.index is not None:
                ordered = sorted(faces, key=lambda f: float(f.center[0]))
                return ordered[self.index] if self.index < len(ordered) else None
            if self.choice == "all":
                return None  # a lost person's follower waits for its own face to overlap again
            return max(faces, key=lambda f: f.size) if faces else None
        return choose

    def _spawn(self) -> _ChosenFollower:
        f = _ChosenFollower(self.backend, self.detect_every, self.detections, self._chooser(len(self.followers)))
        f.points = [None] * self.frame
        self.followers.append(f)
        return f

    def update(self, image: np.ndarray, time: float) -> list[DrivingFace]:
        if self.choice == "all":
            if self.frame % self.detect_every == 0 or not self.followers:
                self._new_people(image)
        elif not self.followers:
            self._spawn()
        found = []
        for slot, follower in enumerate(self.followers):
            points = follower.update(image)
            if points is not None:
                from faceexpr_cli.face.types import kps5_from_68

                mesh = None if follower.mesh is None else np.asarray(follower.mesh, np.float32)[:, :2]
                found.append(DrivingFace(slot, points.astype(np.float32), kps5_from_68(points), time, mesh))
        self.frame += 1
        return found

    def _new_people(self, image: np.ndarray) -> None:
        """``all``: a follower for every detected face that no follower holds yet."""
        held = [_box_from_points(f.prev, np.zeros(4)) if f.prev is not None else f.last_box for f in self.followers]
        for face in self.detections(image):
            if any(b is not None and _iou(face.bbox, b) > 0.2 for b in held):
                continue
            follower = self._spawn()
            box = face.bbox.copy()
            follower.last_box = box
            follower.choose = lambda faces, last, box=box: _overlapping(faces, last if last is not None else box)
