"""The tracker on the generated talking-head videos, against their ground-truth face boxes."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.face import get_backend, track_faces, track_video
from faceexpr_cli.media import iter_frames


@pytest.fixture(scope="module")
def backend():
    return get_backend("dlib")


def _centres(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def test_one_face_one_track_follows_the_truth(sample_video, backend):
    tracks = track_video(sample_video.path, backend)
    assert len(tracks) == 1
    t = tracks[0]
    assert len(t) == sample_video.n_frames and t.end_reason == "end"
    assert t.detected.sum() == pytest.approx(sample_video.n_frames / 10, abs=1)  # default stride 10
    truth = sample_video.actors[0].face_box
    size = float(np.sqrt((truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1])).mean())
    err = _centres(t.boxes) - _centres(truth[t.frames])
    err -= err.mean(0)  # detector boxes sit at a fixed offset from the portrait's box; motion must match
    assert np.abs(err).max() / size < 0.08
    st = t.stats()
    assert st.jitter < 0.005 and st.frontal_fraction == 1.0
    assert tracks.single_face() and tracks.single_face(1.0, 2.0)
    assert tracks.single_face_spans() == [(0.0, pytest.approx(sample_video.duration))]


def test_two_faces_two_tracks(two_face_video, backend):
    tracks = track_faces(iter_frames(two_face_video.path), backend, fps=two_face_video.fps)
    assert len(tracks) == 2
    assert not tracks.single_face() and (tracks.counts() == 2).all()
    for t in tracks:
        # each track stays with one actor: nearest ground-truth box on every frame is the same actor
        dists = [np.linalg.norm(_centres(t.boxes) - _centres(a.face_box[t.frames]), axis=1)
                 for a in two_face_video.actors]
        owner = np.argmin(np.stack(dists), axis=0)
        assert (owner == owner[0]).all()


def test_shot_cut_ends_tracks(sample_video, two_face_video, backend):
    """Frames of one video, then of another: the cut ends the first shot's track and detection restarts."""
    import cv2

    a = [f.image for f in iter_frames(sample_video.path, max_frames=30)]
    b = [cv2.resize(f.image, (320, 256)) for f in iter_frames(two_face_video.path, max_frames=30)]
    b = [np.ascontiguousarray(img[:, ::-1] // 2 + 60) for img in b]  # another shot: mirrored, other exposure
    tracks = track_faces(a + b, backend, fps=25.0, stride=10)
    first = [t for t in tracks if t.frames[0] < 30]
    assert len(first) == 1 and first[0].end_reason == "cut" and first[0].frames[-1] == 29
    second = [t for t in tracks if t.frames[0] >= 30]
    assert second and all(t.frames[0] == 30 for t in second)  # detection ran on the first frame of the shot


def test_no_cut_inside_one_shot(sample_video, backend):
    tracks = track_faces(iter_frames(sample_video.path), backend, fps=25.0, stride=10)
    assert [t.end_reason for t in tracks] == ["end"]


def test_stride_one_scans_every_frame_in_full(sample_video, backend):
    """The seed's behaviour: with stride 1 every frame gets a full-frame detection (a new face is seen at once)."""
    from faceexpr_cli.face import FaceTracker

    tracker = FaceTracker(backend, fps=25.0, stride=1, landmarks=False)
    calls = []
    full = tracker._detect_full
    tracker._detect_full = lambda image, keypoints: calls.append(1) or full(image, keypoints)
    for f in iter_frames(sample_video.path, max_frames=12):
        tracker.update(f)
    assert len(calls) == 12 and tracker.detections == 12
