"""`--features mesh,emotion,landmarks` on the sample talking head with the real MediaPipe and mini-Xception weights,
checked against the backend and the emotion predictor run here on crops this test cuts itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceexpr_cli.errors import UsageError

FLIP = np.diag([1.0, -1.0, -1.0])


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on two busy cores are far slower for these small graphs
    yield
    torch.set_num_threads(before)


def test_mesh_emotion_landmarks_match_backend_and_predictor(sample_video, face_weights, one_thread, tmp_path):
    import pyarrow.parquet as pq

    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.extract import ExtractOptions, extract_features, read_features, read_tokens
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.face.emotion import EmotionPredictor, crop_faces
    from faceexpr_cli.face.types import Face
    from faceexpr_cli.media import read_frames

    res = extract_features([sample_video.path], None, tmp_path / "out",
                           ExtractOptions(stride=3, features="landmarks,emotion,mesh"))
    row = res.rows[0]
    assert row["status"] == "ok" and res.stats["features"] == ["mesh", "emotion", "landmarks"]
    assert res.stats["options"]["face_backend"] == "mediapipe"  # mesh picked it
    a = read_features(res.out / row["npz"])
    frames = read_frames(sample_video.path)
    assert row["frames"] == len(frames)
    sampled = np.arange(0, len(frames), 3)
    assert row["sampled_frames"] == len(sampled)
    n = len(a["frame_ind"])
    assert n == row["face_frames"] and set(a["frame_ind"]) <= set(sampled) and n >= 0.9 * len(sampled)
    assert a["emotion"].shape == (n, 7) and a["mesh"].shape == (n, 468, 3) and a["head_pose"].shape == (n, 6)
    assert a["landmarks"].shape == (n, 68, 2) and a["apertures"].shape == (n, 3) and "tokens" not in a
    for k in ("emotion", "mesh", "head_pose", "landmarks", "apertures"):
        assert a[k].dtype == np.float32 and np.isfinite(a[k]).all(), k
    np.testing.assert_allclose(a["emotion"].sum(1), 1.0, atol=1e-5)
    assert a["emotion"].mean(0).argmax() == 3  # the sample smiles: happy (measured mean 0.87)

    # emotion: the predictor on crops cut here at each row's box
    emo = EmotionPredictor("torch")
    want = emo.predict([crop_faces(frames[f], b[None])[0] for f, b in zip(a["frame_ind"], a["box"], strict=True)])
    assert want.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    atol = float(load_card("emotion-minixception").onnx.parts[0].atol)
    np.testing.assert_allclose(a["emotion"], want.probabilities, atol=atol)

    # mesh: the backend's own mesh at the row's box; the stored rows mapped forward by its pose give it back
    mp = get_backend("mediapipe").prepare()
    for i in range(0, n, 5):
        f, box, crop = int(a["frame_ind"][i]), a["box"][i], a["crop"][i]
        face = mp.landmarks(frames[f], [Face(box, 1.0)])[0]
        pose, m = face.extra["head_pose"], face.extra["mesh468"]
        back = (pose.scale * a["mesh"][i].astype(np.float64) @ pose.rotation.T) @ FLIP + pose.translation
        np.testing.assert_allclose(back, m, atol=1e-3 * pose.scale * 17.7)
        side = crop[2] - crop[0]
        np.testing.assert_allclose(a["landmarks"][i], (face.landmarks68 - crop[:2]) / side, atol=1e-5)
        np.testing.assert_allclose(a["head_pose"][i, :3], [pose.pitch, pose.yaw, pose.roll], atol=1e-3)
        np.testing.assert_allclose(a["apertures"][i], [face.extra["apertures"][k]
                                                       for k in ("right_eye", "left_eye", "mouth")], atol=1e-5)
    # a pose-normalised mesh is the canonical face's size: its 33 fitted points lie near the canonical ones
    from faceexpr_cli.face.mediapipe.pose import canonical_face

    canon = canonical_face()
    ids = canon["basis_ids"]
    assert np.abs(a["mesh"][:, ids] - canon["vertices"][ids]).mean() < 1.0  # centimetres

    # npz == parquet, exactly
    back = read_tokens(res.out / row["parquet"])
    for k in ("emotion", "mesh", "head_pose", "landmarks", "apertures", "box", "frame_ind"):
        assert back[k].shape == a[k].shape and np.array_equal(back[k], a[k]), k
    assert pq.read_table(res.out / row["parquet"]).num_rows == n

    doc = json.loads((res.out / row["json"]).read_text())
    assert doc["features"] == ["mesh", "emotion", "landmarks"] and doc["emotion_labels"] == want.labels
    flat = [r for tr in doc["traj"] for r in tr]
    assert len(flat) == n and all("mesh" not in r and "emotion" not in r for r in flat)  # floats only on request
    assert [r["emotion_top"] for r in flat] == want.top()


def test_cli_mesh_emotion_end_to_end(sample_video, face_weights, one_thread, tmp_path, capsys):
    from faceexpr_cli.cli.app import main

    out = tmp_path / "OUT"
    assert main(["-q", "extract-feats", str(sample_video.path), "--features", "mesh,emotion", "--stride", "4",
                 "--json-floats", "-o", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["videos"] == {"ok": 1} and doc["features"] == ["mesh", "emotion"]
    z = np.load(out / doc["rows"][0]["npz"])
    feat = json.loads((out / doc["rows"][0]["json"]).read_text())
    first = feat["traj"][0][0]
    assert len(first["emotion"]) == 7 and np.array(first["mesh"]).shape == (468, 3) and len(first["head_pose"]) == 6
    np.testing.assert_allclose(first["emotion"], z["emotion"][0], atol=1e-6)


def test_feature_choice_errors(tmp_path, sample_video):
    from faceexpr_cli.extract.features import parse_features, resolve_backend

    assert parse_features(None, True) == ("tokens",) and parse_features(None, False) == ("mesh", "emotion")
    assert parse_features("emotion, tokens", True) == ("tokens", "emotion")
    with pytest.raises(UsageError, match="needs --model"):
        parse_features("tokens", False)
    with pytest.raises(UsageError, match="unknown feature 'smile'"):
        parse_features("mesh,smile", False)
    assert resolve_backend(("mesh",), None) == "mediapipe" and resolve_backend(("emotion",), None) == "dlib"  # no MediaPipe files cached
    assert resolve_backend(("mesh",), "auto") == "auto"
    with pytest.raises(UsageError, match="needs --face-backend mediapipe or auto, not 'dlib'"):
        resolve_backend(("mesh", "emotion"), "dlib")


def test_missing_weights_is_one_line_before_any_work(sample_video, tmp_path, capsys):
    from faceexpr_cli.cli.app import main

    for feats, card in (("mesh", "face-mediapipe"), ("emotion", "emotion-minixception")):
        out = tmp_path / feats
        assert main(["-q", "extract-feats", str(sample_video.path), "--features", feats, "-o", str(out)]) == 1
        err = capsys.readouterr().err.strip()
        assert f"fx download weights {card}" in err and len(err.splitlines()) == 1, err
        assert not out.exists()


def test_tokens_with_emotion_and_dlib_landmarks(sample_video, tiny_export, face_weights, one_thread, tmp_path):
    from faceexpr_cli.extract import ExtractOptions, extract_features, read_features, read_tokens

    res = extract_features([sample_video.path], tiny_export, tmp_path / "o",
                           ExtractOptions(stride=10, face_backend="dlib", features="emotion,tokens,landmarks"))
    row = res.rows[0]
    a = read_features(res.out / row["npz"])
    n = len(a["frame_ind"])
    assert row["status"] == "ok" and n == 10 and res.stats["model"]["backend"] == "onnx"
    assert a["tokens"].shape == (n, 64) and a["emotion"].shape == (n, 7) and a["landmarks"].shape == (n, 68, 2)
    assert "mesh" not in a and row["token_dim"] == 64
    # dlib's 68 points lie inside the crop square (face box + margin)
    assert a["landmarks"].min() > 0.05 and a["landmarks"].max() < 0.95
    back = read_tokens(res.out / row["parquet"])
    assert all(np.array_equal(back[k], a[k]) for k in ("tokens", "emotion", "landmarks"))
