"""Trajectories end at a shot cut and at a gap without a face; stride and smoothing; the planning rules alone."""

from __future__ import annotations

import json

import numpy as np

from faceexpr_cli.extract import ExtractOptions, extract_features, read_features
from faceexpr_cli.extract.trajectories import plan, smooth_tokens
from faceexpr_cli.face import Track, Tracks


def test_trajectories_split_at_the_gap_and_the_cut(cut_video, segments, tiny_export, tmp_path):
    def segment(frame: int) -> int:
        return next(i for i, (a, b, _) in enumerate(segments) if a <= frame < b)

    res = extract_features([cut_video], tiny_export, tmp_path, ExtractOptions())
    doc = json.loads((tmp_path / res.rows[0]["json"]).read_text())
    spans = [[e["frame_ind"] for e in traj] for traj in doc["traj"]]
    # one trajectory per on-screen face segment, none crossing the gap or the cut
    assert [{segment(f) for f in s} for s in spans] == [{0}, {2}, {3}]
    for (a, b, _), s in zip([segments[i] for i in (0, 2, 3)], spans, strict=True):
        assert s[0] <= a + 1 and s[-1] >= b - 2 and s == list(range(s[0], s[-1] + 1))
    assert [t["end_reason"] for t in doc["trajectories"]] == ["cut", "cut", "end"]
    gap = set(range(segments[1][0], segments[1][1]))
    assert gap <= set(doc["no_face_frames"]) <= gap | {29, 45}  # the grey frames, listed apart


def test_stride_and_smoothing(cut_video, tiny_export, tmp_path):
    res = extract_features([cut_video], tiny_export, tmp_path, ExtractOptions(stride=3, smooth=True))
    row = res.rows[0]
    arrays = read_features(tmp_path / row["npz"])
    assert (arrays["frame_ind"] % 3 == 0).all() and row["sampled_frames"] == 32  # 0, 3, ..., 93
    assert set(arrays["no_face_frames"]) >= set(range(33, 45, 3))
    smooth, raw = arrays["tokens"], arrays["tokens_raw"]
    np.testing.assert_allclose(np.linalg.norm(smooth, axis=1), 1.0, atol=1e-5)
    for k in np.unique(arrays["traj"]):  # smoothing stays inside each trajectory and calms it
        sel = arrays["traj"] == k
        assert np.abs(np.diff(smooth[sel], axis=0)).mean() < np.abs(np.diff(raw[sel], axis=0)).mean()
    doc = json.loads((tmp_path / row["json"]).read_text())
    assert doc["smoothed"] and doc["stride"] == 3


def _track(tid: int, frames, size: float = 50.0, end: str = "end") -> Track:
    frames = np.asarray(frames, np.int64)
    n = len(frames)
    boxes = np.tile(np.array([10, 10, 10 + size, 10 + size], np.float32), (n, 1))
    boxes[:, [0, 2]] += np.arange(n, dtype=np.float32)[:, None]
    return Track(tid, frames, frames / 25.0, boxes, boxes.copy(), np.ones(n, np.float32), np.ones(n, bool),
                 np.full((n, 5, 2), np.nan, np.float32), end_reason=end)


def test_plan_samples_tracks_and_lists_faceless_frames():
    tracks = Tracks([_track(1, range(12, 20)), _track(0, range(0, 10), end="cut"), _track(2, [21]),
                     _track(3, range(0, 20), size=8)], range(24), np.arange(24) / 25.0, 25.0)
    p = plan(tracks, stride=2, margin=0.25, min_face=20)
    assert [t.track_id for t in p.trajectories] == [0, 1]  # by first frame; track 3 too small, track 2 off-stride
    assert p.trajectories[0].frames.tolist() == [0, 2, 4, 6, 8] and p.trajectories[0].end_reason == "cut"
    assert p.no_face.tolist() == [10, 20, 22]
    crops = p.trajectories[1].crops  # follow squares: one side per trajectory, 1.5 x the face, centred on it
    np.testing.assert_allclose(crops[:, 2] - crops[:, 0], 75.0)
    np.testing.assert_allclose((crops[:, 0] + crops[:, 2]) / 2, (p.trajectories[1].boxes[:, 0]
                                                                  + p.trajectories[1].boxes[:, 2]) / 2)


def test_smoothing_brings_noisy_unit_tokens_closer_to_the_signal():
    rng = np.random.default_rng(0)
    t = np.arange(100) / 25.0
    clean = np.stack([np.cos(2 * np.pi * 0.5 * t), np.sin(2 * np.pi * 0.5 * t), np.zeros_like(t)], 1)
    noisy = clean + 0.15 * rng.standard_normal(clean.shape)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    out = smooth_tokens(noisy, t, cutoff_hz=3.0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.abs(out - clean).mean() < 0.6 * np.abs(noisy - clean).mean()
    np.testing.assert_array_equal(smooth_tokens(noisy[:2], t[:2], 3.0), noisy[:2].astype(np.float32))
