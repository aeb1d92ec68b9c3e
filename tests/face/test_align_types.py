"""Alignment helpers and the Face record's geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceexpr_cli.face import (
    ARCFACE_112,
    Face,
    align_face,
    ffhq_quad,
    get_backend,
    iou_matrix,
    paste_back,
    similarity_transform,
    yaw_from_kps5,
)
from faceexpr_cli.face.align import transform_points
from faceexpr_cli.samples import load_portrait


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = math.radians(17), 1.7, np.array([12.0, -30.0])
    rot = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    m = similarity_transform(src, src @ rot.T + t)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-4)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-3)


@pytest.fixture(scope="module")
def astronaut_face():
    image, _ = load_portrait("astronaut")
    return image, get_backend("dlib").analyze(image)[0]


def test_arcface_and_ffhq_alignment_and_paste_back(astronaut_face):
    image, face = astronaut_face
    crop, m = align_face(image, face.kps5, 112, "arcface")
    assert crop.shape == (112, 112, 3)
    # the key points land near the template (a similarity cannot fit 5 points exactly)
    assert np.abs(transform_points(m, face.kps5) - ARCFACE_112).max() < 6
    big, m2 = align_face(image, face.kps5, 256, "ffhq")
    quad = ffhq_quad(face.kps5)
    np.testing.assert_allclose(transform_points(m2, quad), [[0, 0], [256, 0], [256, 256], [0, 256]], atol=0.5)
    # eyes level and in the upper half of the FFHQ-style crop
    eyes = transform_points(m2, face.kps5[:2])
    assert abs(eyes[0, 1] - eyes[1, 1]) < 3 and eyes[:, 1].max() < 128
    # pasting the unedited crop back reproduces the frame; an edited crop changes only the face region
    same = paste_back(image, big, m2)
    assert np.abs(same.astype(int) - image.astype(int)).mean() < 2.0
    edited = paste_back(image, np.zeros_like(big), m2)
    changed = np.abs(edited.astype(int) - image.astype(int)).sum(2) > 30
    ys, xs = np.nonzero(changed)
    assert quad[:, 0].min() - 2 <= xs.min() and xs.max() <= quad[:, 0].max() + 2
    assert quad[:, 1].min() - 2 <= ys.min() and ys.max() <= quad[:, 1].max() + 2  # the rest is untouched
    assert changed[int(face.center[1]), int(face.center[0])]


def test_yaw_sign_and_kps_from_68(astronaut_face):
    _, face = astronaut_face
    k = face.kps5.copy()
    iod = np.linalg.norm(k[1] - k[0])
    assert yaw_from_kps5(k) == pytest.approx(face.yaw())
    k[2, 0] = (k[0, 0] + k[1, 0]) / 2 + 0.3 * iod  # nose towards the image right
    assert yaw_from_kps5(k) > 20
    k[2, 0] = (k[0, 0] + k[1, 0]) / 2 - 0.3 * iod
    assert yaw_from_kps5(k) < -20
    f = Face([0, 0, 10, 10], 1.0, landmarks68=face.landmarks68)
    np.testing.assert_allclose(f.kps5, face.kps5)
    assert f.scaled(2.0).kps5[0, 0] == pytest.approx(2 * f.kps5[0, 0])


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[5, 0, 15, 10]], float)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150], [0]])
