"""FrameTimes rules computed by hand, and the per-file cache of frame_times (found by mutation testing)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from faceexpr_cli.media.timeline import SAME_FRAME, FrameTimes, frame_times
from faceexpr_cli.media.writer import write_video


def _vfr() -> FrameTimes:
    # a 10 fps run, then a 5 fps run, then a short last frame
    times = np.array([0.0, 0.1, 0.2, 0.4, 0.6])
    return FrameTimes(times, np.array([0.1, 0.1, 0.2, 0.2, 0.05]))


def test_span_takes_the_frames_whose_middle_lies_inside():
    ft = _vfr()  # middles: .05 .15 .3 .5 .625
    assert ft.span(0.0, 0.2) == (0, 2)
    assert ft.span(0.06, 0.31) == (1, 3)  # .05 is out, .3 is in
    assert ft.span(0.04, 0.16) == (0, 2)  # a third of the duration would drop frame 0 (middle at .033)
    assert ft.span(0.2, 0.6) == (2, 4)
    assert ft.span(0.7, 0.9) == (5, 5)


def test_span_end_is_the_last_frames_own_end():
    ft = _vfr()
    assert ft.span_end(0, 3) == pytest.approx(0.4)  # .2 + .2 (not .2 + the previous frame's .1)
    assert ft.span_end(3, 5) == pytest.approx(0.65)
    assert ft.end == pytest.approx(0.65)


def test_index_of_finds_only_frame_starts():
    ft = _vfr()
    assert ft.index_of(0.4) == 3
    assert ft.index_of(0.4 + SAME_FRAME / 2) == 3
    assert ft.index_of(0.3) is None  # inside frame 2, not a start
    assert ft.index_of(5.0) is None  # past the last frame
    assert ft.index_of(-1.0) is None


def test_vfr_and_average_rate():
    assert _vfr().is_vfr
    cfr = FrameTimes(np.arange(10) / 25, np.full(10, 1 / 25))
    assert not cfr.is_vfr and cfr.average_fps == pytest.approx(25)


def _frames(n: int, value: int) -> list[np.ndarray]:
    return [np.full((64, 64, 3), value, np.uint8) for _ in range(n)]


def test_cache_sees_a_rewritten_file_even_with_the_old_mtime(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _frames(10, 40), fps=10)
    first = frame_times(path)
    st = path.stat()
    write_video(path, _frames(25, 90), fps=25)  # other frames, other size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime as before
    again = frame_times(path)
    assert len(first) == 10 and len(again) == 25


def test_cache_sees_a_rewritten_file_of_the_same_size(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _frames(20, 40), fps=10)
    size = path.stat().st_size
    first = frame_times(path)
    other = tmp_path / "w.mp4"
    write_video(other, _frames(6, 40), fps=30)
    data = other.read_bytes()
    assert len(data) < size
    path.write_bytes(data + b"\0" * (size - len(data)))  # padded to the same size; the demuxer ignores the tail
    assert path.stat().st_size == size
    again = frame_times(path)
    assert len(first) == 20 and len(again) == 6
    assert np.diff(again.times) == pytest.approx(np.full(5, 1 / 30), abs=1e-4)
