"""The insightface backend through insightface's real model router, on tiny ONNX models built in the test."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from faceexpr_cli.errors import WeightsNotFoundError
from faceexpr_cli.face import get_backend

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # inside insightface, not fx


def _bright_cell_image():
    img = np.zeros((320, 320, 3), np.uint8)
    img[160:192, 96:128] = 255  # the tiny detector fires on this stride-32 cell, anchored at (96, 160)
    return img


def test_offline_without_models_says_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    backend = get_backend("insightface")  # building it loads nothing
    with pytest.raises(WeightsNotFoundError) as exc:
        backend.detect(_bright_cell_image())
    line = exc.value.one_line()
    assert "face-insightface-buffalo_l/buffalo_l" in line and "put the buffalo_l .onnx files" in line
    assert "\n" not in line


def test_routes_and_runs_the_buffalo_contracts(tiny_buffalo):
    backend = get_backend("insightface", model_dir=tiny_buffalo, det_size=320)
    faces = backend.analyze(_bright_cell_image(), landmarks=True, embed=True)
    assert set(backend.describe()["models"]) == {"detection", "landmark_2d_106", "landmark_3d_68", "recognition"}
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.99
    np.testing.assert_allclose(f.bbox, [32, 96, 160, 224], atol=1)  # anchor (96, 160) +- 2 strides of 32
    np.testing.assert_allclose(f.kps5[0], [96 - 0.6 * 32, 160 - 0.4 * 32], atol=1)
    assert f.landmarks68.shape == (68, 2) and f.extra["landmarks106"].shape == (106, 2)
    # the fixed 68-point layout comes back inside the face box, eyes above the mouth
    assert (f.landmarks68 >= f.bbox[:2] - 1).all() and (f.landmarks68 <= f.bbox[2:] + 1).all()
    assert f.landmarks68[36:48, 1].mean() < f.landmarks68[48:68, 1].mean()
    assert f.embedding.shape == (512,) and np.linalg.norm(f.embedding) == pytest.approx(1.0, abs=1e-5)


def test_embeddings_differ_for_different_faces(tiny_buffalo):
    backend = get_backend("insightface", model_dir=tiny_buffalo, det_size=320)
    a = backend.analyze(_bright_cell_image(), embed=True)[0]
    img = _bright_cell_image()
    img[100:200, 60:170, 1] = 90  # same detection, different content
    b = backend.analyze(img, embed=True)[0]
    assert float(np.dot(a.embedding, b.embedding)) < 0.999


def test_zip_in_the_cache_is_unpacked_once(tiny_buffalo, tmp_path, monkeypatch):
    from faceexpr_cli.face.backends.insightface_backend import default_model_dirs

    target = default_model_dirs()[0]
    target.parent.mkdir(parents=True)
    with zipfile.ZipFile(target.with_suffix(".zip"), "w") as z:
        for p in tiny_buffalo.glob("*.onnx"):
            z.write(p, f"buffalo_l/{p.name}")
    backend = get_backend("insightface", det_size=320)
    assert len(backend.detect(_bright_cell_image())) == 1
    assert sorted(p.name for p in target.glob("*.onnx")) == sorted(p.name for p in tiny_buffalo.glob("*.onnx"))
    shutil.rmtree(target)
