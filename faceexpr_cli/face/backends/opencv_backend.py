"""OpenCV Haar cascades: a light detection-only fallback that needs nothing but ``opencv-python<5``.

Weak on turned faces and prone to false positives; no landmarks and no identity, so tracks rely on IoU alone.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.errors import DependencyError
from faceexpr_cli.face.backend import BACKENDS, FaceBackend, check_option
from faceexpr_cli.face.types import Face

CASCADES = {"frontal": "haarcascade_frontalface_default.xml", "frontal_alt2": "haarcascade_frontalface_alt2.xml"}


@cache
def _cascade(kind: str):
    import cv2

    if not hasattr(cv2, "CascadeClassifier"):
        raise DependencyError("this OpenCV build has no Haar cascades (OpenCV 5 dropped them)",
                              "pip install 'opencv-python<5'")
    path = Path(cv2.data.haarcascades) / CASCADES[kind]
    if not path.is_file():
        raise DependencyError(f"OpenCV's cascade file {path.name} is missing", "reinstall opencv-python<5")
    return cv2.CascadeClassifier(str(path))


@BACKENDS.register("opencv")
class OpenCVBackend(FaceBackend):
    """``cascade``: frontal or frontal_alt2; ``min_neighbors`` trades recall for false positives."""

    name = "opencv"
    card = "face-opencv-haar"

    def __init__(self, *, cascade: str = "frontal_alt2", min_neighbors: int = 4, min_size: int = 40, **opts: Any):
        super().__init__(**opts)
        if cascade not in CASCADES:
            from faceexpr_cli.errors import UnknownNameError

            raise UnknownNameError("haar cascade", cascade, list(CASCADES))
        self.cascade = cascade
        self.min_neighbors = check_option(self.name, "min_neighbors", min_neighbors, integer=True, minimum=0,
                                          maximum=100)
        self.min_size = check_option(self.name, "min_size", min_size, integer=True, minimum=1, maximum=8192)

    def prepare(self) -> OpenCVBackend:
        _cascade(self.cascade)
        return self

    def _detect(self, image: np.ndarray, *, keypoints: bool) -> list[Face]:
        import cv2

        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rects, _, weights = _cascade(self.cascade).detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True)
        faces = []
        for (x, y, w, h), weight in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1), strict=True):
            faces.append(Face(np.array([x, y, x + w, y + h], dtype=np.float32), float(weight)))
        return faces
