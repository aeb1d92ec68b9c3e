"""crop/process.py without video: clip planning at its boundaries, geometry per mode, names, rows, analysis frames.

Tracks are built by hand (``_track``) so every box, time and frame index is known; expected values are computed
here from those inputs, never read back from what the code wrote.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from faceexpr_cli.crop import process as pr
from faceexpr_cli.crop.geometry import follow_crops, inside_frame, matrix_crop_box, union_crops
from faceexpr_cli.crop.inputs import Item
from faceexpr_cli.crop.options import CropOptions
from faceexpr_cli.face.track import Track, Tracks
from faceexpr_cli.media.timeline import FrameTimes


def _track(n, *, track_id=0, first=0, fps=25.0, box=(100, 100, 140, 140), step=0.0, detected=None, kps=None,
           scores=None):
    frames = np.arange(first, first + n, dtype=np.int64)
    boxes = np.array([[box[0] + step * i, box[1], box[2] + step * i, box[3]] for i in range(n)], np.float32)
    return Track(track_id=track_id, frames=frames, times=frames / fps, boxes=boxes, raw_boxes=boxes + 1,
                 scores=np.full(n, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32),
                 detected=np.ones(n, bool) if detected is None else np.asarray(detected, bool),
                 kps5=np.full((n, 5, 2), np.nan, np.float32) if kps is None else kps, frame_period=1 / fps)


def _tracks(*tracks, n=None, fps=25.0):
    n = n or max(int(t.frames[-1]) + 1 for t in tracks)
    return Tracks(list(tracks), np.arange(n), np.arange(n) / fps, fps)


def _opts(**kw):
    kw.setdefault("min_face", 0.0)
    return CropOptions(backend="dlib", **kw)


# --- runs and pieces ----------------------------------------------------------------------------------------------
def test_runs_at_the_ends_and_of_nothing():
    assert pr._runs(np.ones(4, bool)) == [(0, 4)]
    assert pr._runs(np.zeros(4, bool)) == []
    assert pr._runs(np.zeros(0, bool)) == []
    assert pr._runs(np.array([1, 0, 0, 1], bool)) == [(0, 1), (3, 4)]
    assert pr._runs(np.array([0, 1, 1, 0], bool)) == [(1, 3)]


@pytest.mark.parametrize(("n", "max_frames"), [(10, 10), (11, 10), (20, 10), (21, 10), (7, 2), (250, 100), (1, 1)])
def test_pieces_are_as_few_and_as_equal_as_the_limit_allows(n, max_frames):
    pieces = pr._pieces(n, max_frames)
    want_k = -(-n // max_frames)  # ceil
    assert len(pieces) == want_k
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(a < b for a, b in pieces) and all(pieces[i][1] == pieces[i + 1][0] for i in range(len(pieces) - 1))
    lengths = [b - a for a, b in pieces]
    assert max(lengths) <= max_frames and max(lengths) - min(lengths) <= 1


def test_pieces_without_a_limit_or_within_it_are_the_whole():
    assert pr._pieces(10, None) == [(0, 10)] and pr._pieces(10, 0) == [(0, 10)] and pr._pieces(10, 10) == [(0, 10)]
    assert pr._pieces(11, 10) == [(0, 6), (6, 11)]  # linspace(0, 11, 3) = 0, 5.5, 11; 5.5 rounds to even 6
    assert pr._pieces(7, 2) == [(0, 2), (2, 4), (4, 5), (5, 7)]  # 0, 1.75, 3.5, 5.25, 7 rounded


# --- plan_clips boundaries ------------------------------------------------------------------------------------------
def test_a_track_exactly_min_duration_long_is_kept_one_frame_less_is_not():
    plans, why = pr.plan_clips(_tracks(_track(25)), 25.0, 640, 360, _opts(min_duration=1.0))
    assert len(plans) == 1 and why == []
    plans, why = pr.plan_clips(_tracks(_track(24)), 25.0, 640, 360, _opts(min_duration=1.0))
    assert plans == [] and why == ["track 0: 0.96 s < --min-duration 1"]
    # 3 frames at 10 fps are 0.3 s; 0.1 * 3 is 0.30000000000000004: the micro-second slack keeps the clip
    plans, _ = pr.plan_clips(_tracks(_track(3, fps=10)), 10.0, 640, 360, _opts(min_duration=0.1 * 3))
    assert len(plans) == 1
    plans, _ = pr.plan_clips(_tracks(_track(3, fps=10)), 10.0, 640, 360, _opts(min_duration=0.30001))
    assert plans == []


def test_a_face_exactly_min_face_is_kept_a_smaller_one_is_not():
    t = _track(30, box=(0, 0, 40, 90))  # sqrt(40 * 90) = 60 px
    plans, why = pr.plan_clips(_tracks(t), 25.0, 640, 360, _opts(min_duration=0.5, min_face=60.0))
    assert len(plans) == 1 and why == []
    plans, why = pr.plan_clips(_tracks(t), 25.0, 640, 360, _opts(min_duration=0.5, min_face=60.5))
    assert plans == [] and why == ["track 0: face 60 px < --min-face 60.5"]


def test_max_duration_splits_at_round_of_seconds_times_fps():
    # max 1.02 s at 25 fps is round(25.5) = 26 frames (banker's rounding of .5: 26)
    plans, _ = pr.plan_clips(_tracks(_track(26)), 25.0, 640, 360, _opts(min_duration=0.1, max_duration=1.02))
    assert [len(p.track) for p in plans] == [26] and plans[0].track.end_reason == "end"
    plans, _ = pr.plan_clips(_tracks(_track(27)), 25.0, 640, 360, _opts(min_duration=0.1, max_duration=1.02))
    assert [len(p.track) for p in plans] == [14, 13]  # linspace(0, 27, 3) = 0, 13.5, 27: 13.5 -> 14
    assert [p.track.end_reason for p in plans] == ["split", "split"] and [p.segment for p in plans] == [0, 1]
    assert [(p.first, p.last) for p in plans] == [(0, 13), (14, 26)]


def test_equal_pieces_are_numbered_and_too_short_ones_all_named():
    plans, why = pr.plan_clips(_tracks(_track(60, box=(0, 0, 50, 50))), 25.0, 640, 360,
                               _opts(min_duration=0.5, max_duration=1.0))
    assert [len(p.track) for p in plans] == [20, 20, 20] and [p.segment for p in plans] == [0, 1, 2]
    plans, why = pr.plan_clips(_tracks(_track(60)), 25.0, 640, 360, _opts(min_duration=0.9, max_duration=1.0))
    assert plans == [] and why == ["track 0: 0.80 s < --min-duration 0.9"] * 3


def test_a_too_short_span_does_not_take_a_segment_number():
    alone = _track(70, track_id=1)
    other = _track(10, track_id=2, first=10, box=(300, 100, 340, 140))  # spans of track 1: 0..9 and 20..69
    plans, why = pr.plan_clips(_tracks(alone, other), 25.0, 640, 360, _opts(single_face=True, min_duration=1.0))
    assert [(p.track.track_id, p.segment, p.first, p.last) for p in plans] == [(1, 0, 20, 69)]
    assert why[0] == "track 1: 0.40 s < --min-duration 1"


def test_single_face_spans_each_become_segments_from_their_own_frames():
    alone = _track(70, track_id=4)
    other = _track(10, track_id=5, first=30, box=(300, 100, 340, 140))  # frames 30..39 show two faces
    plans, why = pr.plan_clips(_tracks(alone, other), 25.0, 640, 360,
                               _opts(single_face=True, min_duration=1.0))
    assert [(p.track.track_id, p.segment, p.first, p.last) for p in plans] == [(4, 0, 0, 29), (4, 1, 40, 69)]
    assert [p.track.end_reason for p in plans] == ["end", "end"]  # a span is not a split
    assert why == ["track 5: never the only face on screen (--single-face)"]
    plans, _ = pr.plan_clips(_tracks(alone, other), 25.0, 640, 360, _opts(min_duration=0.2))
    assert [(p.track.track_id, len(p.track)) for p in plans] == [(4, 70), (5, 10)]  # without the rule: whole


# --- geometry per mode ---------------------------------------------------------------------------------------------
def test_follow_and_union_squares_are_shifted_inside_the_frame():
    t = _track(25, box=(0, 100, 40, 140), step=2.0)  # starts at the left edge, drifts right
    [p] = pr.plan_clips(_tracks(t), 25.0, 640, 360, _opts(mode="follow", margin=0.5))[0]
    np.testing.assert_allclose(p.crops, inside_frame(follow_crops(t.boxes, 0.5), 640, 360))
    assert p.crops[0].tolist() == [0, 80, 80, 160]  # centre (20, 120), side 80, moved right by 20 and p.mats is None and p.status == "ok"
    [p] = pr.plan_clips(_tracks(t), 25.0, 640, 360, _opts(mode="union", margin=0.5))[0]
    np.testing.assert_allclose(p.crops, union_crops(t.boxes, 0.5, frame=(640, 360)))
    assert (p.crops == p.crops[0]).all() and p.crops[0][0] == 0


def test_align_without_key_points_falls_back_to_the_union_square():
    t = _track(25)
    [p] = pr.plan_clips(_tracks(t), 25.0, 640, 360, _opts(mode="align", margin=0.3))[0]
    assert p.mats is None
    np.testing.assert_allclose(p.crops, union_crops(t.boxes, 0.3, frame=(640, 360)))


def _kps(n, cx, cy=100.0, iod=40.0):
    base = np.array([[-0.5, -0.4], [0.5, -0.4], [0.0, 0.1], [-0.4, 0.6], [0.4, 0.6]]) * iod + [cx, cy]
    return np.repeat(base[None], n, 0).astype(np.float32)


def test_align_squares_come_from_the_matrices_and_are_not_shifted():
    t = _track(25, kps=_kps(25, cx=10.0))  # a face at the left edge: its rotated square reaches outside
    [p] = pr.plan_clips(_tracks(t), 25.0, 640, 360, _opts(mode="align", size=64))[0]
    assert p.mats.shape == (25, 2, 3)
    np.testing.assert_allclose(p.crops, np.stack([matrix_crop_box(m, 64) for m in p.mats]))
    assert p.crops[0][0] < 0 and p.status == "ok"  # the box the crop covers, outside part included
    [p] = pr.plan_clips(_tracks(t), 25.0, 640, 360, _opts(mode="align", size=64, out_of_frame="drop"))[0]
    assert (p.status, p.error) == ("dropped", "the crop leaves the frame (--out-of-frame drop)")
    t = _track(25, kps=_kps(25, cx=300.0, cy=180.0))
    [p] = pr.plan_clips(_tracks(t), 25.0, 640, 360, _opts(mode="align", size=64, out_of_frame="drop"))[0]
    assert p.status == "ok" and p.error is None


# --- names ----------------------------------------------------------------------------------------------------------
def test_clip_folder_and_names():
    item = Item("/videos/my talk (1).final.mp4")
    assert pr.clip_dir(item) == f"clips/my_talk__1__final-{item.source_id[:8]}"
    long = Item("/v/" + "a" * 50 + ".mp4")
    assert pr.clip_dir(long) == f"clips/{'a' * 40}-{long.source_id[:8]}"
    assert pr.clip_dir(Item("/v/x-y_z9.mp4")).startswith("clips/x-y_z9-")
    plan = pr.ClipPlan(_track(3, track_id=7), 2, np.zeros((3, 4)), None)
    assert pr.clip_name(item, plan) == f"{pr.clip_dir(item)}/t007_02.mp4"
    plan = pr.ClipPlan(_track(3, track_id=1234), 12, np.zeros((3, 4)), None)
    assert pr.clip_name(item, plan).endswith("/t1234_12.mp4")
    assert (plan.first, plan.last) == (0, 2)


def test_embedding_frames_are_three_spread_detection_frames():
    det = [True, False, True, False, True, False, True, False, True, False]
    plan = pr.ClipPlan(_track(10, first=100, detected=det), 0, np.zeros((10, 4)), None)
    assert pr._embedding_frames(plan) == {100, 104, 108}  # detections 100..108: first, middle, last
    plan = pr.ClipPlan(_track(4, first=10), 0, np.zeros((4, 4)), None)
    assert pr._embedding_frames(plan) == {10, 12, 13}  # linspace(0, 3, 3) = 0, 1.5, 3 -> 0, 2, 3
    assert pr._embedding_frames(plan, k=2) == {10, 13}
    plan = pr.ClipPlan(_track(5, first=20, detected=[False, True, False, True, False]), 0, np.zeros((5, 4)), None)
    assert pr._embedding_frames(plan) == {21, 23}  # only two detections
    plan = pr.ClipPlan(_track(5, first=20, detected=[False] * 5), 0, np.zeros((5, 4)), None)
    assert pr._embedding_frames(plan) == {20, 22, 24}  # no detection: any frames of the track


def test_span_ends_with_the_last_frames_own_duration():
    table = FrameTimes(times=np.array([0.0, 0.04, 0.1, 0.2]), durations=np.array([0.04, 0.06, 0.1, 0.3]))
    t = _track(3)
    t.times = np.array([0.0, 0.04, 0.1])
    plan = pr.ClipPlan(t, 0, np.zeros((3, 4)), None)
    assert pr._span(plan, table) == (0.0, pytest.approx(0.2))  # 0.1 + its 0.1 s
    t.times = np.array([0.04, 0.1, 0.15])  # the last time is not a frame of the table: the median duration
    assert pr._span(plan, table) == (0.04, pytest.approx(0.15 + 0.08))


# --- rows -----------------------------------------------------------------------------------------------------------
INFO = SimpleNamespace(fps=25.0, width=640, height=360, has_audio=True)


def test_row_of_a_plan_without_a_written_clip():
    item = Item("/v/a.mp4")
    t = _track(5, track_id=2, first=10, box=(10.123, 20.456, 50.789, 60.001))
    crops = np.array([[1.2345, 2.3467, 3.4512, 4.5678]] * 5, np.float32)
    plan = pr.ClipPlan(t, 1, crops, None, status="dropped", error="why")
    opts = _opts(size=128, mode="follow")
    row = pr._row(item, INFO, plan, opts, seconds=1.5)
    assert (row["source"], row["source_id"], row["status"], row["error"]) == ("/v/a.mp4", item.source_id,
                                                                              "dropped", "why")
    assert row["clip"] is None and row["track_id"] == 2 and row["segment"] == 1
    assert row["start_time"] == pytest.approx(10 / 25) and row["end_time"] == pytest.approx(14 / 25 + 1 / 25)
    assert (row["start_frame"], row["end_frame"], row["n_frames"], row["fps"]) == (10, 14, 5, 25.0)
    assert row["has_audio"] is False and row["duration"] is None and row["bytes"] is None
    assert (row["src_width"], row["src_height"], row["size"], row["mode"]) == (640, 360, 128, "follow")
    np.testing.assert_allclose(row["crop_boxes"], [[1.23, 2.35, 3.45, 4.57]] * 5, atol=1e-6)  # to 2 decimals
    np.testing.assert_allclose(row["face_boxes"], [[10.12, 20.46, 50.79, 60.0]] * 5, atol=1e-9)
    side = np.sqrt((50.789 - 10.123) * (60.001 - 20.456))
    assert row["face_size"] == pytest.approx(side, rel=1e-5) and row["min_face_size"] == pytest.approx(side, 1e-5)
    assert row["mean_score"] == pytest.approx(0.9) and row["jitter"] == 0.0
    assert row["yaw_mean"] is None and row["frontal_fraction"] is None and row["embedding"] is None
    assert row["backend"] == "dlib" and row["seconds"] == 1.5


def test_row_of_a_written_clip_describes_the_file():
    item = Item("/v/a.mp4")
    t = _track(5, first=10)
    plan = pr.ClipPlan(t, 0, np.zeros((5, 4), np.float32), None,
                       embedding=np.array([0.6, 0.8]),
                       written=pr.Written(frames=6, duration=0.24, has_audio=True, audio_coverage=0.5,
                                          fps_mode="constant", fps=25.0, bytes=1234))
    row = pr._row(item, INFO, plan, _opts(), seconds=2.0)
    assert row["clip"] == pr.clip_name(item, plan) and row["status"] == "ok"
    assert (row["n_frames"], row["fps"], row["duration"], row["has_audio"]) == (6, 25.0, 0.24, True)
    assert row["end_time"] == pytest.approx(10 / 25 + 0.24)  # start plus the file's duration
    assert (row["audio_coverage"], row["fps_mode"], row["bytes"]) == (0.5, "constant", 1234)
    assert row["embedding"] == pytest.approx([0.6, 0.8])


# --- process_video / run_one without decoding ---------------------------------------------------------------------
def test_a_skipped_item_is_one_row_without_work(tmp_path):
    item = Item(str(tmp_path / "notes.txt"), "not a video file (.txt)")
    [row] = pr.process_video(item, tmp_path, _opts())
    assert (row["status"], row["error"], row["source_id"]) == ("skipped", "not a video file (.txt)", item.source_id)
    assert row["seconds"] is None


def test_run_one_replaces_the_sources_part_and_clips(tmp_path):
    import os

    from faceexpr_cli.crop import manifest as mf

    item = Item(str(tmp_path / "x.txt"), "not a video file (.txt)")
    stale = tmp_path / pr.clip_dir(item) / "t000_00.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    mf.write_part(tmp_path, item.source_id, [mf.new_row(item.source, item.source_id, "ok", clip="old")])
    rows = pr.run_one(item, tmp_path, _opts(), None)
    assert not stale.parent.exists()
    assert [r["status"] for r in rows] == ["skipped"] and rows[0]["worker_pid"] == os.getpid()
    back = mf.read_parts(tmp_path)
    assert [(r["status"], r["worker_pid"], r["clip"]) for r in back] == [("skipped", os.getpid(), None)]


class _Backend:
    embedding_dim = None


def _fake_probe(monkeypatch, info=INFO, exc=None):
    import sys

    probe = sys.modules["faceexpr_cli.media.probe"]  # the package's ``probe`` name is the function
    seen = {}

    def fake(path, max_pixels=None, hint=""):
        seen.update(path=path, max_pixels=max_pixels, hint=hint)
        if exc is not None:
            raise exc
        return info

    monkeypatch.setattr(probe, "probe_for_processing", fake)
    return seen


def test_a_video_without_faces_or_clips_says_which(tmp_path, monkeypatch):
    seen = _fake_probe(monkeypatch)
    item = Item("/v/a.mp4")
    monkeypatch.setattr(pr, "track_source", lambda *a: Tracks([], np.arange(5), np.arange(5) / 25, 25.0))
    [row] = pr.process_video(item, tmp_path, _opts(max_pixels=999), _Backend())
    assert seen == {"path": "/v/a.mp4", "max_pixels": 999, "hint": "raise --max-pixels or downscale it"}
    assert (row["status"], row["error"], row["fps"]) == ("no_face", "no face found", 25.0)
    assert (row["src_width"], row["src_height"], row["backend"]) == (640, 360, "dlib") and row["seconds"] >= 0
    shorts = [_track(3, track_id=i) for i in range(7)]
    monkeypatch.setattr(pr, "track_source", lambda *a: _tracks(*shorts))
    [row] = pr.process_video(item, tmp_path, _opts(), _Backend())
    assert row["status"] == "no_clip" and row["fps"] == 25.0 and row["src_width"] == 640
    assert row["error"] == "; ".join(f"track {i}: 0.12 s < --min-duration 1" for i in range(5))  # the first five


def test_a_failing_video_is_an_error_row_never_an_exception(tmp_path, monkeypatch):
    from faceexpr_cli.errors import MediaError

    item = Item("/v/a.mp4")
    _fake_probe(monkeypatch, exc=MediaError("/v/a.mp4", "is truncated", "re-encode it"))
    [row] = pr.process_video(item, tmp_path, _opts(), _Backend())
    assert row["status"] == "error" and row["error"] == MediaError("/v/a.mp4", "is truncated",
                                                                  "re-encode it").one_line()
    assert row["seconds"] is not None
    _fake_probe(monkeypatch, exc=ValueError("bad value"))
    [row] = pr.process_video(item, tmp_path, _opts(), _Backend())
    assert (row["status"], row["error"]) == ("error", "/v/a.mp4: ValueError: bad value")


# --- the first decode -----------------------------------------------------------------------------------------------
def _fake_frames(monkeypatch, w, h):
    import faceexpr_cli.media as media
    from faceexpr_cli.media.reader import Frame

    calls = []

    def fake(source, **kw):
        calls.append(kw)
        size = kw.get("size") or (w, h)
        for i in range(2):
            yield Frame(i, i / 25, np.zeros((size[1], size[0], 3), np.uint8))

    monkeypatch.setattr(media, "iter_frames", fake)
    return calls


@pytest.mark.parametrize(("w", "h", "side", "size", "decoder"), [
    (480, 270, 480, None, False),  # already small enough: as decoded
    (640, 360, 480, (480, 270), False),  # up to twice the side: decoded full, shrunk with OpenCV
    (960, 540, 480, (480, 270), False),  # exactly twice: still OpenCV
    (962, 542, 480, (480, 270), True),  # beyond twice: the decoder scales
    (1000, 300, 480, (480, 144), True),  # 300 * 0.48 = 144
    (999, 333, 480, (480, 160), True),  # 333 * 0.4805 = 160.0
    (2000, 2, 480, (480, 2), True),  # never below 2 pixels
])
def test_analysis_frames_size_and_factor_back(monkeypatch, w, h, side, size, decoder):
    calls = _fake_frames(monkeypatch, w, h)
    frames, back = pr._analysis_frames("/v.mp4", SimpleNamespace(width=w, height=h), side)
    images = [f.image.shape for f in frames]
    if size is None:
        assert back == (1.0, 1.0) and calls == [{}] and images == [(h, w, 3)] * 2
        return
    assert back == pytest.approx((w / size[0], h / size[1]))
    assert calls == [{"size": size}] if decoder else calls == [{}]
    assert images == [(size[1], size[0], 3)] * 2


@pytest.mark.parametrize("single_face", [False, True])
def test_track_source_options_and_boxes_back_in_source_pixels(monkeypatch, single_face):
    _fake_frames(monkeypatch, 960, 540)
    seen = {}

    def fake_track(frames, backend, fps=None, options=None):
        seen.update(n=len(list(frames)), fps=fps, options=options, backend=backend)
        return Tracks([_track(2, box=(10, 20, 30, 40))], [0, 1], [0, 0.04], 25.0)

    monkeypatch.setattr(pr, "track_faces", fake_track)
    backend = _Backend()
    opts = _opts(stride=3, detect_size=320, score_threshold=0.25, single_face=single_face, embed=not single_face,
                 analysis_side=480)
    tracks = pr.track_source(Item("/v.mp4"), SimpleNamespace(width=960, height=540, fps=30.0), opts, backend)
    o = seen["options"]
    assert seen["n"] == 2 and seen["fps"] == 30.0 and seen["backend"] is backend
    assert (o.stride, o.detect_size, o.score_threshold, o.landmarks) == (3, 320, 0.25, True)
    assert o.full_every == (1 if single_face else None) and o.embed == (False if single_face else "auto")
    np.testing.assert_allclose(tracks[0].boxes[0], [20, 40, 60, 80])  # 960 / 480 = 2 on both axes
    np.testing.assert_allclose(tracks[0].raw_boxes[0], [22, 42, 62, 82])


def test_track_source_at_full_size_keeps_boxes_and_passes_no_fps_for_zero(monkeypatch):
    _fake_frames(monkeypatch, 320, 240)
    seen = {}

    def fake_track(frames, backend, fps=None, options=None):
        seen["fps"] = fps
        return Tracks([_track(2, box=(10, 20, 30, 40))], [0, 1], [0, 0.04], 25.0)

    monkeypatch.setattr(pr, "track_faces", fake_track)
    tracks = pr.track_source(Item("/v.mp4"), SimpleNamespace(width=320, height=240, fps=0.0), _opts(), _Backend())
    assert seen["fps"] is None
    np.testing.assert_allclose(tracks[0].boxes[0], [10, 20, 30, 40])


def test_the_analysis_frames_stop_when_asked(monkeypatch):
    from faceexpr_cli.crop import stop

    class _Set:
        def is_set(self):
            return True

    _fake_frames(monkeypatch, 320, 240)
    monkeypatch.setattr(stop, "_event", _Set())
    monkeypatch.setattr(pr, "track_faces", lambda frames, *a, **k: list(frames))
    with pytest.raises(stop.Stopped):
        pr.track_source(Item("/v.mp4"), SimpleNamespace(width=320, height=240, fps=25.0), _opts(), _Backend())
