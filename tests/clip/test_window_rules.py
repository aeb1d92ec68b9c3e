"""Window rules computed by hand: random placement, merging and the hit description (found by mutation testing)."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.clip.matching import Hit
from faceexpr_cli.clip.windows import Window, WindowSpec, _merge, hit_info, plan_windows, random_windows
from faceexpr_cli.transcripts.timeline import TimelineBuilder


def _frames(t: float, fps: float) -> float:
    return t * fps


@pytest.mark.parametrize("min_gap", [0.0, 0.52])
def test_random_windows_are_whole_frames_apart_inside_the_video(min_gap):
    fps, length = 25.0, 1.0
    windows, missing = random_windows(10.0, fps, 5, length, seed=3, source="a.mp4", min_gap=min_gap, end_margin=2.0)
    assert missing == 0 and len(windows) == 5
    gap_frames = int(np.ceil(min_gap * fps - 1e-6))
    for w in windows:
        assert w.kind == "random" and w.anchor == w.start and w.hits == []
        assert _frames(w.start, fps) == pytest.approx(round(_frames(w.start, fps)), abs=1e-9)
        assert w.end - w.start == pytest.approx(length, abs=1e-9)
        assert w.start >= 0.0 and w.end <= 8.0 + 1e-9
    for a, b in zip(windows, windows[1:], strict=False):
        assert round((b.start - a.end) * fps) >= gap_frames


def test_random_windows_fill_exactly_when_they_just_fit():
    windows, missing = random_windows(3.0, 10.0, 3, 1.0, seed=0, source="x")
    assert missing == 0
    assert [(w.start, w.end) for w in windows] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]


def test_random_windows_say_how_many_did_not_fit():
    windows, missing = random_windows(10.0, 25.0, 20, 1.0, seed=0, source="x")
    assert len(windows) == 10 and missing == 10
    windows, missing = random_windows(10.0, 25.0, 20, 1.0, seed=0, source="x", min_gap=1.0)
    assert len(windows) == 5 and missing == 15  # (250 + 25) // (25 + 25)
    assert random_windows(0.5, 25.0, 3, 1.0, seed=0, source="x") == ([], 3)


def test_random_windows_are_seeded_per_seed_and_per_video():
    def starts(seed, source):
        return [w.start for w in random_windows(60.0, 25.0, 4, 1.0, seed=seed, source=source)[0]]

    assert starts(1, "a.mp4") == starts(1, "a.mp4")
    assert starts(1, "a.mp4") != starts(2, "a.mp4")
    assert starts(1, "a.mp4") != starts(1, "b.mp4")


def test_random_windows_cover_the_whole_range_uniformly():
    starts = np.array([random_windows(10.0, 25.0, 1, 1.0, seed=s, source="v")[0][0].start for s in range(300)])
    assert starts.min() < 0.3 and starts.max() > 8.7  # the last possible start is 9.0
    assert starts.mean() == pytest.approx(4.5, abs=0.45)
    # with room for three positions, every one of them (the last included) is drawn
    few = {random_windows(1.2, 10.0, 1, 1.0, seed=s, source="v")[0][0].start for s in range(100)}
    assert few == {0.0, 0.1, 0.2}


def _w(start, end, tag):
    return Window(start, end, start, [{"tag": tag}])


def test_merge_joins_overlaps_only():
    merged = _merge([_w(0.0, 2.0, "a"), _w(1.0, 3.0, "b"), _w(3.0, 4.0, "c"), _w(5.0, 6.0, "d")], None)
    assert [(w.start, w.end) for w in merged] == [(0.0, 3.0), (3.0, 4.0), (5.0, 6.0)]  # touching is not overlap
    assert [h["tag"] for h in merged[0].hits] == ["a", "b"]
    inside = _merge([_w(0.0, 3.0, "a"), _w(1.0, 2.0, "b")], None)
    assert [(w.start, w.end) for w in inside] == [(0.0, 3.0)]  # a window inside another keeps the longer end


def test_merge_respects_max_duration():
    windows = [_w(0.0, 2.0, "a"), _w(1.0, 3.0, "b")]
    assert [(w.start, w.end) for w in _merge(windows, 2.5)] == [(0.0, 2.0), (1.0, 3.0)]
    windows = [_w(0.0, 2.0, "a"), _w(1.0, 3.0, "b")]
    assert [(w.start, w.end) for w in _merge(windows, 3.0)] == [(0.0, 3.0)]  # exactly max_duration merges


def _timeline():
    b = TimelineBuilder("t.vtt", "webvtt")
    b.add(0.5, 2.0, "please smile now")
    b.add(2.5, 4.0, "and look surprised")
    return b.finish()


def test_hit_info_describes_the_hit():
    tl = _timeline()
    hit = Hit("Smile", "smile", 1, 1, 0, 1.2345678, 1.6543219)
    info = hit_info(tl, hit, 2.5000004)
    assert info == {"keyword": "Smile", "matched_text": "smile", "start": 1.2346, "end": 1.6543, "anchor": 2.5,
                    "segment_text": "please smile now"}
    assert hit_info(tl, Hit("x", "surprised", 6, 6, 1, 3.0, 4.0), None)["anchor"] is None
    assert hit_info(tl, Hit("x", "surprised", 6, 6, 1, 3.0, 4.0), None)["segment_text"] == "and look surprised"


def test_plan_windows_merges_two_near_hits_into_one_window_with_both():
    tl = _timeline()
    hits = [Hit("smile", "smile", 1, 1, 0, 1.0, 1.3), Hit("look", "look", 4, 4, 1, 1.4, 1.6)]
    windows, dropped = plan_windows(tl, hits, WindowSpec(post=1.0), duration=10.0, fps=25.0)
    assert dropped == [] and len(windows) == 1
    assert (windows[0].start, windows[0].end) == (1.0, 2.4)
    assert [h["keyword"] for h in windows[0].hits] == ["smile", "look"]
    windows, _ = plan_windows(tl, hits, WindowSpec(post=1.0, merge=False), duration=10.0, fps=25.0)
    assert [(w.start, w.end) for w in windows] == [(1.0, 2.0), (1.4, 2.4)]


@pytest.mark.parametrize("field,flag", [("offset", "--offset"), ("pre", "--pre"), ("post", "--post"),
                                        ("frames", "--frames"), ("min_duration", "--min-duration"),
                                        ("max_duration", "--max-duration"), ("end_margin", "--end-margin")])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.5])
def test_window_spec_refuses_bad_numbers_naming_the_option(field, flag, value):
    from faceexpr_cli.errors import UsageError

    if field == "offset" and value == -0.5:
        WindowSpec(offset=-0.5).check()  # a negative offset is allowed (before the anchor)
        return
    with pytest.raises(UsageError) as err:
        WindowSpec(**{field: value}).check()
    assert err.value.message.startswith(f"{flag} must be")


def test_window_spec_bounds():
    from faceexpr_cli.errors import UsageError

    WindowSpec(pre=0.0, post=0.5, min_duration=0.0, end_margin=0.0).check()
    with pytest.raises(UsageError, match="--frames"):
        WindowSpec(frames=0).check()
    with pytest.raises(UsageError, match="--max-duration"):
        WindowSpec(max_duration=0.0).check()
    with pytest.raises(UsageError, match="--min-duration is larger"):
        WindowSpec(min_duration=3.0, max_duration=2.0).check()
    with pytest.raises(UsageError, match="empty"):
        WindowSpec(pre=0.0, post=0.0).check()


def _hit(start, end=None, segment=0, word=0):
    return Hit("k", "k", word, word, segment, start, start + 0.2 if end is None else end)


def _plan(hits, duration=10.0, fps=10.0, **spec):
    return plan_windows(_timeline(), hits, WindowSpec(**spec), duration=duration, fps=fps)


def test_the_offset_falls_back_only_when_the_clip_would_run_past_the_end():
    windows, _ = _plan([_hit(2.0)], offset=1.0)
    assert [(w.start, w.end) for w in windows] == [(3.0, 4.0)] and "fallback" not in windows[0].hits[0]
    windows, _ = _plan([_hit(8.0)], offset=1.0)  # ends exactly at the video's end: no fallback
    assert [(w.start, w.end) for w in windows] == [(9.0, 10.0)] and "fallback" not in windows[0].hits[0]
    windows, _ = _plan([_hit(8.5)], offset=1.0, pre=0.2)  # 9.3 + 1.2 > 10: the offset goes backwards
    assert [(w.start, w.end) for w in windows] == [(7.3, 8.5)] and windows[0].hits[0]["fallback"] is True
    windows, _ = _plan([_hit(8.5)], offset=1.0, fallback=False)
    assert [(w.start, w.end) for w in windows] == [(9.5, 10.0)]
    windows, _ = _plan([_hit(9.5)], offset=0.0)  # no offset: nothing to fall back on, the clip is cut at the end
    assert [(w.start, w.end) for w in windows] == [(9.5, 10.0)] and "fallback" not in windows[0].hits[0]
    windows, _ = _plan([_hit(0.5)], offset=1.0, duration=1.2)  # backwards past 0 starts at 0
    assert [(w.start, w.end) for w in windows] == [(0.0, 1.0)]


def test_dropped_hits_keep_their_description_and_the_others_still_count():
    windows, dropped = _plan([_hit(10.0), _hit(12.0), _hit(1.0)])
    assert [(d.reason, d.hit["start"]) for d in dropped] == [("anchor_past_video_end", 10.0),
                                                            ("anchor_past_video_end", 12.0)]
    assert [(w.start, w.end) for w in windows] == [(1.0, 2.0)]
    tl = _timeline()  # the last segment has no next segment to anchor on
    last = Hit("look", "look", 4, 4, 1, 2.7, 2.9)
    first = Hit("smile", "smile", 1, 1, 0, 1.0, 1.3)
    windows, dropped = plan_windows(tl, [last, first], WindowSpec(anchor="next-segment"), 10.0, 10.0)
    assert [d.reason for d in dropped] == ["no_next_segment"] and dropped[0].hit["matched_text"] == "look"
    assert [(w.start, w.end) for w in windows] == [(2.5, 3.5)]


def test_a_one_frame_window_at_the_end_is_kept_shorter_ones_are_dropped_with_why():
    windows, dropped = _plan([_hit(9.9)])  # one frame before the end
    assert [(round(w.start, 6), w.end) for w in windows] == [(9.9, 10.0)] and dropped == []
    windows, dropped = _plan([_hit(1.0)], min_duration=2.0)  # 1 s asked, 2 s required
    assert windows == [] and [d.reason for d in dropped] == ["too_short"]
    windows, dropped = _plan([_hit(9.5)], frames=10)  # a fixed-length clip that the end cuts short
    assert windows == [] and [d.reason for d in dropped] == ["window_past_end"]


def test_clip_takes_preset_like_crop_and_the_old_name_still_works(monkeypatch, tmp_path):
    """`fx clip --preset` is the name `fx crop` uses; `--x264-preset` stays accepted (hidden)."""
    import faceexpr_cli.clip.inputs as inputs
    import faceexpr_cli.clip.pipeline as pipeline
    from faceexpr_cli.cli.app import main

    seen = []

    def fake_run(items, out, settings, overwrite=False):
        seen.append(settings.x264_preset)
        raise KeyboardInterrupt  # stop before any work

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    monkeypatch.setattr(pipeline, "run_clip", fake_run)
    monkeypatch.setattr(inputs, "resolve_inputs", lambda paths, **kw: paths)
    for flag in ("--preset", "--x264-preset"):
        assert main(["clip", str(video), "--random", "1", "-o", str(tmp_path / "o"), flag, "ultrafast"]) == 130
    assert main(["clip", str(video), "--random", "1", "-o", str(tmp_path / "o")]) == 130
    assert seen == ["ultrafast", "ultrafast", "veryfast"]


def test_random_windows_with_the_gap_that_just_fits_and_one_frame_windows():
    windows, missing = random_windows(4.0, 10.0, 3, 1.0, seed=5, source="x", min_gap=0.5)  # 3 x 10 + 2 x 5 = 40
    assert missing == 0 and [(w.start, w.end) for w in windows] == [(0.0, 1.0), (1.5, 2.5), (3.0, 4.0)]
    windows, _ = random_windows(1.0, 10.0, 4, 0.1, seed=0, source="x")  # one frame each
    assert all(round((w.end - w.start) * 10) == 1 for w in windows) and len(windows) == 4


def test_merge_measures_max_duration_from_the_first_window_start():
    windows = [_w(5.0, 7.0, "a"), _w(6.0, 8.0, "b")]
    assert [(w.start, w.end) for w in _merge(windows, 3.0)] == [(5.0, 8.0)]  # 8 - 5 = 3: merged
    windows = [_w(5.0, 7.0, "a"), _w(6.0, 8.5, "b")]
    assert [(w.start, w.end) for w in _merge(windows, 3.0)] == [(5.0, 7.0), (6.0, 8.5)]


def test_window_spec_edges_and_messages():
    from faceexpr_cli.errors import UsageError

    WindowSpec(frames=1).check()  # one frame is a window
    WindowSpec(max_duration=0.5).check()  # half a second is a valid maximum
    WindowSpec(min_duration=2.0, max_duration=2.0).check()  # equal is fine
    WindowSpec(min_duration=5.0).check()  # a minimum alone is fine
    with pytest.raises(UsageError) as err:
        WindowSpec(pre=0.0, post=0.0).check()
    assert err.value.message == "the window is empty"
    assert err.value.hint == "give --post (seconds after the anchor) or --frames N"
    with pytest.raises(UsageError) as err:
        WindowSpec(min_duration=3.0, max_duration=2.0).check()
    assert err.value.message == "--min-duration is larger than --max-duration"


def test_a_dropped_short_window_does_not_stop_the_hits_after_it():
    windows, dropped = _plan([_hit(1.0), _hit(9.9), _hit(5.0)], min_duration=0.5)
    assert [d.reason for d in dropped] == ["window_past_end"]
    assert [(w.start, w.end) for w in windows] == [(1.0, 2.0), (5.0, 6.0)]
    info = hit_info(_timeline(), _hit(1.0), 2.123456)
    assert info["anchor"] == 2.1235
