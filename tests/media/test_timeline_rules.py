"""FrameTimes at its boundaries (the VFR test's ratio and gap, empty tables, half-frame middles), and how
_frame_times turns packets into frames: start offset, skipped packets, duplicates, the last frame's duration
when no packet states one, and a damaged tail. Packets come from a stand-in container so each case is exact."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media import timeline
from faceexpr_cli.media.timeline import SAME_FRAME, FrameTimes


def _ft(durations, times=None) -> FrameTimes:
    d = np.asarray(durations, float)
    t = np.concatenate([[0.0], np.cumsum(d)[:-1]]) if times is None else np.asarray(times, float)
    return FrameTimes(t, d)


# -- is_vfr ------------------------------------------------------------------------------------------------
def test_two_frames_are_never_vfr_three_can_be():
    assert not _ft([0.1, 0.5]).is_vfr  # fewer than 3 frames: no judgement
    assert _ft([0.1, 0.2, 0.1]).is_vfr  # 3 frames: the first two durations differ by 2x


def test_the_last_duration_does_not_count():
    # a constant run ending on a long last frame (what a clip's end looks like) is constant rate
    assert not _ft([0.1, 0.1, 0.1, 0.9]).is_vfr
    assert _ft([0.1, 0.9, 0.1, 0.1]).is_vfr


def test_vfr_needs_more_than_five_percent():
    assert not _ft([1.0, 1.05, 1.0]).is_vfr  # exactly 5 % longer: still constant (1.0 * 1.05 == 1.05)
    assert _ft([1.0, 1.06, 1.0]).is_vfr  # 6 %: variable (and 60 ms apart)


def test_vfr_needs_more_than_a_millisecond_too():
    assert not _ft([0.010, 0.0109, 0.01]).is_vfr  # 9 % but 0.9 ms: pts rounding, not a rate change
    assert _ft([0.010, 0.0115, 0.01]).is_vfr  # 15 % and 1.5 ms


def test_an_empty_table_has_no_end_and_no_rate():
    empty = FrameTimes(np.zeros(0), np.zeros(0))
    assert len(empty) == 0 and empty.end == 0.0 and empty.average_fps == 0.0 and not empty.is_vfr


def test_average_fps_is_frames_over_the_end():
    ft = _ft([0.1, 0.1, 0.2, 0.1])  # 4 frames over 0.5 s
    assert ft.end == pytest.approx(0.5) and ft.average_fps == pytest.approx(8.0)


# -- span and index_of at the half frame ----------------------------------------------------------------
def test_span_on_exact_middles():
    ft = _ft([1.0, 1.0, 1.0, 1.0])  # middles 0.5, 1.5, 2.5, 3.5 (exact in binary)
    # a frame whose middle is the span's start belongs to the span before; one whose middle is its end, to it
    assert ft.span(0.5, 2.5) == (1, 3)
    assert ft.span(0.49, 2.49) == (0, 2)
    assert ft.span(0.0, 4.0) == (0, 4)


def test_index_of_tolerates_only_same_frame():
    ft = _ft([0.1, 0.1, 0.1])
    assert ft.index_of(0.1 - 0.9 * SAME_FRAME) == 1
    assert ft.index_of(0.1 + 0.9 * SAME_FRAME) == 1
    assert ft.index_of(0.1 + 1.5 * SAME_FRAME) is None
    assert ft.index_of(0.1 - 1.5 * SAME_FRAME) is None
    assert ft.index_of(0.2 + 0.5 * SAME_FRAME) == 2  # the last frame, just past its start


# -- _frame_times from packets ------------------------------------------------------------------------
class _Packet:
    def __init__(self, pts, duration=0, size=100, discard=False):
        self.pts, self.duration, self.size, self.is_discard = pts, duration, size, discard


class _Stream:
    def __init__(self, tb, start, frames, avg):
        self.time_base, self.start_time, self.frames, self.average_rate = tb, start, frames, avg


class _Streams:
    def __init__(self, video):
        self.video = video


class _Format:
    def __init__(self, name):
        self.name = name


class _Container:
    def __init__(self, packets, *, tb=Fraction(1, 1000), start=0, frames=0, avg=None, fail_after=None, video=True):
        self.packets, self.fail_after = packets, fail_after
        self.streams = _Streams([_Stream(tb, start, frames, avg)] if video else [])
        self.format = _Format("mp4")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def demux(self, _vs):
        for k, p in enumerate(self.packets):
            if self.fail_after is not None and k == self.fail_after:
                raise av.error.InvalidDataError(1094995529, "damaged")
            yield p


def _times(monkeypatch, container) -> FrameTimes:
    monkeypatch.setattr(timeline, "open_container", lambda path: container)
    return timeline._frame_times.__wrapped__("fake.mp4", 0, 0)


def test_times_start_at_the_stream_start_and_sort_by_pts(monkeypatch):
    # decode order 0, 300, 100, 200 (B-frame style), stream starting at 1 s on a 1/1000 time base
    packets = [_Packet(1000, 100), _Packet(1300, 100), _Packet(1100, 100), _Packet(1200, 100)]
    ft = _times(monkeypatch, _Container(packets, start=1000, frames=4))
    assert ft.times.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert ft.durations.tolist() == pytest.approx([0.1, 0.1, 0.1, 0.1])
    assert (ft.declared, ft.demuxed, ft.discarded) == (4, 4, 0)


def test_empty_discarded_and_untimed_packets_are_not_frames(monkeypatch):
    packets = [_Packet(0, 40, discard=True), _Packet(40, 40, discard=True), _Packet(80, 40, size=0),
               _Packet(None, 40), _Packet(80, 40), _Packet(120, 40)]
    ft = _times(monkeypatch, _Container(packets, frames=6))
    # size 0 is not even counted as demuxed; discarded and pts-less packets are demuxed but not shown
    assert (ft.discarded, ft.demuxed, ft.declared) == (2, 5, 6)
    assert ft.times.tolist() == pytest.approx([0.08, 0.12]) and ft.durations.tolist() == pytest.approx([0.04, 0.04])


def test_duplicate_timestamps_are_one_frame(monkeypatch):
    packets = [_Packet(0, 100), _Packet(100, 100), _Packet(100, 100), _Packet(200, 50)]
    ft = _times(monkeypatch, _Container(packets))
    assert ft.times.tolist() == pytest.approx([0.0, 0.1, 0.2]) and ft.durations.tolist() == pytest.approx([0.1, 0.1, 0.05])
    assert ft.demuxed == 4


def test_durations_are_the_gaps_and_the_last_ones_stated_duration(monkeypatch):
    packets = [_Packet(0, 7), _Packet(100, 7), _Packet(300, 7), _Packet(350, 30)]
    ft = _times(monkeypatch, _Container(packets))
    assert ft.durations.tolist() == pytest.approx([0.1, 0.2, 0.05, 0.03])  # stated durations are ignored but the last


def test_without_a_stated_last_duration_the_median_gap_is_used(monkeypatch):
    packets = [_Packet(0), _Packet(100), _Packet(200), _Packet(500), _Packet(600)]  # gaps 100 100 300 100
    ft = _times(monkeypatch, _Container(packets))
    assert ft.durations[-1] == pytest.approx(0.1) and ft.end == pytest.approx(0.7)


def test_a_single_frame_without_duration_lasts_one_period_of_the_average_rate(monkeypatch):
    ft = _times(monkeypatch, _Container([_Packet(0)], tb=Fraction(1, 90000), avg=Fraction(30)))
    assert ft.durations.tolist() == pytest.approx([1 / 30], abs=1e-5)
    ft = _times(monkeypatch, _Container([_Packet(0)], tb=Fraction(1, 90000), avg=None))
    assert ft.durations.tolist() == pytest.approx([1 / 25], abs=1e-5)  # no rate at all: 25 fps
    ft = _times(monkeypatch, _Container([_Packet(0)], tb=Fraction(1, 10), avg=Fraction(1000)))
    assert ft.durations.tolist() == pytest.approx([0.1])  # never less than one tick


def test_a_damaged_tail_keeps_the_frames_before_it(monkeypatch):
    packets = [_Packet(0, 40), _Packet(40, 40), _Packet(80, 40), _Packet(120, 40)]
    ft = _times(monkeypatch, _Container(packets, frames=4, fail_after=2))
    assert len(ft) == 2 and ft.demuxed == 2 and ft.declared == 4


def test_no_frames_at_all_is_an_empty_table_with_the_counts(monkeypatch):
    ft = _times(monkeypatch, _Container([_Packet(0, 40, discard=True)], frames=3))
    assert len(ft) == 0 and ft.end == 0.0 and (ft.discarded, ft.declared, ft.demuxed) == (1, 3, 1)


def test_no_video_stream_is_an_error_naming_the_file(monkeypatch):
    with pytest.raises(MediaError, match="has no video stream") as err:
        _times(monkeypatch, _Container([], video=False))
    assert err.value.path == "fake.mp4" and err.value.hint == "pass a video file"
