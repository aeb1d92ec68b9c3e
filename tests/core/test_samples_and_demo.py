from __future__ import annotations

import json

import numpy as np
import pytest

from faceexpr_cli.media import probe, read_frames
from faceexpr_cli.samples import PORTRAITS, load_portrait, make_talking_head


@pytest.mark.parametrize("name", sorted(PORTRAITS))
def test_portraits_load_with_their_geometry(name):
    img, info = load_portrait(name)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    x0, y0, x1, y1 = info.face_box
    assert 0 <= x0 < x1 <= img.shape[1] and 0 <= y0 < y1 <= img.shape[0]
    assert x0 < info.left_eye[0] < info.right_eye[0] < x1
    assert info.left_eye[1] < info.mouth[1] < y1


def test_talking_head_matches_its_ground_truth(sample_video):
    info = probe(sample_video.path)
    assert info.frame_count == sample_video.n_frames == 100
    assert info.has_audio and (info.width, info.height) == (320, 256)
    actor = sample_video.actors[0]
    # the head really moves: turn and nod shift the face box by several pixels
    centers = (actor.face_box[:, :2] + actor.face_box[:, 2:]) / 2
    assert np.ptp(centers[:, 0]) > 8 and np.ptp(centers[:, 1]) > 4
    assert sample_video.mouth_open.max() > 0.9 and sample_video.mouth_open.min() < 0.05
    assert sample_video.eyes_closed.max() == pytest.approx(1.0, abs=0.3)
    frames = read_frames(sample_video.path)
    # the mouth region darkens when the mouth opens: correlate darkness with the ground-truth opening
    dark = []
    for f, (mx, my) in zip(frames, actor.mouth, strict=True):
        patch = f[int(my) - 3 : int(my) + 6, int(mx) - 6 : int(mx) + 7].astype(float)
        dark.append(-patch.mean())
    assert np.corrcoef(dark, sample_video.mouth_open)[0, 1] > 0.7


def test_talking_head_is_deterministic(tmp_path):
    a = make_talking_head(tmp_path / "a.mp4", seconds=0.4, width=128, height=96)
    b = make_talking_head(tmp_path / "b.mp4", seconds=0.4, width=128, height=96)
    assert np.array_equal(read_frames(a.path), read_frames(b.path))
    assert np.array_equal(a.actors[0].affine, b.actors[0].affine)


def test_demo_runs_the_media_steps_and_writes_a_report(tmp_path, capsys):
    from faceexpr_cli.cli.app import main

    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--only", "sample", "--only", "cut", "video.seconds=3", "--json"])
    data = json.loads(capsys.readouterr().out)
    steps = {s["step"]: s["status"] for s in data["steps"]}
    assert code == 0 and steps["sample"] == "ok" and steps["cut"] == "ok"
    report = (out / "report.html").read_text()
    assert "talking_head.mp4" in report and "<video" in report
    assert probe(out / "cut" / "span_exact.mp4").duration == pytest.approx(1.5, abs=0.05)
    assert data["summaries"]["sample"]["frames"] == 75
