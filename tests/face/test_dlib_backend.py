"""The dlib backend on the public-domain portraits: real models, offline."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.errors import UnknownNameError, UsageError
from faceexpr_cli.face import backend_names, get_backend
from faceexpr_cli.samples import load_portrait


@pytest.fixture(scope="module")
def dlib_backend():
    return get_backend("dlib")


def _inside(pt, box, pad=0.0):
    return box[0] - pad <= pt[0] <= box[2] + pad and box[1] - pad <= pt[1] <= box[3] + pad


def test_registry_lists_backends():
    assert {"dlib", "opencv"} <= set(backend_names())
    with pytest.raises(UnknownNameError) as exc:
        get_backend("nope")
    known = exc.value.one_line().split("known: ")[1].rstrip(")").split(", ")
    assert {"dlib", "opencv"} <= set(known) and known == sorted(known)
    with pytest.raises(UsageError, match="unknown option"):
        get_backend("dlib", colour="blue")


def test_detect_landmarks_embed_on_portraits(dlib_backend):
    results = {}
    for name in ("astronaut", "grace_hopper"):
        image, p = load_portrait(name)
        faces = dlib_backend.analyze(image, landmarks=True, embed=True)
        assert faces, name
        f = faces[0]
        # the best face is the portrait's face: its eyes and mouth from the portrait's ground truth are inside
        for pt in (p.left_eye, p.right_eye, p.mouth):
            assert _inside(pt, f.bbox, pad=5), (name, pt, f.bbox)
        assert f.landmarks68.shape == (68, 2) and f.kps5.shape == (5, 2)
        # key points land on the truth: eye centres within a quarter of the eye distance
        iod = np.linalg.norm(np.subtract(p.right_eye, p.left_eye))
        assert np.linalg.norm(f.kps5[0] - p.left_eye) < 0.25 * iod
        assert np.linalg.norm(f.kps5[1] - p.right_eye) < 0.25 * iod
        assert abs(f.yaw()) < 25
        assert f.embedding.shape == (128,)
        assert np.linalg.norm(f.embedding) == pytest.approx(1.0, abs=1e-4)
        results[name] = f.embedding
    # two different people: dlib's embedding tells them apart
    same = float(np.dot(results["astronaut"], results["astronaut"]))
    other = float(np.dot(results["astronaut"], results["grace_hopper"]))
    assert same > 0.99 and other < 0.9


def test_detect_on_blank_image_finds_nothing(dlib_backend):
    assert dlib_backend.detect(np.full((200, 300, 3), 127, np.uint8)) == []


def test_bad_image_is_a_usage_error(dlib_backend):
    with pytest.raises(UsageError, match="uint8 RGB"):
        dlib_backend.detect(np.zeros((10, 10), np.float32))


def test_cnn_detector_and_opencv_fallback_find_the_face():
    import cv2

    image, p = load_portrait("grace_hopper")
    small = cv2.resize(image, (256, 300), interpolation=cv2.INTER_AREA)
    sx = 256 / image.shape[1]
    for backend in (get_backend("dlib", detector="cnn"), get_backend("opencv")):
        faces = backend.detect(small)
        assert faces, backend.name
        f = faces[0].scaled(1 / sx, 1 / sx)
        assert _inside(p.left_eye, f.bbox, pad=10) and _inside(p.mouth, f.bbox, pad=10), backend.name
        assert f.landmarks68 is None or f.landmarks68.shape == (68, 2)
    with pytest.raises(UsageError, match="no 68-point landmarks"):
        get_backend("opencv").landmarks(small, faces)
