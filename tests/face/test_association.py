"""The tracker's association on synthetic box sequences: crossing faces, identities, gaps, cuts, drift."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.face import Face, SmoothParams
from faceexpr_cli.face.association import TrackSet
from faceexpr_cli.face.track import Tracks


def box(x, y=100.0, s=40.0):
    return np.array([x - s / 2, y - s / 2, x + s / 2, y + s / 2], dtype=np.float32)


def run(per_frame, fps=25.0, **kw):
    """per_frame: list over frames of (None | list[Face]); returns Tracks."""
    ts = TrackSet(frame_period=1 / fps, **kw)
    for i, dets in enumerate(per_frame):
        if isinstance(dets, tuple):  # ("cut", detections): a shot cut before this frame
            ts.cut()
            dets = dets[1]
        ts.step(i, i / fps, dets)
    n = len(per_frame)
    return Tracks(ts.finish(), np.arange(n), np.arange(n) / fps, fps)


def centres(t):
    return (t.raw_boxes[:, 0] + t.raw_boxes[:, 2]) / 2


def test_crossing_faces_keep_their_tracks():
    rng = np.random.default_rng(0)
    frames = []
    for i in range(60):
        a = Face(box(50 + 4 * i + rng.normal(0, 0.5)), 1.0)
        b = Face(box(286 - 4 * i + rng.normal(0, 0.5), y=104), 1.0)
        frames.append([a, b] if i % 2 else [b, a])  # detector order must not matter
    tracks = run(frames)
    assert len(tracks) == 2
    a, b = sorted(tracks, key=lambda t: centres(t)[0])
    # each track moves monotonically in its own direction through the crossing at frame ~30
    assert (np.diff(centres(a)) > 0).all() and (np.diff(centres(b)) < 0).all()
    assert len(a) == len(b) == 60 and (tracks.counts() == 2).all()


def _bounce(identity: bool):
    """Two faces meet in the middle and turn back: motion alone predicts they pass each other."""
    ea, eb = np.eye(128, dtype=np.float32)[0], np.eye(128, dtype=np.float32)[1]
    frames = []
    for i in range(50):
        d = 5 * (i if i < 25 else 50 - i)
        fa = Face(box(50 + d), 1.0, embedding=ea if identity else None)
        fb = Face(box(300 - d), 1.0, embedding=eb if identity else None)
        frames.append([fb, fa])
    return run(frames)


def test_identity_embedding_prevents_a_swap_when_faces_turn_back():
    tracks = _bounce(identity=True)
    assert len(tracks) == 2
    for t in tracks:
        c = centres(t)
        assert abs(c[0] - c[-1]) < 10  # each face ends where it started
        assert t.embedding is not None
    # by motion alone the tracker swaps them at the turn - the case identity association exists for
    swapped = _bounce(identity=False)
    assert any(abs(centres(t)[0] - centres(t)[-1]) > 100 for t in swapped)


def test_short_gap_is_bridged_long_gap_ends_the_track():
    frames = [[Face(box(100 + i), 1.0)] if not 20 <= i < 23 else [] for i in range(50)]
    tracks = run(frames, max_missed=5)
    assert len(tracks) == 1 and len(tracks[0]) == 50
    t = tracks[0]
    assert not t.detected[20:23].any() and t.detected[:20].all()
    np.testing.assert_allclose(centres(t)[20:23], [120, 121, 122], atol=0.5)  # bridged by constant velocity

    frames = [[Face(box(100 + i), 1.0)] if not 20 <= i < 40 else [] for i in range(60)]
    tracks = run(frames, max_missed=3)
    assert [len(t) for t in tracks] == [20, 20]
    assert tracks[0].end_reason == "gap" and tracks[0].frames[-1] == 19  # guessed frames after the miss dropped
    assert tracks[1].frames[0] == 40
    assert not tracks.single_face() and tracks.single_face(0, 19 / 25) and tracks.single_face(40 / 25, None)
    assert tracks.single_face_spans(min_duration=0.5) == [(0.0, pytest.approx(0.8)), (1.6, pytest.approx(2.4))]


def test_misses_count_only_on_detection_frames():
    # stride 5: detections on frames 0, 5, 10...; the face is missing at detections 25 and 30
    frames = []
    for i in range(50):
        if i % 5:
            frames.append(None)
        else:
            frames.append([] if i in (25, 30) else [Face(box(100 + i), 1.0)])
    tracks = run(frames, max_missed=1)
    assert len(tracks) == 2
    assert tracks[0].end_reason == "gap" and tracks[0].frames[-1] == 20
    assert tracks[1].frames[0] == 35


def test_cut_ends_every_track():
    frames = [[Face(box(100), 1.0), Face(box(200), 1.0)] for _ in range(20)]
    frames += [("cut", [Face(box(100), 1.0)])] + [[Face(box(100), 1.0)] for _ in range(9)]
    tracks = run(frames)
    assert [t.end_reason for t in tracks] == ["cut", "cut", "end"]
    assert tracks[2].frames[0] == 20 and len(tracks[2]) == 10
    assert tracks.single_face(20 / 25, None) and not tracks.single_face(0, 0.5)


def test_drift_between_detections_is_spread_back():
    # true motion 2 px/frame; the "flow" prediction between detections lags (says the face stood still)
    ts = TrackSet(smooth=SmoothParams(enabled=False))
    for i in range(31):
        truth = box(100 + 2 * i)
        if i % 5 == 0:
            ts.step(i, i / 25, [Face(truth, 1.0)], {0: box(100 + 2 * (i - 5))} if i else None)
        else:
            ts.step(i, i / 25, None, {0: box(100 + 2 * (i - i % 5))})
    t = ts.finish()[0]
    np.testing.assert_allclose(centres(t), 100 + 2 * np.arange(31), atol=1e-3)


def test_smoothing_removes_jitter_without_lag():
    rng = np.random.default_rng(1)
    n = 100
    x = 100 + 3 * np.arange(n)  # steady motion
    noisy = [Face(box(xi + rng.normal(0, 2.0)), 1.0) for xi in x]
    tracks = run([[f] for f in noisy])
    t = tracks[0]
    c = (t.boxes[:, 0] + t.boxes[:, 2]) / 2
    err_raw = centres(t)[10:-10] - x[10:-10]
    err = c[10:-10] - x[10:-10]
    assert err.std() < 0.6 * err_raw.std()
    assert abs(err.mean()) < 0.5  # zero-phase: no lag behind the motion


def test_identity_floor_comes_from_the_backend():
    """dlib's unit embeddings of different people often have cosine ~0.7-0.87: a generic 0.5 floor never says no."""
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.face.tracker import FaceTracker

    assert FaceTracker("dlib").core.min_similarity == get_backend("dlib").same_person_similarity == 0.82
    assert FaceTracker("dlib", min_similarity=0.6).core.min_similarity == 0.6
