"""One video through `extract_video`, with a detector and a model written here: rows, files and the JSON document
checked against what the test video draws and against the fakes' own outputs (found by mutation testing)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from faceexpr_cli.extract import records
from faceexpr_cli.extract import video as V
from faceexpr_cli.extract.features import EMOTION_LABELS
from faceexpr_cli.extract.inputs import VideoItem
from faceexpr_cli.extract.model import ExpressionModel
from faceexpr_cli.extract.options import ExtractOptions
from faceexpr_cli.face import Face, FaceBackend
from tests.extract.conftest import bright_face_frames

FPS = 25
N = 24
FACE_FRAMES = [*range(0, 10), *range(14, 24)]  # the square is drawn on these frames; 10..13 are empty


class Bright(FaceBackend):
    """The "face" is the box of the pixels whose red channel is above 200; 68 points along its diagonal."""

    name = "fx-test-bright-video"
    has_landmarks = True

    def _detect(self, image, *, keypoints):
        ys, xs = np.nonzero(image[..., 0] > 200)
        if not len(xs):
            return []
        return [Face([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], 0.875)]

    def _landmarks(self, image, faces):
        k = np.linspace(0.0, 1.0, 68)[:, None]
        for f in faces:
            f.landmarks68 = f.bbox[:2] + k * (f.bbox[2:] - f.bbox[:2])
        return faces


class FakeModel(ExpressionModel):
    """Tokens = the crop's mean R, G, B over 255 and a constant 2 (not unit length); records every batch."""

    size = 16

    def __init__(self):  # no chain: nothing of the base class's loading runs
        self.backend, self.output, self.identity, self.device = "fake", "expression", "fake:1", "cpu"
        self.path, self.seconds, self.frames, self.subject_row = Path("/no/such/fake"), 0.0, 0, None
        self.calls: list[np.ndarray] = []

    def tokens(self, crops):
        self.calls.append(np.array(crops))
        self.frames += len(crops)
        self.seconds += 0.25
        c = crops.astype(np.float32) / 255
        return np.stack([c[..., 0].mean((1, 2)), c[..., 1].mean((1, 2)), c[..., 2].mean((1, 2)),
                         np.full(len(c), 2.0, np.float32)], 1)

    def describe(self):
        return {"model": "fake", "backend": "fake"}


class FakeEmotion:
    """One-hot probabilities at (the frame index the face's green level says) % 7; records its batches."""

    def __init__(self):
        self.calls: list[int] = []

    def predict(self, crops):
        self.calls.append(len(crops))
        probs = np.zeros((len(crops), 7), np.float32)
        for i, c in enumerate(crops):
            probs[i, int(round((np.median(c[..., 1]) - 100) / 5)) % 7] = 1.0
        return type("P", (), {"probabilities": probs})()


def _frames(face_frames, n=N):
    return bright_face_frames(face_frames, n)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from faceexpr_cli.media import write_video

    d = tmp_path_factory.mktemp("video_rules")
    return {"two": write_video(d / "two faces!.mp4", _frames(FACE_FRAMES), fps=FPS),
            "late": write_video(d / "late.mp4", _frames(range(6, 18), 18), fps=FPS),
            "grey": write_video(d / "grey.mp4", _frames(()), fps=FPS)}


def _opts(**kw) -> ExtractOptions:
    has_model = kw.pop("has_model", True)
    kw.setdefault("detect_every", 1)
    kw.setdefault("batch_size", 4)
    kw.setdefault("face_backend", "dlib")  # recorded in the JSON only; the detector is passed in
    return ExtractOptions(**kw).validate().resolve(has_model)


def _item(path: Path, **kw) -> VideoItem:
    return VideoItem(str(Path(path).resolve()), **kw)


@pytest.fixture(scope="module")
def ok_run(videos, tmp_path_factory):
    """The two-face video at stride 2, batches of 4, tokens only."""
    out = tmp_path_factory.mktemp("ok_run")
    model, seen = FakeModel(), []
    item = _item(videos["two"], label="Happy", fields={"speaker": "s1"})
    row = V.extract_video(item, out, model, _opts(stride=2), Bright(), "SETTINGS", seen.append)
    return out, item, model, row, seen


def test_ok_row_counts_what_the_video_draws(ok_run):
    out, item, _, row, seen = ok_run
    sampled = list(range(0, N, 2))
    faces = [f for f in sampled if f in FACE_FRAMES]
    stem = "two_faces_-" + hashlib.sha1(item.source.encode()).hexdigest()[:8]
    assert row["status"] == "ok" and row["error"] is None
    assert (row["json"], row["npz"], row["parquet"]) == (f"features/{stem}.json", f"features/{stem}.npz",
                                                          f"features/{stem}.parquet")
    assert (row["fps"], row["width"], row["height"], row["frames"]) == (25.0, 96, 64, N)
    assert row["sampled_frames"] == len(sampled) and row["face_frames"] == len(faces)
    assert row["no_face_frames"] == len(sampled) - len(faces) and row["trajectories"] == 2
    assert row["tokens"] == len(faces) and row["token_dim"] == 4
    assert row["backend"] == "fake" and row["settings"] == "SETTINGS"
    assert isinstance(row["seconds"], float) and row["seconds"] > 0
    assert (row["label"], row["label_id"], json.loads(row["fields"])) == ("Happy", 3, {"speaker": "s1"})
    assert seen == [1] * len(faces)  # on_frames: one call per sampled face frame, one face each
    for k in ("json", "npz", "parquet"):
        assert (out / row[k]).is_file()
    assert not list(out.rglob("*.part"))


def test_tokens_come_in_batches_and_follow_the_crops(ok_run, videos):
    from faceexpr_cli.crop.geometry import crop_square
    from faceexpr_cli.media import read_frames

    out, _, model, row, _ = ok_run
    a = records.read_features(out / row["npz"])
    faces = [f for f in range(0, N, 2) if f in FACE_FRAMES]
    assert [len(c) for c in model.calls] == [4, 4, 2]  # batch_size crops at a time, then the rest
    assert a["frame_ind"].tolist() == faces and a["traj"].tolist() == [0] * 5 + [1] * 5
    np.testing.assert_allclose(a["time"], np.array(faces) / FPS, atol=1e-6)
    frames = read_frames(videos["two"])
    crops = np.stack([crop_square(frames[f], c, 16) for f, c in zip(a["frame_ind"], a["crop"], strict=True)])
    np.testing.assert_array_equal(np.concatenate(model.calls), crops)
    want = np.concatenate([crops.astype(np.float32).mean((1, 2)) / 255, np.full((len(crops), 1), 2.0)], 1)
    np.testing.assert_allclose(a["tokens"], want, atol=1e-6)
    assert a["tokens"].dtype == np.float32 and "tokens_raw" not in a
    # boxes: the drawn square (32 x 32; the smoothed track lags a little)
    np.testing.assert_allclose(a["box"][:, 1], 16, atol=1.5)
    np.testing.assert_allclose(a["box"][:, 3] - a["box"][:, 1], 32, atol=1.5)
    np.testing.assert_allclose(a["box"][:, 2] - a["box"][:, 0], 32, atol=1.5)
    assert a["no_face_frames"].tolist() == [10, 12] and a["no_face_frames"].dtype == np.int64
    back = records.read_tokens(out / row["parquet"])
    for k in ("tokens", "frame_ind", "box", "crop", "traj", "track_id", "time"):
        np.testing.assert_array_equal(back[k], a[k])


def test_json_document_describes_the_trajectories(ok_run, videos):
    from faceexpr_cli.face import TrackerOptions, track_video

    out, item, _, row, _ = ok_run
    doc = json.loads((out / row["json"]).read_text())
    a = records.read_features(out / row["npz"])
    assert doc["video_path"] == item.source and doc["label"] == "Happy" and doc["label_id"] == 3
    assert doc["fields"] == {"speaker": "s1"} and doc["fps"] == 25.0 and (doc["width"], doc["height"]) == (96, 64)
    assert doc["stride"] == 2 and doc["features"] == ["tokens"] and doc["face_backend"] == "dlib"
    assert doc["emotion_labels"] is None and doc["feats_from"] == "expression" and doc["token_dim"] == 4
    assert doc["smoothed"] is False and doc["smooth_hz"] is None and doc["model"] == {"model": "fake",
                                                                                      "backend": "fake"}
    assert doc["npz"] == Path(row["npz"]).name and doc["parquet"] == Path(row["parquet"]).name
    assert doc["no_face_frames"] == [10, 12]
    tracks = track_video(item.source, Bright(), options=TrackerOptions(stride=1, landmarks=False))
    assert [t["track_id"] for t in doc["trajectories"]] == [t.track_id for t in tracks] == sorted(set(a["track_id"]))
    assert [(t["start_frame"], t["end_frame"], t["frames"]) for t in doc["trajectories"]] == [(0, 8, 5), (14, 22, 5)]
    assert [t["end_reason"] for t in doc["trajectories"]] == [t.end_reason for t in tracks]
    flat = [e for tr in doc["traj"] for e in tr]
    assert [len(tr) for tr in doc["traj"]] == [5, 5] and all(set(e) == {"frame_ind", "time", "box", "score"}
                                                             for e in flat)
    assert [e["frame_ind"] for e in flat] == a["frame_ind"].tolist()
    assert [e["time"] for e in flat] == [round(float(t), 4) for t in a["time"]]
    for e, b in zip(flat, a["box"], strict=True):  # one decimal, written as such (not 21.100000381469727)
        assert e["box"] == [round(float(v), 1) for v in b]
    assert max(len(repr(v)) for e in flat for v in e["box"]) <= 5  # at most 3 digits, a point and one decimal
    assert all(e["score"] == 0.875 for e in flat)
    raw = (out / row["json"]).read_text()
    assert raw.endswith("\n") and ", " not in raw and '": ' not in raw  # compact separators


def test_json_floats_and_smoothing(videos, tmp_path):
    from faceexpr_cli.extract.trajectories import smooth_tokens

    item = _item(videos["two"])
    row = V.extract_video(item, tmp_path, FakeModel(), _opts(smooth=True, smooth_hz=2.0, json_floats=True),
                          Bright(), "S")
    a = records.read_features(tmp_path / row["npz"])
    doc = json.loads((tmp_path / row["json"]).read_text())
    assert doc["smoothed"] is True and doc["smooth_hz"] == 2.0
    for k in (0, 1):
        sel = a["traj"] == k
        np.testing.assert_allclose(a["tokens"][sel], smooth_tokens(a["tokens_raw"][sel], a["time"][sel], 2.0),
                                   atol=1e-6)
    assert not np.allclose(a["tokens"], a["tokens_raw"])
    feats = [e["feats"] for tr in doc["traj"] for e in tr]
    assert feats == [[round(float(v), 6) for v in row] for row in a["tokens"]]  # six decimals, written as such
    assert "tokens_raw" in records.read_tokens(tmp_path / row["parquet"])


def test_a_face_that_appears_late_is_found_by_the_second_decode(videos, tmp_path):
    model = FakeModel()
    row = V.extract_video(_item(videos["late"]), tmp_path, model, _opts(batch_size=5), Bright(), "S")
    assert row["status"] == "ok", row["error"]
    a = records.read_features(tmp_path / row["npz"])
    assert a["frame_ind"].tolist() == list(range(6, 18)) and [len(c) for c in model.calls] == [5, 5, 2]
    assert row["no_face_frames"] == 6 and a["no_face_frames"].tolist() == list(range(6))


def test_no_face_row_and_document(videos, tmp_path):
    item = _item(videos["grey"])
    model = FakeModel()
    row = V.extract_video(item, tmp_path, model, _opts(stride=3), Bright(), "S")
    stem = records.output_stem(item)
    assert row["status"] == "no_face" and row["error"] == "no face found on the sampled frames"
    assert row["json"] == f"{stem}.json" and row["npz"] is None and row["parquet"] is None
    assert (row["tokens"], row["trajectories"], row["face_frames"]) == (0, 0, 0)
    assert row["sampled_frames"] == row["no_face_frames"] == 8 and row["frames"] == N
    assert row["token_dim"] is None and row["backend"] == "fake" and row["settings"] == "S"
    assert isinstance(row["seconds"], float) and row["seconds"] > 0 and row["fps"] == 25.0
    doc = json.loads((tmp_path / row["json"]).read_text())
    assert doc["traj"] == [] and doc["trajectories"] == [] and doc["no_face_frames"] == list(range(0, N, 3))
    assert doc["npz"] is None and doc["parquet"] is None and doc["token_dim"] is None
    assert not (tmp_path / f"{stem}.npz").exists() and not (tmp_path / f"{stem}.parquet").exists()
    assert model.calls == []


def test_skipped_and_manifest_error_items_are_rows_without_work(tmp_path):
    for kw, status, why in ((dict(skip="not a video file (.txt)"), "skipped", "not a video file (.txt)"),
                            (dict(error="missing.mp4, which does not exist"), "error",
                             "missing.mp4, which does not exist")):
        item = VideoItem(str(tmp_path / "x.txt"), label="sad", **kw)
        row = V.extract_video(item, tmp_path, FakeModel(), _opts(), Bright(), "S")
        assert (row["status"], row["error"], row["backend"], row["settings"]) == (status, why, "fake", "S")
        assert row["seconds"] is None and row["fps"] is None and row["label_id"] == 5
    row = V.extract_video(VideoItem(str(tmp_path / "y.txt"), skip="s"), tmp_path, None, _opts(features="landmarks",
                          has_model=False), Bright(), "S")
    assert row["backend"] is None and row["settings"] == "S"
    assert list(tmp_path.iterdir()) == []


def _check_error_row(row, item, settings="S"):
    assert row["status"] == "error" and row["source"] == item.source
    assert isinstance(row["seconds"], float) and row["seconds"] >= 0
    assert row["backend"] == "fake" and row["settings"] == settings
    assert row["json"] is None and row["npz"] is None and row["fps"] is None and row["tokens"] is None


def test_a_damaged_file_is_an_error_row_with_its_reason(tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    item = _item(bad)
    row = V.extract_video(item, tmp_path / "o", FakeModel(), _opts(), Bright(), "S2")
    _check_error_row(row, item, "S2")
    assert "corrupt.mp4" in row["error"] and "\n" not in row["error"]
    assert not (tmp_path / "o").exists()


def test_an_unexpected_exception_is_an_error_row_naming_it(videos, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise ValueError("boom")

    monkeypatch.setattr(V, "plan", boom)
    item = _item(videos["two"])
    row = V.extract_video(item, tmp_path, FakeModel(), _opts(), Bright(), "S")
    _check_error_row(row, item)
    assert row["error"] == f"{item.source}: ValueError: boom"


def test_a_second_decode_that_ends_early_is_an_error_row(videos, tmp_path, monkeypatch):
    import faceexpr_cli.media as media

    real = media.iter_frames

    def short(*a, **k):  # the tracking decode sees every frame; the second one loses the last three
        for frame in real(*a, **k):
            if k.get("end") is not None and frame.time > 20.5 / FPS:
                return
            yield frame

    monkeypatch.setattr(media, "iter_frames", short)
    item = _item(videos["two"])
    row = V.extract_video(item, tmp_path, FakeModel(), _opts(), Bright(), "S")
    _check_error_row(row, item)
    assert "the second decode ended early (3 sampled face frames missing)" in row["error"]
    assert "is the file being written, or damaged near its end?" in row["error"]


def test_landmarks_and_emotion_without_a_model(videos, tmp_path):
    emotion = FakeEmotion()
    item = _item(videos["two"])
    opts = _opts(features="emotion,landmarks", has_model=False, batch_size=3, stride=2)
    row = V.extract_video(item, tmp_path, None, opts, Bright(), "S", None, emotion)
    assert row["status"] == "ok", row["error"]
    assert row["token_dim"] is None and row["backend"] is None and row["tokens"] == 10
    a = records.read_features(tmp_path / row["npz"])
    assert "tokens" not in a and a["landmarks"].shape == (10, 68, 2) and a["emotion"].shape == (10, 7)
    # the fake's 68 points run along the box's diagonal: in crop units, from the box's corner to the other
    k = np.linspace(0.0, 1.0, 68)[None, :, None]
    pts = a["box"][:, None, :2] + k * (a["box"][:, None, 2:] - a["box"][:, None, :2])
    side = (a["crop"][:, 2] - a["crop"][:, 0])[:, None, None]
    np.testing.assert_allclose(a["landmarks"], (pts - a["crop"][:, None, :2]) / side, atol=1e-5)
    # one-hot at the face's green level: 100 + 5 * frame
    want = a["frame_ind"] % 7
    assert a["emotion"].argmax(1).tolist() == want.tolist() and np.all(a["emotion"].sum(1) == 1)
    assert emotion.calls == [3, 3, 3, 1]
    doc = json.loads((tmp_path / row["json"]).read_text())
    assert doc["features"] == ["emotion", "landmarks"] and doc["emotion_labels"] == list(EMOTION_LABELS)
    assert doc["feats_from"] is None and doc["model"] is None and doc["token_dim"] is None
    assert [e["emotion_top"] for tr in doc["traj"] for e in tr] == [EMOTION_LABELS[i] for i in want]
    assert all("landmarks" not in e and "feats" not in e for tr in doc["traj"] for e in tr)
    back = records.read_tokens(tmp_path / row["parquet"])
    np.testing.assert_array_equal(back["landmarks"], a["landmarks"])
    np.testing.assert_array_equal(back["emotion"], a["emotion"])


def test_document_with_json_floats_and_an_unfilled_emotion_row():
    from faceexpr_cli.extract.trajectories import Plan, Trajectory

    emo = np.array([[0, 0, 0.7, 0.3, 0, 0, 0], [np.nan] * 7], np.float32)
    lm = np.arange(2 * 68 * 2, dtype=np.float32).reshape(2, 68, 2) / 1000
    tr = Trajectory(5, "gap", np.array([4, 6]), np.array([0.123456, 0.2]), np.array([[1.04, 2, 3, 4]] * 2,
                    np.float32), np.zeros((2, 4), np.float32), np.array([0.91234, 0.5], np.float32),
                    feats={"emotion": emo, "landmarks": lm})
    p = Plan([tr], np.array([0, 2, 4, 6]), np.array([0, 2]))
    info = type("Info", (), {"fps": 30.0, "width": 8, "height": 6})()
    opts = _opts(features="emotion,landmarks", has_model=False, json_floats=True)
    doc = V._document(VideoItem("/v.mp4"), info, p, None, opts, None)
    e0, e1 = doc["traj"][0]
    assert e0["emotion_top"] == "fear" and e1["emotion_top"] is None  # NaN (never filled) has no top class
    assert e0["time"] == 0.1235 and e0["box"] == [1.0, 2.0, 3.0, 4.0] and e0["score"] == 0.912
    assert e0["emotion"] == pytest.approx([0, 0, 0.7, 0.3, 0, 0, 0]) and np.isnan(e1["emotion"]).all()
    assert e1["landmarks"] == [[round(float(x), 6) for x in pt] for pt in lm[1]]
    assert "feats" not in e0  # no tokens: no feats even with json_floats
    assert doc["trajectories"] == [{"track_id": 5, "start_frame": 4, "end_frame": 6, "frames": 2,
                                    "end_reason": "gap"}]
    assert doc["no_face_frames"] == [0, 2] and doc["stride"] == 1 and doc["fps"] == 30.0


class Recording(Bright):
    """Bright, remembering the size of every image it was asked to search."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.shapes: list[tuple[int, ...]] = []

    def _detect(self, image, *, keypoints):
        self.shapes.append(image.shape)
        return super()._detect(image, keypoints=keypoints)


def test_tracking_options_reach_the_tracker(videos, tmp_path):
    every = Recording()
    V.extract_video(_item(videos["two"]), tmp_path, FakeModel(), _opts(), every, "S")
    assert every.shapes == [(64, 96, 3)] * N  # detect_every 1: every frame, at full size (under analysis_side)
    small = Recording()
    row = V.extract_video(_item(videos["two"]), tmp_path, FakeModel(),
                          _opts(detect_every=6, analysis_side=48, detect_size=24), small, "S")
    assert row["status"] == "ok" and row["frames"] == N
    # decoded at 48 px, whole frames searched at 24 px (and windows around the tracks), on some frames only
    whole = [sh for sh in small.shapes if sh == (16, 24, 3)]
    assert 0 < len(whole) < N and not {(64, 96, 3), (32, 48, 3)} & set(small.shapes)


def test_options_that_change_the_row(videos, tmp_path):
    item = _item(videos["two"])
    big = V.extract_video(item, tmp_path, FakeModel(), _opts(max_pixels=96 * 64 - 1), Bright(), "S")
    _check_error_row(big, item)
    assert big["error"] == f"{item.source}: resolution 96x64 is above the limit (6143 pixels) (downscale it first)"
    assert V.extract_video(item, tmp_path, FakeModel(), _opts(max_pixels=96 * 64), Bright(), "S")["status"] == "ok"
    small = V.extract_video(item, tmp_path, FakeModel(), _opts(min_face=40.0), Bright(), "S")
    assert small["status"] == "no_face" and small["no_face_frames"] == N  # a 32 px face is under 40
    for margin in (0.0, 0.5):
        row = V.extract_video(item, tmp_path / str(margin), FakeModel(), _opts(margin=margin), Bright(), "S")
        a = records.read_features(tmp_path / str(margin) / row["npz"])
        for k in (0, 1):  # one square side per trajectory: the median face side x (1 + 2 margin)
            sel = a["traj"] == k
            box, crop = a["box"][sel], a["crop"][sel]
            side = np.median(np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])) * (1 + 2 * margin)
            np.testing.assert_allclose(crop[:, 2] - crop[:, 0], side, rtol=1e-4)
            np.testing.assert_allclose(crop[:, 3] - crop[:, 1], side, rtol=1e-4)
        assert a["traj"].dtype == np.int32 and a["track_id"].dtype == np.int32 and a["crop"].dtype == np.float32
        assert a["frame_ind"].dtype == np.int64 and a["time"].dtype == np.float64


def _tr(tid, frames, side=40.0):
    from faceexpr_cli.face import Track

    frames = np.asarray(frames, np.int64)
    n = len(frames)
    boxes = np.tile(np.array([0, 0, side, side], np.float64), (n, 1))
    return Track(tid, frames, frames / 10.0, boxes, boxes.copy(), np.linspace(0.5, 1, n), np.ones(n, bool),
                 np.full((n, 5, 2), np.nan, np.float32), end_reason="gap")


def test_plan_order_sizes_and_types():
    from faceexpr_cli.extract.trajectories import plan
    from faceexpr_cli.face import Tracks

    tracks = Tracks([_tr(4, range(3, 9)), _tr(2, range(3, 6), side=30.0), _tr(1, range(0, 2))], range(10),
                    np.arange(10) / 10.0, 10.0)
    p = plan(tracks, stride=1, margin=0.0, min_face=30.0)  # a face exactly min_face wide stays
    assert [t.track_id for t in p.trajectories] == [1, 2, 4]  # by first frame, then by track id
    assert p.sampled.tolist() == list(range(10)) and p.no_face.tolist() == [2, 9]
    t = p.trajectories[1]
    assert t.frames.dtype == np.int64 and t.times.dtype == np.float64 and t.boxes.dtype == np.float32
    assert t.crops.dtype == np.float32 and t.scores.dtype == np.float32 and t.end_reason == "gap"
    np.testing.assert_allclose(t.scores, np.linspace(0.5, 1, 3))
    assert [x.track_id for x in plan(tracks, 1, 0.0, min_face=30.5).trajectories] == [1, 4]
    assert plan(tracks, 1, 0.0).no_face.tolist() == [2, 9]  # min_face 0: nothing dropped
    p3 = plan(tracks, stride=3, margin=0.0)
    assert [x.frames.tolist() for x in p3.trajectories] == [[0], [3], [3, 6]]
    assert p3.sampled.tolist() == [0, 3, 6, 9] and p3.no_face.tolist() == [9]
    empty = plan(Tracks([], range(4), np.arange(4) / 10.0, 10.0), 2, 0.3)
    assert empty.trajectories == [] and empty.no_face.tolist() == [0, 2] and empty.no_face.dtype == np.int64


class Meshy(Bright):
    """Bright, with a flat mesh, a head pose at the box's centre and fixed apertures (MediaPipe's extras)."""

    def _landmarks(self, image, faces):
        from types import SimpleNamespace

        for f in super()._landmarks(image, faces):
            c = (f.bbox[:2] + f.bbox[2:]) / 2
            f.extra.update(mesh468=np.zeros((468, 3)), apertures={"right_eye": 0.1, "left_eye": 0.2, "mouth": 0.3},
                           head_pose=SimpleNamespace(pitch=1.0, yaw=2.0, roll=3.0, rotation=np.eye(3), scale=8.0,
                                                     translation=np.array([c[0], c[1], 0.0])))
        return faces


def test_mesh_rows_from_the_backends_extras(videos, tmp_path):
    opts = _opts(features="mesh", has_model=False, face_backend=None, stride=4)
    assert opts.face_backend == "mediapipe"
    row = V.extract_video(_item(videos["two"]), tmp_path, None, opts, Meshy(), "S")
    a = records.read_features(tmp_path / row["npz"])
    n = row["tokens"]
    assert n == len([f for f in range(0, N, 4) if f in FACE_FRAMES]) and "landmarks" not in a
    assert a["mesh"].shape == (n, 468, 3) and a["head_pose"].shape == (n, 6) and a["apertures"].shape == (n, 3)
    np.testing.assert_allclose(a["apertures"], np.tile([0.1, 0.2, 0.3], (n, 1)), atol=1e-7)
    side = a["crop"][:, 2] - a["crop"][:, 0]
    centre = (a["box"][:, :2] + a["box"][:, 2:]) / 2
    np.testing.assert_allclose(a["head_pose"][:, :3], np.tile([1, 2, 3], (n, 1)))
    np.testing.assert_allclose(a["head_pose"][:, 3:5], (centre - a["crop"][:, :2]) / side[:, None], atol=1e-5)
    np.testing.assert_allclose(a["head_pose"][:, 5], 8.0 / side, rtol=1e-5)
    # the flat mesh with the pose undone: minus the (flipped) translation, over the scale
    want = np.stack([-centre[:, 0], centre[:, 1], np.zeros(n)], 1)[:, None, :] / 8.0
    np.testing.assert_allclose(a["mesh"], np.broadcast_to(want, (n, 468, 3)), atol=1e-4)
    doc = json.loads((tmp_path / row["json"]).read_text())
    assert doc["features"] == ["mesh"] and doc["face_backend"] == "mediapipe" and doc["emotion_labels"] is None
