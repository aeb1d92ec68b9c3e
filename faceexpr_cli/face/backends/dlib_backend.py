"""dlib: HOG or MMOD-CNN detection, 68-point landmarks and the 128-d ResNet identity embedding, all offline.

The model files ship in the ``face-recognition-models`` package. Its ``__init__`` imports ``pkg_resources``
(gone from current setuptools), so the files are found through the import system without running it.
Licence: the 68-point predictor was trained on iBUG 300-W, which excludes commercial use (see the model card).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from faceexpr_cli.errors import DependencyError, UsageError
from faceexpr_cli.face.backend import BACKENDS, FaceBackend, check_option
from faceexpr_cli.face.types import Face

MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn": "mmod_human_face_detector.dat",
}
_INSTALL = "pip install dlib-bin face-recognition-models"


def _dlib():
    try:
        import dlib
    except ImportError as exc:
        raise DependencyError("the dlib face backend needs the dlib package", _INSTALL) from exc
    return dlib


def dlib_model_path(kind: str) -> Path:
    """Path of one of dlib's model files (``landmarks68``, ``landmarks5``, ``recognition``, ``cnn``): a copy in
    the weights cache if there is one, else the file face-recognition-models ships (found without importing it)."""
    from faceexpr_cli.weights import find_weights

    return find_weights("face-dlib", source=kind)


@cache
def _model(kind: str) -> Any:
    """Load each model once per process; dlib's predictors are read-only and shared by every backend object."""
    dlib = _dlib()
    if kind == "hog":
        return dlib.get_frontal_face_detector()
    path = str(dlib_model_path(kind))
    if kind == "cnn":
        return dlib.cnn_face_detection_model_v1(path)
    if kind == "recognition":
        return dlib.face_recognition_model_v1(path)
    return dlib.shape_predictor(path)


def _rect(dlib, bbox: np.ndarray):
    x0, y0, x1, y1 = (int(round(float(v))) for v in bbox)
    return dlib.rectangle(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


@BACKENDS.register("dlib")
class DlibBackend(FaceBackend):
    """``detector``: ``hog`` (fast, frontal) or ``cnn`` (MMOD, slower, more poses); ``upsample`` finds faces
    smaller than ~80 px (HOG's window) at 4x the cost per step; ``jitters`` averages the embedding over that
    many jittered crops."""

    name = "dlib"
    card = "face-dlib"
    embedding_dim: ClassVar[int | None] = 128
    # dlib's rule: same person below Euclidean 0.6; on unit vectors that is cosine above 1 - 0.6**2 / 2 = 0.82
    same_person_similarity: ClassVar[float] = 0.82
    has_landmarks = True

    def __init__(self, *, detector: str = "hog", upsample: int = 0, jitters: int = 1, **opts: Any):
        super().__init__(**opts)
        if detector not in ("hog", "cnn"):
            raise UsageError(f"unknown dlib detector '{detector}'", "use hog or cnn")
        self.detector = detector
        self.upsample = check_option(self.name, "upsample", upsample, integer=True, minimum=0, maximum=4,
                                     hint="0..4; each step doubles the image side (4x the cost)")
        self.jitters = check_option(self.name, "jitters", jitters, integer=True, minimum=1, maximum=100)

    def prepare(self) -> DlibBackend:
        _model(self.detector)
        _model("landmarks68")
        return self

    def _detect(self, image: np.ndarray, *, keypoints: bool) -> list[Face]:
        faces: list[Face] = []
        if self.detector == "hog":
            import cv2

            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            adjust = min(0.0, self.score_threshold) if self.score_threshold is not None else 0.0
            rects, scores, _ = _model("hog").run(gray, self.upsample, adjust)
            found = [((r.left(), r.top(), r.right(), r.bottom()), s) for r, s in zip(rects, scores, strict=True)]
        else:
            found = [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence)
                     for d in _model("cnn")(image, self.upsample)]
        h, w = image.shape[:2]
        for (x0, y0, x1, y1), score in found:
            box = np.array([max(x0, 0), max(y0, 0), min(x1 + 1, w), min(y1 + 1, h)], dtype=np.float32)
            if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
                faces.append(Face(box, float(score)))
        if keypoints:
            self._landmarks(image, faces)
        return faces

    def _landmarks(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        dlib = _dlib()
        predictor = _model("landmarks68")
        for face in faces:
            shape = predictor(image, _rect(dlib, face.bbox))
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            face.landmarks68 = pts
            face.kps5 = None
            face.__post_init__()  # derive kps5 from the 68 points
        return faces

    def _embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        dlib = _dlib()
        rec = _model("recognition")
        for face in faces:
            if face.landmarks68 is None:
                self._landmarks(image, [face])
            pts = [dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks68]
            shape = dlib.full_object_detection(_rect(dlib, face.bbox), pts)
            vec = np.asarray(rec.compute_face_descriptor(image, shape, self.jitters), dtype=np.float32)
            norm = float(np.linalg.norm(vec))
            # Unit length so every backend compares by cosine; dlib's own 0.6 Euclidean threshold applies to
            # ``embedding * extra["embedding_norm"]``.
            face.embedding = vec / max(norm, 1e-12)
            face.extra["embedding_norm"] = norm
        return faces
