"""iter_frames at the edges of its range (a start on a frame's time and a microsecond past it, an end on a
frame's time and just past it), resampling from a start and up to an end, max_frames, frame durations, rotated
sizes, and its two shortfall errors at their boundaries (checked against stand-in frame tables)."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media import iter_frames, read_frames, run_ffmpeg, timeline
from faceexpr_cli.media.timeline import FrameTimes
from faceexpr_cli.media.writer import VideoWriter


def level(img: np.ndarray) -> int:
    return int(round(float(img.mean()) / 20))


@pytest.fixture(scope="module")
def ten(tmp_path_factory):
    """10 frames at 10 fps, frame k grey 20 k, the last shown 0.3 s (ends at 1.2 s)."""
    path = tmp_path_factory.mktemp("reader") / "ten.mp4"
    w = VideoWriter(path, 10)
    for k in range(10):
        w.write(np.full((32, 48, 3), 20 * k, np.uint8), time=k / 10)
    w.close(end=1.2)
    return path


def test_frames_carry_index_time_and_their_own_duration(ten):
    frames = list(iter_frames(ten))
    assert [f.index for f in frames] == list(range(10)) and [level(f.image) for f in frames] == list(range(10))
    assert [f.time for f in frames] == pytest.approx([k / 10 for k in range(10)], abs=1e-9)
    assert [f.duration for f in frames] == pytest.approx([0.1] * 9 + [0.3], abs=1e-6)


@pytest.mark.parametrize(("start", "first"), [(0.3, 3), (0.3 + 5e-7, 3), (0.3 + 2e-6, 4), (0.0, 0), (0.05, 1)])
def test_start_takes_frames_from_that_time(ten, start, first):
    frames = list(iter_frames(ten, start=start))
    assert level(frames[0].image) == first and frames[0].index == 0
    assert len(frames) == 10 - first


@pytest.mark.parametrize(("end", "last"), [(0.5, 4), (0.5 + 1e-9, 5), (0.45, 4), (5.0, 9)])
def test_end_stops_before_a_frame_at_or_after_it(ten, end, last):
    frames = list(iter_frames(ten, start=0.2, end=end))
    assert [level(f.image) for f in frames] == list(range(2, last + 1))


def test_max_frames_stops_exactly(ten):
    assert len(list(iter_frames(ten, max_frames=3))) == 3
    assert len(list(iter_frames(ten, fps=20, max_frames=5))) == 5
    assert len(list(iter_frames(ten, fps=20, start=0.8, max_frames=3))) == 3  # in the held last frame's tail
    assert len(list(iter_frames(ten, max_frames=1))) == 1


def test_resampling_from_a_start_holds_the_latest_frame(ten):
    frames = list(iter_frames(ten, fps=20, start=0.25))
    # output times 0.25, 0.30, ... up to the end of the last frame (1.2 s): 19 of them
    assert len(frames) == 19 and [f.index for f in frames] == list(range(19))
    assert [f.time for f in frames] == pytest.approx([0.25 + k / 20 for k in range(19)])
    assert [level(f.image) for f in frames[:6]] == [2, 3, 3, 4, 4, 5]
    assert [level(f.image) for f in frames[-5:]] == [9] * 5  # the last frame held for its 0.3 s
    assert all(f.duration == pytest.approx(0.05) for f in frames)


def test_resampling_up_to_an_end(ten):
    frames = list(iter_frames(ten, fps=20, end=0.5))
    assert [level(f.image) for f in frames] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_resampling_slower_than_the_source_drops_frames(ten):
    frames = list(iter_frames(ten, fps=4))  # 0, .25, .5, .75, 1.0 (1.2 s long)
    assert [level(f.image) for f in frames] == [0, 2, 5, 7, 9]
    assert read_frames(ten, fps=4).shape == (5, 32, 48, 3)


def test_a_270_degree_rotation_is_turned_upright_at_the_asked_size(ten, tmp_path):
    rotated = tmp_path / "r270.mp4"
    run_ffmpeg(["-display_rotation", "270", "-i", str(ten), "-c", "copy", str(rotated)], rotated)
    assert read_frames(rotated, max_frames=1).shape == (1, 48, 32, 3)
    assert read_frames(rotated, size=(16, 24), max_frames=1).shape == (1, 24, 16, 3)


def _table(n: int, declared: int = 0, demuxed: int = 0) -> FrameTimes:
    return FrameTimes(np.arange(n) / 10, np.full(n, 0.1), declared=declared, demuxed=demuxed)


@pytest.mark.parametrize(("table_frames", "fails"), [(11, False), (12, True)])
def test_decoding_fewer_frames_than_the_table_is_an_error(ten, monkeypatch, table_frames, fails):
    monkeypatch.setattr(timeline, "frame_times", lambda path: _table(table_frames))
    if not fails:  # one frame short is tolerated (a decoder may hold back the last)
        assert len(list(iter_frames(ten))) == 10
        return
    with pytest.raises(MediaError) as err:
        list(iter_frames(ten))
    assert err.value.problem == "decoding ended at frame 10 of 12" and err.value.hint == "is the file damaged?"
    assert err.value.path == str(ten)
    assert len(list(iter_frames(ten, start=0.2))) == 8  # a range from a start is not checked
    assert len(list(iter_frames(ten, end=0.5))) == 5  # nor one that stops early


@pytest.mark.parametrize(("demuxed", "fails"), [(8, True), (9, False)])
def test_a_stream_shorter_than_declared_is_truncated(ten, monkeypatch, demuxed, fails):
    monkeypatch.setattr(timeline, "frame_times", lambda path: _table(10, declared=10, demuxed=demuxed))
    if not fails:
        assert len(list(iter_frames(ten))) == 10
        return
    with pytest.raises(MediaError) as err:
        list(iter_frames(ten, fps=20))
    assert err.value.problem == "is truncated: the stream ends at frame 8 of 10"
    assert err.value.hint == "re-download or re-export it"
