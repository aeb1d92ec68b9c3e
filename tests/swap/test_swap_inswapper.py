"""The inswapper engine through its real path (insightface's model router for detection and ArcFace, fx's graph
check, crop, ONNX Runtime and paste-back) on tiny graphs with inswapper_128's and buffalo_l's contracts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # inside insightface, not fx

CELL = (slice(160, 192), slice(96, 128))  # the tiny detector fires on this bright stride-32 cell


def _cell_image(level: int = 255, background: int = 30) -> np.ndarray:
    img = np.full((320, 320, 3), background, np.uint8)
    img[CELL] = level
    return img


def tiny_inswapper(path, source_dim: int = 512, seed: int = 0):
    """out = 0.5 * target + 0.5 * colour, colour (3,) = (normed(source) @ W) - a function of the identity only;
    ``emap`` is the last initializer, as in inswapper_128 (it is not used by the graph itself)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = (rng.normal(0, 1, (source_dim, 3)) / np.sqrt(source_dim) * 4).astype(np.float32)
    emap = (np.eye(512) + 0.1 * rng.normal(0, 1, (512, 512))).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["source", "W"], ["c"]),
        helper.make_node("Sigmoid", ["c"], ["cs"]),
        helper.make_node("Reshape", ["cs", "shape4"], ["c4"]),
        helper.make_node("Mul", ["target", "half"], ["t2"]),
        helper.make_node("Mul", ["c4", "half"], ["c2"]),
        helper.make_node("Add", ["t2", "c2"], ["output"]),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([1, 3, 1, 1], np.int64), "shape4"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"), numpy_helper.from_array(emap, "emap")]
    graph = helper.make_graph(
        nodes, "tiny_inswapper",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, source_dim])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w, emap


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "face"))
    from tiny_buffalo import build_tiny_buffalo

    root = tmp_path_factory.mktemp("swap_insw")
    buffalo = build_tiny_buffalo(root / "buffalo_l")
    w, emap = tiny_inswapper(root / "inswapper_128.onnx")
    return root, buffalo, w, emap


def _expected_colour(buffalo, image, w, emap):
    """The test's own computation with insightface's classes: SCRFD key points -> ArcFace -> normed @ emap -> W."""
    from insightface.app.common import Face
    from insightface.model_zoo import model_zoo

    det = model_zoo.get_model(str(buffalo / "det_10g.onnx"))
    det.prepare(-1, input_size=(320, 320), det_thresh=0.5)
    bgr = np.ascontiguousarray(image[..., ::-1])
    boxes, kpss = det.detect(bgr, input_size=(320, 320))
    rec = model_zoo.get_model(str(buffalo / "w600k_r50.onnx"))
    rec.prepare(-1)
    emb = rec.get(bgr, Face(bbox=boxes[0][:4], kps=kpss[0], det_score=boxes[0][4]))
    latent = (emb / np.linalg.norm(emb)) @ emap
    latent /= np.linalg.norm(latent)
    return 1 / (1 + np.exp(-(latent @ w)))


def test_runs_end_to_end_and_pastes_the_graph_answer(tiny_models, tmp_path):
    from faceexpr_cli.media import VideoWriter, read_frames, write_image
    from faceexpr_cli.swap.engines import SwapOptions
    from faceexpr_cli.swap.pipeline import SwapSettings, swap

    root, buffalo, w, emap = tiny_models
    source = _cell_image(255, 40)
    src_path = write_image(tmp_path / "src.png", source)
    drv_path = tmp_path / "drv.mp4"
    frames = [_cell_image(200 - 10 * i, 60) for i in range(4)] + [np.full((320, 320, 3), 60, np.uint8)] * 2
    with VideoWriter(drv_path, 25.0, crf=0) as wr:
        for f in frames:
            wr.write(f)
    opts = SwapOptions(weights=str(root / "inswapper_128.onnx"), models=str(buffalo), extra={"det_size": 320})
    result = swap(src_path, drv_path, tmp_path / "out.mp4", SwapSettings(engine="inswapper", options=opts))
    assert (result.frames, result.faces_swapped, result.frames_without_face) == (6, 4, 2)
    got = read_frames(tmp_path / "out.mp4").astype(np.float64)
    colour = _expected_colour(buffalo, source, w, emap) * 255.0
    for i in range(4):  # the cell's centre lies deep inside the pasted mask: 0.5 * driver + 0.5 * graph colour
        want = 0.5 * frames[i][176, 112].astype(np.float64) + 0.5 * colour
        assert np.abs(got[i, 170:182, 106:118].mean((0, 1)) - want).max() < 6, i
        assert np.abs(got[i, 5:20, 5:20] - 60).max() < 4  # far from the face: the driver's pixels
    assert np.abs(got[4:] - 60).max() < 4  # frames without a face: passed through


def test_graph_of_another_shape_is_one_line_naming_the_input(tiny_models, tmp_path):
    root, buffalo, _, _ = tiny_models
    tiny_inswapper(tmp_path / "bad.onnx", source_dim=256)
    from faceexpr_cli.media import write_image

    img = write_image(tmp_path / "a.png", _cell_image())
    proc = subprocess.run([sys.executable, "-m", "faceexpr_cli", "swap", "-s", str(img), "-d", str(img), "-o",
                           str(tmp_path / "r.png"), "--engine", "inswapper", "--weights", str(tmp_path / "bad.onnx"),
                           "--models", str(buffalo)], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "input 'source'" in lines[0] and "[1, 256]" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "r.png").exists()


def test_notice_and_json_through_the_cli(tiny_models, tmp_path):
    """A driving image gives a PNG; the non-commercial notice is printed (stderr), the JSON result on stdout."""
    root, buffalo, _, _ = tiny_models
    from faceexpr_cli.media import write_image

    src = write_image(tmp_path / "s.png", _cell_image(255, 40))
    drv = write_image(tmp_path / "d.png", _cell_image(180, 60))
    out = tmp_path / "r.png"
    proc = subprocess.run([sys.executable, "-m", "faceexpr_cli", "swap", "-s", str(src), "-d", str(drv), "-o",
                           str(out), "--engine", "inswapper", "--weights", str(root / "inswapper_128.onnx"),
                           "--models", str(buffalo), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "non-commercial" in proc.stderr
    data = json.loads(proc.stdout)
    assert data["engine"] == "inswapper" and data["frames"] == 1 and out.exists()
