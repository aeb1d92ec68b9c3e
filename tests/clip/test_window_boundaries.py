"""Window planning at its exact boundaries: snapping ties, the 0 s clamp, max-duration caps, the end margin, a
video length off the frame grid, which reason a short window gets, and random windows against the end margin.
Every expected window is worked out by hand in the comments."""

from __future__ import annotations

import pytest

from faceexpr_cli.clip.matching import Hit
from faceexpr_cli.clip.windows import (
    PAST_VIDEO_END,
    TOO_SHORT,
    WINDOW_PAST_END,
    Window,
    WindowSpec,
    _snap,
    plan_windows,
    random_windows,
)
from faceexpr_cli.transcripts.timeline import TimelineBuilder


def _timeline():
    b = TimelineBuilder("t.vtt", "webvtt")
    b.add(0.5, 2.0, "please smile now")
    b.add(2.5, 4.0, "and look surprised")
    b.add(6.0, 7.0, "great")
    return b.finish()


def _hit(start, end=None, segment=0, word=0, keyword="k"):
    return Hit(keyword, keyword, word, word, segment, start, start + 0.2 if end is None else end)


def _plan(hits, duration=10.0, fps=10.0, **spec):
    return plan_windows(_timeline(), hits, WindowSpec(**spec), duration=duration, fps=fps)


def _spans(windows):
    return [(round(w.start, 9), round(w.end, 9)) for w in windows]


def test_snap_rounds_to_the_nearest_frame_and_a_half_frame_up():
    # 2 fps: frames at 0.0, 0.5, 1.0 ... (all exact in binary)
    assert _snap(0.25, 2.0) == 0.5  # exactly half way: up
    assert _snap(0.24, 2.0) == 0.0
    assert _snap(0.74, 2.0) == 0.5
    assert _snap(1.0, 2.0) == 1.0  # on the grid: unchanged
    assert _snap(0.0, 25.0) == 0.0
    assert _snap(0.061, 25.0) == pytest.approx(0.08)  # 1.525 frames -> frame 2


def test_a_plain_window_starts_on_the_anchor_and_lasts_the_default_second():
    [w], dropped = _plan([_hit(2.0, keyword="smile")])
    assert dropped == []
    assert (w.start, w.end, w.anchor, w.kind) == (2.0, 3.0, 2.0, "keyword")
    assert w.duration == pytest.approx(1.0)
    assert w.hits[0]["keyword"] == "smile" and w.hits[0]["anchor"] == 2.0 and "fallback" not in w.hits[0]


def test_an_anchor_on_a_half_frame_snaps_up():
    # fps 2: the anchor 0.25 s lies half way between frames 0 and 1 -> 0.5 s; the 1 s window ends at 1.5 s
    [w], _ = _plan([_hit(0.25)], fps=2.0)
    assert (w.start, w.end) == (0.5, 1.5) and w.anchor == 0.25


def test_pre_before_the_video_start_clamps_to_zero_and_keeps_the_length():
    # anchor 0.3 - pre 0.5 = -0.2 -> 0.0; length 0.5 + 1.0 = 1.5 s from 0.0
    windows, _ = _plan([_hit(0.3)], pre=0.5)
    assert _spans(windows) == [(0.0, 1.5)]
    # with pre 0.2: 0.1 s, a frame of the 10 fps grid; end 0.1 + 1.2 = 1.3
    windows, _ = _plan([_hit(0.3)], pre=0.2)
    assert _spans(windows) == [(0.1, 1.3)]


def test_max_duration_caps_a_window_measured_from_its_start():
    # post 2 s would end at 3.0; max 0.5 s from the start 1.0 -> 1.5
    windows, dropped = _plan([_hit(1.0)], post=2.0, max_duration=0.5)
    assert _spans(windows) == [(1.0, 1.5)] and dropped == []
    windows, _ = _plan([_hit(1.0)], post=2.0, max_duration=2.0)  # a cap equal to the length changes nothing
    assert _spans(windows) == [(1.0, 3.0)]


def test_the_end_margin_clamps_the_end_before_the_video_end():
    # 10 s video, 2 s margin: a window from 7.5 ends at 8.0, not 8.5
    windows, _ = _plan([_hit(7.5)], end_margin=2.0)
    assert _spans(windows) == [(7.5, 8.0)]
    windows, _ = _plan([_hit(6.0)], end_margin=2.0)  # ends exactly at the margin: whole
    assert _spans(windows) == [(6.0, 7.0)]


def test_a_video_length_off_the_frame_grid_ends_the_window_at_the_video_end():
    # 9.97 s at 10 fps: a window 9.0 + 1.0 is cut at 9.97 itself (snapping would give 10.0, past the end)
    windows, _ = _plan([_hit(9.0)], duration=9.97)
    assert _spans(windows) == [(9.0, 9.97)]
    # an end inside the video is snapped: 1.0 + 1.03 = 2.03 -> 2.0
    windows, _ = _plan([_hit(1.0)], post=1.03, duration=9.97)
    assert _spans(windows) == [(1.0, 2.0)]


def test_an_anchor_just_before_the_end_is_kept_at_the_end_just_at_it_is_dropped():
    windows, dropped = _plan([_hit(9.95)], fps=20.0)  # one 20 fps frame before the 10 s end
    assert _spans(windows) == [(9.95, 10.0)] and dropped == []
    windows, dropped = _plan([_hit(10.0)], fps=20.0)
    assert windows == [] and [d.reason for d in dropped] == [PAST_VIDEO_END]


def test_a_short_window_that_ends_exactly_at_the_limit_is_too_short_not_past_the_end():
    # 9.0 + 1.0 = 10.0 is inside the video: the window is whole but below the 2 s minimum
    windows, dropped = _plan([_hit(9.0)], min_duration=2.0)
    assert windows == [] and [d.reason for d in dropped] == [TOO_SHORT]
    # with a 1 s margin the limit is 9.0: 8.0 + 1.0 reaches it exactly (too short); 8.1 + 1.0 passes it
    _, dropped = _plan([_hit(8.0)], min_duration=2.0, end_margin=1.0)
    assert [d.reason for d in dropped] == [TOO_SHORT]
    _, dropped = _plan([_hit(8.1)], min_duration=2.0, end_margin=1.0)
    assert [d.reason for d in dropped] == [WINDOW_PAST_END]


def test_a_window_of_exactly_the_minimum_is_kept():
    # min 0.5 s: a 0.5 s window (pre 0, post 0.5) is kept; 0.4 s is dropped
    windows, dropped = _plan([_hit(1.0)], post=0.5, min_duration=0.5)
    assert _spans(windows) == [(1.0, 1.5)] and dropped == []
    windows, dropped = _plan([_hit(1.0)], post=0.4, min_duration=0.5)
    assert windows == [] and [d.reason for d in dropped] == [TOO_SHORT]


def test_frames_default_minimum_is_the_whole_length():
    # --frames 10 at 10 fps is 1 s: a clip that the end cuts to 0.9 s is dropped, one that fits is kept
    windows, dropped = _plan([_hit(9.0)], frames=10)
    assert _spans(windows) == [(9.0, 10.0)] and dropped == []
    windows, dropped = _plan([_hit(9.1)], frames=10)
    assert windows == [] and [d.reason for d in dropped] == [WINDOW_PAST_END]
    windows, _ = _plan([_hit(2.0)], frames=5, post=3.0)  # frames replace post: 0.5 s
    assert _spans(windows) == [(2.0, 2.5)]


def test_the_fallback_window_that_still_does_not_fit_is_dropped_past_the_end():
    # 10 s, margin 2 s -> limit 8.0; anchor 7.5 + 1 s offset -> 8.5; backwards: 6.5 + 1.0 = 7.5 fits
    [w], _ = _plan([_hit(7.5)], offset=1.0, end_margin=2.0)
    assert (w.start, w.end) == (6.5, 7.5) and w.hits[0]["fallback"] is True
    # a 3 s clip (pre 0, post 3) from 6.5 still ends past 8.0, is cut to 1.5 s, fine without a minimum ...
    [w], _ = _plan([_hit(7.5)], offset=1.0, end_margin=2.0, post=3.0)
    assert (w.start, w.end) == (6.5, 8.0)
    # ... and dropped as past the end with a 2 s minimum
    windows, dropped = _plan([_hit(7.5)], offset=1.0, end_margin=2.0, post=3.0, min_duration=2.0)
    assert windows == [] and [d.reason for d in dropped] == [WINDOW_PAST_END]
    assert dropped[0].hit["fallback"] is True


def test_a_negative_offset_moves_the_window_before_the_anchor():
    windows, _ = _plan([_hit(5.0)], offset=-1.0)
    assert _spans(windows) == [(4.0, 5.0)]
    # 9.5 - 1.0 = 8.5 -> 9.5 fits in 10 s: no fallback
    windows, _ = _plan([_hit(9.5)], offset=-1.0)
    assert _spans(windows) == [(8.5, 9.5)] and "fallback" not in windows[0].hits[0]


def test_windows_come_back_in_time_order_whatever_the_order_of_the_hits():
    windows, _ = _plan([_hit(5.0, keyword="b"), _hit(1.0, keyword="a"), _hit(3.0, keyword="c")], merge=False)
    assert _spans(windows) == [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]
    assert [w.hits[0]["keyword"] for w in windows] == ["a", "c", "b"]


def test_merged_windows_keep_the_first_anchor_and_every_hit_in_order():
    windows, _ = _plan([_hit(1.0, keyword="a"), _hit(1.5, keyword="b"), _hit(2.2, keyword="c")])
    # 1.0-2.0, 1.5-2.5 and 2.2-3.2 overlap in a chain: one window 1.0-3.2
    assert _spans(windows) == [(1.0, 3.2)]
    assert windows[0].anchor == 1.0 and [h["keyword"] for h in windows[0].hits] == ["a", "b", "c"]
    # a cap of 2 s: 1.0-2.5 merges (1.5 s), 2.2-3.2 would make it 2.2 s and stays apart
    windows, _ = _plan([_hit(1.0, keyword="a"), _hit(1.5, keyword="b"), _hit(2.2, keyword="c")], max_duration=2.0)
    assert _spans(windows) == [(1.0, 2.5), (2.2, 3.2)]
    assert [[h["keyword"] for h in w.hits] for w in windows] == [["a", "b"], ["c"]]


def test_next_segment_anchor_is_the_nearest_later_segment():
    tl = _timeline()
    # a hit in segment 0 ("smile"): the next segment starts at 2.5 (not the later one at 6.0)
    hit = Hit("smile", "smile", 1, 1, 0, 0.9, 1.1)
    [w], _ = plan_windows(tl, [hit], WindowSpec(anchor="next-segment"), 10.0, 10.0)
    assert (w.start, w.anchor) == (2.5, 2.5)
    hit = Hit("look", "look", 4, 4, 1, 3.0, 3.4)  # segment 1 -> 6.0
    [w], _ = plan_windows(tl, [hit], WindowSpec(anchor="next-segment"), 10.0, 10.0)
    assert (w.start, w.end) == (6.0, 7.0)


def test_word_end_and_segment_start_anchors():
    tl = _timeline()
    hit = Hit("look", "look", 4, 4, 1, 3.0, 3.4)
    [w], _ = plan_windows(tl, [hit], WindowSpec(anchor="word-end"), 10.0, 10.0)
    assert (w.start, w.anchor) == (3.4, 3.4)
    [w], _ = plan_windows(tl, [hit], WindowSpec(anchor="segment-start"), 10.0, 10.0)
    assert (w.start, w.anchor) == (2.5, 2.5)


def test_the_default_spec_is_checked_and_plain():
    spec = WindowSpec()
    spec.check()
    assert (spec.anchor, spec.offset, spec.fallback, spec.pre, spec.post, spec.frames) == (
        "word-start", 0.0, True, 0.0, 1.0, None)
    assert (spec.min_duration, spec.max_duration, spec.merge, spec.end_margin) == (None, None, True, 0.0)
    WindowSpec(frames=5, pre=0.0, post=0.0).check()  # --frames alone is a window


def test_random_windows_respect_the_end_margin_exactly():
    # 3 s - 1 s margin = 20 frames at 10 fps: two 1 s windows fill it, whatever the seed
    windows, missing = random_windows(3.0, 10.0, 2, 1.0, seed=7, source="x", end_margin=1.0)
    assert missing == 0 and _spans(windows) == [(0.0, 1.0), (1.0, 2.0)]
    # a margin longer than the video leaves no room
    assert random_windows(1.0, 10.0, 2, 0.1, seed=0, source="x", end_margin=2.0) == ([], 2)


def test_random_windows_one_that_just_fits_and_none_that_do_not():
    windows, missing = random_windows(1.0, 10.0, 1, 1.0, seed=0, source="x")
    assert missing == 0 and _spans(windows) == [(0.0, 1.0)]
    assert windows[0].kind == "random" and windows[0].anchor == 0.0 and windows[0].hits == []
    assert random_windows(0.9, 10.0, 1, 1.0, seed=0, source="x") == ([], 1)  # 9 frames for a 10-frame window
    # off-grid length: 0.95 s at 10 fps takes 10 whole frames
    windows, _ = random_windows(1.0, 10.0, 1, 0.95, seed=0, source="x")
    assert _spans(windows) == [(0.0, 1.0)]


def test_random_window_gap_just_too_big_loses_one_window():
    # 40 frames, three 10-frame windows need gaps of at most 5 frames: 0.51 s (6 frames) leaves room for two
    windows, missing = random_windows(4.0, 10.0, 3, 1.0, seed=5, source="x", min_gap=0.51)
    assert len(windows) == 2 and missing == 1
    assert round((windows[1].start - windows[0].end) * 10) >= 6


def test_window_duration_is_end_minus_start():
    assert Window(1.5, 4.0, 1.5).duration == pytest.approx(2.5)
    assert Window(1.5, 4.0, 1.5).kind == "keyword" and Window(1.5, 4.0, 1.5).hits == []


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_windows_with_gaps_that_exactly_fill_the_video_have_one_layout(seed):
    # 40 frames = 3 windows of 10 + 2 gaps of 5: no free frame left, so every seed gives the same layout
    windows, missing = random_windows(4.0, 10.0, 3, 1.0, seed=seed, source="v", min_gap=0.5)
    assert missing == 0 and _spans(windows) == [(0.0, 1.0), (1.5, 2.5), (3.0, 4.0)]
