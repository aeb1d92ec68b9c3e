"""The expression model wrapper (folders, subjects, tokens, description) with a chain written here, and the
per-face feature maths against values worked out by hand (found by mutation testing)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from faceexpr_cli.errors import MissingFileError, UnknownNameError, UsageError
from faceexpr_cli.extract import features as F
from faceexpr_cli.extract import model as M
from faceexpr_cli.extract.model import ExpressionModel, check_model_dir, folder_kind

HINT = "pass the --out folder of `fx train joint` (--backend torch) or of `fx export-onnx` (--backend onnx)"


# --- folders -------------------------------------------------------------------------------------------------------
def test_folder_kind(tmp_path):
    d = tmp_path
    for name in ("onnx", "both", "run", "ckpt", "plain", "dirreport", "filechk"):
        (d / name).mkdir()
    (d / "onnx" / "report.json").write_text("{}")
    (d / "both" / "report.json").write_text("{}")
    (d / "both" / "checkpoints").mkdir()
    (d / "run" / "checkpoints").mkdir()
    (d / "ckpt" / "meta.json").write_text("{}")
    (d / "dirreport" / "report.json").mkdir()
    (d / "filechk" / "checkpoints").write_text("")
    kinds = {n: folder_kind(d / n) for n in ("onnx", "both", "run", "ckpt", "plain", "dirreport", "filechk")}
    assert kinds == {"onnx": "onnx", "both": "onnx", "run": "torch", "ckpt": "torch", "plain": None,
                     "dirreport": None, "filechk": None}


def test_check_model_dir_messages(tmp_path, monkeypatch):
    run, exp, plain = tmp_path / "run", tmp_path / "exp", tmp_path / "plain"
    (run / "checkpoints").mkdir(parents=True)
    exp.mkdir()
    (exp / "report.json").write_text("{}")
    plain.mkdir()
    (tmp_path / "f.onnx").write_text("")
    assert check_model_dir(run, None) == (run, "torch") and check_model_dir(exp, "onnx") == (exp, "onnx")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_model_dir("~/run", "torch") == (run, "torch")
    with pytest.raises(MissingFileError) as e:
        check_model_dir(tmp_path / "none", None)
    assert e.value.message == f"model directory not found: {tmp_path / 'none'}" and e.value.hint == HINT
    with pytest.raises(UsageError) as e:
        check_model_dir(tmp_path / "f.onnx", None)
    assert e.value.message == f"--model {tmp_path / 'f.onnx'} is a file, not a run or export directory"
    assert e.value.hint == HINT
    with pytest.raises(UnknownNameError) as e:
        check_model_dir(run, "tensorrt")
    assert e.value.message == "unknown backend 'tensorrt'" and e.value.hint == "known: onnx, torch"
    with pytest.raises(UsageError) as e:
        check_model_dir(plain, None)
    assert e.value.message == (f"{plain} is neither a training run (no checkpoints/) nor an ONNX export "
                               "(no report.json)") and e.value.hint == HINT
    with pytest.raises(UsageError) as e:
        check_model_dir(run, "onnx")
    assert e.value.message == f"{run} is a training run, not an ONNX export"
    assert e.value.hint == f"use --backend torch, or export it first: fx export-onnx {run} --all --out DIR"
    with pytest.raises(UsageError) as e:
        check_model_dir(exp, "torch")
    assert e.value.message == f"{exp} is an ONNX export, not a training run"
    assert e.value.hint == "use --backend onnx, or pass the run directory it was exported from"


def test_subjects_file_candidates(tmp_path):
    exp, run = tmp_path / "runs" / "exp", tmp_path / "elsewhere" / "run"
    exp.mkdir(parents=True)
    run.mkdir(parents=True)
    (exp / "report.json").write_text(json.dumps({"source": f"run {run}"}))
    assert M._subjects_file(exp, "onnx") is None
    (run / "subjects.json").write_text("{}")
    assert M._subjects_file(exp, "onnx") == run / "subjects.json"  # the run the export names
    assert M._subjects_file(exp, "torch") is None  # a run folder never reads report.json
    (tmp_path / "runs" / "subjects.json").write_text("{}")
    assert M._subjects_file(exp, "onnx") == tmp_path / "runs" / "subjects.json"  # beside it, before the run
    (exp / "subjects.json").write_text("{}")
    assert M._subjects_file(exp, "onnx") == exp / "subjects.json"
    (exp / "report.json").write_text(json.dumps({"source": f"card {run}"}))
    (exp / "subjects.json").unlink()
    (tmp_path / "runs" / "subjects.json").unlink()
    assert M._subjects_file(exp, "onnx") is None  # only a "run ..." source points at a run


# --- a chain written here ------------------------------------------------------------------------------------------
class Chain:
    def __init__(self, extras=("subject",), limit=3, size=24, providers=(("CUDAExecutionProvider", "CPU"), ())):
        card = lambda name, **kw: SimpleNamespace(name=name, **kw)  # noqa: E731
        self.input_names = ["image", *extras]
        self.predictors = [
            SimpleNamespace(card=card("tok", input=SimpleNamespace(size=size)), providers=list(providers[0])),
            SimpleNamespace(card=card("expr", preset={"max_subjects": limit} if limit else {}),
                            part=SimpleNamespace(atol="0.002"), providers=list(providers[1]))]
        self.calls = []

    def run_frames(self, crops, batch_size, **extra):
        self.calls.append((len(crops), batch_size, extra))
        return {"expression": np.full((len(crops), 3), 0.5, np.float64), "other": None}


def _model(chain=None, row=1, name="bob"):
    return ExpressionModel(chain or Chain(), Path("/m"), "onnx", "cpu", row, name, "id")


def test_tokens_feed_the_subject_row_and_count_time():
    m = _model()
    assert m.extra_name == "subject" and m.seconds == 0.0 and m.frames == 0 and m.output == "expression"
    out = m.tokens(np.zeros((5, 24, 24, 3), np.uint8))
    assert out.dtype == np.float32 and out.shape == (5, 3) and np.all(out == 0.5)
    (n, batch, extra), = m.chain.calls
    assert (n, batch) == (5, 5) and extra == {"subject": np.int64(1)} and isinstance(extra["subject"], np.int64)
    m.tokens(np.zeros((2, 24, 24, 3), np.uint8))
    assert m.frames == 7 and m.seconds > 0
    empty = m.tokens(np.zeros((0, 24, 24, 3), np.uint8))
    assert empty.shape == (0, 0) and empty.dtype == np.float32 and len(m.chain.calls) == 2 and m.frames == 7
    plain = _model(Chain(extras=()), None, None)
    plain.tokens(np.zeros((1, 24, 24, 3), np.uint8))
    assert plain.extra_name is None and plain.chain.calls[0][2] == {}


def test_size_atol_and_describe():
    m = _model()
    assert m.size == 24 and m.atol == 0.002 and isinstance(m.atol, float)
    assert _model(Chain(size=(32, 40))).size == 32
    with pytest.raises(UsageError, match="/m: the tokenizer's card has no input size"):
        _ = _model(Chain(size=None)).size
    assert m.describe() == {"model": "/m", "backend": "onnx", "output": "expression", "device": "cpu",
                            "providers": ["CUDAExecutionProvider"], "input_size": 24, "cards": ["tok", "expr"],
                            "subject_row": 1, "subject": "bob"}
    assert _model(Chain(providers=((), ()))).describe()["providers"] is None


@pytest.mark.parametrize("subject, names, want", [
    (None, [], (0, None)), (None, ["ann", "bob"], (0, "ann")), ("1", ["ann", "bob"], (1, "bob")),
    (2, ["ann", "bob"], (2, None)), ("bob", ["ann", "bob"], (1, "bob")), (" 0 ", [], (0, None)),
])
def test_subject_rows(subject, names, want, tmp_path):
    if names:
        (tmp_path / "subjects.json").write_text(json.dumps({"subjects": names}))
    assert ExpressionModel._subject(tmp_path, "torch", Chain(), subject) == want


def test_subject_errors(tmp_path):
    with pytest.raises(UnknownNameError) as e:
        ExpressionModel._subject(tmp_path, "torch", Chain(), "carl")
    assert e.value.message == "unknown subject (no subjects.json found) 'carl'" and e.value.hint == "known: none"
    (tmp_path / "subjects.json").write_text(json.dumps({"subjects": ["ann"]}))
    with pytest.raises(UnknownNameError) as e:
        ExpressionModel._subject(tmp_path, "torch", Chain(), "carl")
    assert e.value.message == f"unknown subject in {tmp_path / 'subjects.json'} 'carl'" and e.value.hint == "known: ann"
    for subject, limit, table in (("3", 3, "0..2"), ("-1", 3, "0..2"), ("-1", None, "0..0")):
        with pytest.raises(UsageError) as e:
            ExpressionModel._subject(tmp_path, "torch", Chain(limit=limit), subject)
        assert e.value.message == f"--subject {subject} is outside the model's subject table ({table})"
    assert ExpressionModel._subject(tmp_path, "torch", Chain(limit=None), "99") == (99, None)


def test_load_through_a_chain_written_here(tmp_path, monkeypatch):
    import faceexpr_cli.onnx.predictor as predictor

    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "report.json").write_text('{"ok": true}')
    (exp / "subjects.json").write_text(json.dumps({"subjects": ["ann", "bob"]}))
    calls, chains = [], {"chain": Chain()}

    def load_chain(kind, path, **kw):
        calls.append((kind, path, kw))
        c = chains["chain"]
        if isinstance(c, Exception):
            raise c
        return c

    monkeypatch.setattr(predictor, "load_chain", load_chain)
    m = ExpressionModel.load(exp, subject="bob", allow_cpu_fallback=True)
    sha = hashlib.sha1(b'{"ok": true}').hexdigest()[:16]
    assert calls == [("onnx", exp, {"outputs": ["expression"], "device": "cpu", "allow_cpu_fallback": True})]
    assert (m.backend, m.device, m.subject_row, m.subject_name, m.path) == ("onnx", "cpu", 1, "bob", exp)
    assert m.identity == f"onnx:{sha}|expression|subject=1" and m.output == "expression"
    chains["chain"] = Chain(extras=())
    assert ExpressionModel.load(exp, "onnx").identity == f"onnx:{sha}|expression|subject=None"
    chains["chain"] = Chain(extras=("a", "b"))
    with pytest.raises(UsageError) as e:
        ExpressionModel.load(exp)
    assert e.value.message == f"{exp}: the 'expression' chain takes ['image', 'a', 'b'], not face images alone"
    assert e.value.hint == "export the tokenizer with it: fx export-onnx RUN --model tokenizer --model expression"
    chains["chain"] = UnknownNameError("output", "expression", ["tokens"])
    with pytest.raises(UsageError) as e:
        ExpressionModel.load(exp)
    assert e.value.message == f"{exp} has no model that outputs 'expression'"
    assert e.value.hint == "point at a `fx train joint` run or its export"
    chains["chain"] = UnknownNameError("card", "other", [])
    with pytest.raises(UnknownNameError, match="unknown card 'other'"):
        ExpressionModel.load(exp)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "meta.json").write_text("{}")
    chains["chain"] = Chain(extras=())
    t = ExpressionModel.load(ckpt, output="mesh")
    assert calls[-1] == ("torch", ckpt, {"outputs": ["mesh"], "device": "cpu"})
    assert t.identity == f"torch:{ckpt.resolve()}|mesh|subject=None" and t.backend == "torch"


# --- features ------------------------------------------------------------------------------------------------------
def test_parse_features_rules():
    assert F.parse_features("", True) == ("tokens",) and F.parse_features([], False) == ("mesh", "emotion")
    assert F.parse_features(["Landmarks", " mesh "], False) == ("mesh", "landmarks")
    assert F.parse_features("emotion,,tokens,", True) == ("tokens", "emotion")
    hint = "use a comma-separated subset of tokens,mesh,emotion,landmarks"
    with pytest.raises(UsageError) as e:
        F.parse_features(" , ", True)
    assert (e.value.message, e.value.hint) == ("--features is empty", hint)
    with pytest.raises(UsageError) as e:
        F.parse_features("mesh,smile", True)
    assert (e.value.message, e.value.hint) == ("unknown feature 'smile'", hint)
    with pytest.raises(UsageError) as e:
        F.parse_features(("tokens",), False)
    assert e.value.message == "--features tokens needs --model"
    assert e.value.hint == "pass a `fx train joint` run or its export with --model, or leave tokens out"


def test_resolve_backend_rules():
    for left_alone in (None, "", "default"):
        assert F.resolve_backend(("mesh",), left_alone) == "mediapipe"
        assert F.resolve_backend(("tokens",), left_alone) == "dlib"  # no MediaPipe files in this test's cache
    assert F.resolve_backend(("mesh",), "mediapipe") == "mediapipe"
    assert F.resolve_backend(("tokens",), "opencv") == "opencv"
    with pytest.raises(UsageError) as e:
        F.resolve_backend(("emotion", "mesh"), "insightface")
    assert e.value.message == "--features mesh needs --face-backend mediapipe or auto, not 'insightface'"
    assert e.value.hint == "leave --face-backend out (mesh picks mediapipe), or drop mesh"


def test_check_weights_asks_for_what_the_features_need(monkeypatch):
    import faceexpr_cli.weights as weights

    asked = []
    monkeypatch.setattr(weights, "find_weights", lambda card, source=None: asked.append((card, source)))
    mp = [("face-mediapipe", s) for s in ("detector_short", "detector_full", "face_mesh", "iris")]
    F.check_weights(("tokens", "landmarks"), "dlib")
    assert asked == []
    F.check_weights(("mesh",), "auto")
    assert asked == mp
    asked.clear()
    F.check_weights(("tokens",), "mediapipe")
    assert asked == mp
    asked.clear()
    F.check_weights(("emotion",), "dlib")
    assert asked == [("emotion-minixception", None)]


def test_load_emotion_device_and_labels(monkeypatch):
    import faceexpr_cli.face.emotion as emotion

    made = []

    class Fake:
        labels = list(F.EMOTION_LABELS)

        def __init__(self, engine, device, batch_size):
            made.append((engine, device, batch_size))

    monkeypatch.setattr(emotion, "EmotionPredictor", Fake)
    assert isinstance(F.load_emotion(), Fake) and made[-1] == ("torch", "cpu", 32)
    F.load_emotion("cuda:1", 8)
    F.load_emotion("auto", 4)
    assert made[1:] == [("torch", "cuda:1", 8), ("torch", "cpu", 4)]
    Fake.labels = ["happy", "sad"]
    with pytest.raises(UsageError) as e:
        F.load_emotion()
    assert e.value.message == f"the emotion card's labels ['happy', 'sad'] are not {list(F.EMOTION_LABELS)}"


def _rot_z(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_normalise_mesh_undoes_the_pose():
    rng = np.random.default_rng(7)
    canon = rng.normal(size=(468, 3))
    rot, scale, t = _rot_z(30), 2.5, np.array([100.0, 50.0, 7.0])
    flip = np.diag([1.0, -1.0, -1.0])
    mesh = (scale * canon @ rot.T + flip @ t) @ flip  # the mesh frame: y down, z into the screen
    mesh4 = np.concatenate([mesh, np.ones((468, 1))], 1)  # a fourth column (visibility) is ignored
    pose = SimpleNamespace(rotation=rot, translation=t, scale=scale)
    out = F.normalise_mesh(mesh4, pose)
    assert out.dtype == np.float32 and out.shape == (468, 3)
    np.testing.assert_allclose(out, canon, atol=1e-4)


def test_head_pose_landmarks_and_face_rows():
    crop = np.array([10.0, 20.0, 60.0, 70.0])  # side 50
    pose = SimpleNamespace(pitch=5.0, yaw=-10.0, roll=2.0, translation=np.array([35.0, 45.0, 3.0]), scale=25.0,
                           rotation=np.eye(3))
    np.testing.assert_allclose(F.head_pose_row(pose, crop), [5, -10, 2, 0.5, 0.5, 0.5])
    assert F.head_pose_row(pose, crop).dtype == np.float32
    pts = np.array([[10.0, 20.0, 9.0], [60.0, 70.0, 9.0], [35.0, 30.0, 9.0]])
    np.testing.assert_allclose(F.landmarks_in_crop(pts, crop), [[0, 0], [1, 1], [0.5, 0.2]])
    mesh = np.zeros((468, 3))
    face = SimpleNamespace(extra={"head_pose": pose, "mesh468": mesh,
                                  "apertures": {"mouth": 0.3, "left_eye": 0.2, "right_eye": 0.1}},
                           landmarks68=np.tile([[35.0, 45.0]], (68, 1)))
    rows = F.face_rows(face, crop, ("mesh", "landmarks"))
    assert list(rows) == ["mesh", "head_pose", "apertures", "landmarks"]
    np.testing.assert_allclose(rows["apertures"], [0.1, 0.2, 0.3])  # right eye, left eye, mouth
    assert rows["apertures"].dtype == np.float32
    np.testing.assert_allclose(rows["landmarks"], 0.5)
    np.testing.assert_allclose(rows["mesh"], np.tile(np.array([-35.0, 45.0, 3.0]) / 25, (468, 1)), atol=1e-6)
    assert list(F.face_rows(face, crop, ("landmarks",))) == ["landmarks"]
    assert F.face_rows(face, crop, ("tokens", "emotion")) == {}


def test_empty_rows_shapes():
    assert F.empty_rows(("tokens",)) == {}
    assert F.empty_rows(("mesh", "emotion", "landmarks")) == {"mesh": (468, 3), "head_pose": (6,),
                                                              "apertures": (3,), "emotion": (7,),
                                                              "landmarks": (68, 2)}
