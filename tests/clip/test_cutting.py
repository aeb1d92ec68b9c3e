"""One-pass multi-clip cutting: overlapping spans, key-frame snapping in fast mode, rotated sources."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.clip.synthetic import read_code
from faceexpr_cli.media import read_frames, run_ffmpeg
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.media.clipping import cut_many


def codes(data: bytes) -> list[int]:
    return [read_code(f) for f in decode_clip(data, audio=False).frames]


def test_exact_overlapping_and_unsorted_spans(talk):
    spans = [(3.0, 3.4), (1.0, 1.6), (1.2, 1.44), (5.8, 7.0)]
    cuts = {c.index: c for c in cut_many(talk.path, spans, "exact")}
    assert codes(cuts[0].data) == list(range(75, 85))
    assert codes(cuts[1].data) == list(range(25, 40))
    assert codes(cuts[2].data) == list(range(30, 36))
    assert codes(cuts[3].data) == list(range(145, 150))  # cut short by the end of the video
    assert cuts[3].frames == 5 and cuts[1].actual_start == pytest.approx(1.0)


def test_fast_cut_snaps_to_the_key_frame_before(talk, tmp_path):
    gop10 = tmp_path / "gop10.mp4"
    run_ffmpeg(["-i", str(talk.path), "-c:v", "libx264", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0",
                "-c:a", "copy", str(gop10)], talk.path)
    [c] = list(cut_many(gop10, [(2.3, 2.8)], "fast"))
    assert c.actual_start == pytest.approx(2.0) and c.snap == pytest.approx(-0.3)
    got = codes(c.data)
    assert got[0] == 50 and got[-1] >= 69  # from the key frame through the requested end
    assert decode_clip(c.data).audio is not None


def test_rotated_source_comes_out_upright(talk, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    run_ffmpeg(["-display_rotation", "90", "-i", str(talk.path), "-c", "copy", str(rotated)], talk.path)
    [c] = list(cut_many(rotated, [(1.0, 1.2)], "exact"))
    clip = decode_clip(c.data, audio=False)
    assert clip.frames.shape[1:] == (talk.width, talk.height, 3) and (c.width, c.height) == (96, 192)
    upright = read_frames(rotated, start=1.0, max_frames=1)[0]  # the media layer's upright picture
    assert np.abs(upright.astype(float) - clip.frames[0]).mean() < 4.0
