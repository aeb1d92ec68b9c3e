"""Crop geometry and clip planning, without video."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.crop import CropOptions
from faceexpr_cli.crop import geometry as g
from faceexpr_cli.crop.process import _pieces, _runs, plan_clips
from faceexpr_cli.errors import UsageError
from faceexpr_cli.face import Face
from faceexpr_cli.face.association import TrackSet
from faceexpr_cli.face.track import Tracks


def test_union_is_one_square_around_all_boxes():
    boxes = np.array([[10, 20, 50, 70], [30, 10, 60, 60]], np.float32)
    crops = g.union_crops(boxes, margin=0.1)
    assert (crops == crops[0]).all()
    x0, y0, x1, y1 = crops[0]
    assert x1 - x0 == pytest.approx(y1 - y0) == pytest.approx(60 * 1.2)  # union 50x60, longer side + 10% each
    assert (x0 + x1) / 2 == pytest.approx(35) and (y0 + y1) / 2 == pytest.approx(40)


def test_follow_keeps_one_side_and_tracks_the_centre():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 17, 12], [10, 0, 20, 10]], np.float32)
    crops = g.follow_crops(boxes, margin=0.5)
    sides = crops[:, 2] - crops[:, 0]
    assert np.allclose(sides, 20) and np.allclose(crops[:, 3] - crops[:, 1], 20)
    np.testing.assert_allclose((crops[:, 0] + crops[:, 2]) / 2, [5, 11, 15])


def test_leaves_frame_and_black_padding():
    assert not g.leaves_frame(np.array([[0, 0, 100, 100]]), 100, 100)
    assert g.leaves_frame(np.array([[-20, 0, 80, 100]]), 100, 100)
    img = np.full((100, 100, 3), 200, np.uint8)
    out = g.crop_square(img, np.array([-50, 0, 50, 100]), 64, fill="black")
    assert out.shape == (64, 64, 3)
    assert out[:, :30].max() == 0 and out[:, 34:].min() == 200  # left half outside the frame: black


def test_inside_frame_shifts_without_resizing():
    boxes = np.array([[-20, 10, 80, 110], [550, -30, 650, 70], [100, -50, 500, 350]], np.float32)
    np.testing.assert_allclose(g.inside_frame(boxes, 640, 360),
                               [[0, 10, 100, 110], [540, 0, 640, 100], [100, -40, 500, 360]])
    # longer than the frame along an axis: moved as little as possible so that it covers the whole frame
    np.testing.assert_allclose(g.inside_frame(np.array([0, 10, 400, 410]), 640, 360), [0, 0, 400, 400])
    np.testing.assert_allclose(g.inside_frame(np.array([10, 20, 50, 60]), 640, 360), [10, 20, 50, 60])
    crops = g.union_crops(np.array([[-10, 100, 60, 170]], np.float32), 0.0, frame=(640, 360))
    np.testing.assert_allclose(crops, [[0, 100, 70, 170]])


def test_runs_and_pieces():
    assert _runs(np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], bool)) == [(0, 2), (3, 4), (6, 9)]
    assert _pieces(10, None) == [(0, 10)]
    assert _pieces(250, 100) == [(0, 83), (83, 167), (167, 250)]  # equal pieces, no short leftover


def _tracks(n_frames=100, second_from=None, fps=25.0):
    ts = TrackSet(frame_period=1 / fps)
    for i in range(n_frames):
        dets = [Face([100, 100, 160, 160], 1.0)]
        if second_from is not None and i >= second_from:
            dets.append(Face([300, 100, 340, 140], 1.0))
        ts.step(i, i / fps, dets)
    return Tracks(ts.finish(), np.arange(n_frames), np.arange(n_frames) / fps, fps)


def test_plan_rules_length_size_split_single_face():
    tracks = _tracks(100, second_from=60)  # a second, smaller face joins at 2.4 s
    plans, why = plan_clips(tracks, 25.0, 640, 360, CropOptions(min_duration=1.0))
    assert [(p.track.track_id, len(p.track)) for p in plans] == [(0, 100), (1, 40)]
    plans, why = plan_clips(tracks, 25.0, 640, 360, CropOptions(min_duration=2.0))
    assert len(plans) == 1 and "1.60 s < --min-duration 2" in why[0]
    plans, why = plan_clips(tracks, 25.0, 640, 360, CropOptions(min_face=50))
    assert len(plans) == 1 and "face 40 px < --min-face 50" in why[0]
    plans, _ = plan_clips(tracks, 25.0, 640, 360, CropOptions(max_duration=1.5, min_duration=0.5))
    assert [len(p.track) for p in plans] == [33, 34, 33, 20, 20]  # 38-frame limit, equal pieces
    assert [p.segment for p in plans] == [0, 1, 2, 0, 1]
    assert plans[0].track.end_reason == "split"
    # the seed's rule: only frames where this face is alone on screen
    plans, why = plan_clips(tracks, 25.0, 640, 360, CropOptions(single_face=True))
    assert [(int(p.track.frames[0]), int(p.track.frames[-1])) for p in plans] == [(0, 59)]
    assert "never the only face" in why[0]


def test_out_of_frame_drop_marks_the_clip():
    tracks = _tracks(50)  # a 60 px face at x 100..160 of a 180 px frame
    # a 120 px square (margin 0.5) would reach 190 on both axes: shifting it inside saves the clip, even under drop
    plans, _ = plan_clips(tracks, 25.0, 180, 180, CropOptions(margin=0.5, out_of_frame="drop"))
    assert plans[0].status == "ok" and plans[0].crops[0].tolist() == [60, 60, 180, 180]
    # a 240 px square (margin 1.5) is larger than the frame: it still leaves it once shifted
    plans, _ = plan_clips(tracks, 25.0, 180, 180, CropOptions(margin=1.5, out_of_frame="drop"))
    assert plans[0].status == "dropped"
    plans, _ = plan_clips(tracks, 25.0, 180, 180, CropOptions(margin=1.5))
    assert plans[0].status == "ok"


def test_options_are_checked():
    with pytest.raises(UsageError, match="unknown crop mode"):
        CropOptions(mode="zoom").validate()
    with pytest.raises(UsageError):
        CropOptions(size=4).validate()
    with pytest.raises(UsageError, match="unknown --fill 'mirror'"):
        CropOptions(fill="mirror").validate()
