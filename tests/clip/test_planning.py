"""Matching modes, anchors, the seed's fallback, merging, clamping and random windows (no media needed)."""

from __future__ import annotations

import pytest

from faceexpr_cli.clip.matching import find_hits, parse_keywords, stem
from faceexpr_cli.clip.windows import (
    NO_NEXT_SEGMENT,
    PAST_VIDEO_END,
    TOO_SHORT,
    WINDOW_PAST_END,
    WindowSpec,
    plan_windows,
    random_windows,
)
from faceexpr_cli.errors import UsageError
from faceexpr_cli.transcripts import TimelineBuilder


def timeline():
    b = TimelineBuilder("t.vtt", "test")
    b.add(0.0, 2.0, "Please look", [("Please", 0.1, 0.5), ("look", 1.2, 1.9)])
    b.add(2.0, 4.0, "surprised! Then smile.", [("surprised!", 2.0, 2.6), ("Then", 2.8, 3.0), ("smile.", 3.1, 3.6)])
    b.add(4.0, 6.0, "She smiled, smiling", [("She", 4.0, 4.2), ("smiled,", 4.3, 4.8), ("smiling", 5.0, 5.5)])
    return b.finish()


def test_parse_keywords():
    assert parse_keywords(['smile,"look surprised"', " frown ", "smile"]) == ["smile", "look surprised", "frown"]
    with pytest.raises(UsageError, match="empty"):
        parse_keywords([" , "])


def test_whole_words_phrases_across_segments_and_case():
    tl = timeline()
    hits = find_hits(tl, ["LOOK SURPRISED", "smile"])
    assert [(h.keyword, h.matched_text, h.start, h.end) for h in hits] == [
        ("LOOK SURPRISED", "look surprised!", 1.2, 2.6), ("smile", "smile.", 3.1, 3.6)]


def test_prefix_regex_substring_and_stem():
    tl = timeline()
    assert [h.matched_text for h in find_hits(tl, ["smil"], "prefix")] == ["smile.", "smiled,", "smiling"]
    assert [h.matched_text for h in find_hits(tl, [r"smil(ed|ing)"], "regex")] == ["smiled,", "smiling"]
    assert [h.matched_text for h in find_hits(tl, ["mile"], "substring")] == ["smile.", "smiled,"]
    assert len(find_hits(tl, ["smile"])) == 1
    assert len(find_hits(tl, ["smile"], use_stem=True)) == 3
    assert stem("surprised") == stem("surprise") == stem("surprises")


def test_stem_is_snowball_english_so_every_form_of_a_verb_matches():
    b = TimelineBuilder("t.vtt", "test")
    forms = ["cry", "cried", "cries", "crying", "smile", "smiled", "smiling", "smiles", "crib", "smiley"]
    b.add(0.0, 10.0, " ".join(forms), [(w, float(i), i + 0.5) for i, w in enumerate(forms)])
    tl = b.finish()
    for keyword in ("cry", "cried", "crying"):
        assert [h.matched_text for h in find_hits(tl, [keyword], use_stem=True)] == forms[:4]
    for keyword in ("smile", "smiling"):
        assert [h.matched_text for h in find_hits(tl, [keyword], use_stem=True)] == forms[4:8]
    assert [h.matched_text for h in find_hits(tl, ["cry"])] == ["cry"]  # only with --stem
    with pytest.raises(UsageError, match="regular expression"):
        find_hits(tl, ["(unclosed"], "regex")


def test_anchor_modes():
    tl = timeline()
    [hit] = find_hits(tl, ["look surprised"])
    starts = {}
    for mode in ("word-start", "word-end", "segment-start", "next-segment"):
        [w], _ = plan_windows(tl, [hit], WindowSpec(anchor=mode, post=0.4), duration=10.0, fps=25.0)
        starts[mode] = w.start
    assert starts == {"word-start": 1.2, "word-end": 2.6, "segment-start": 0.0, "next-segment": 4.0}


def test_frames_window_is_snapped_to_the_grid():
    tl = timeline()
    [hit] = find_hits(tl, ["smile"])
    [w], _ = plan_windows(tl, [hit], WindowSpec(frames=30, pre=0.1), duration=10.0, fps=30.0)
    assert w.start == pytest.approx(3.0) and w.end == pytest.approx(4.0)


def test_seed_offset_fallback_and_drops():
    tl = timeline()
    hits = find_hits(tl, ["look surprised", "smiling"])
    spec = WindowSpec(anchor="next-segment", offset=1.0, frames=30, end_margin=2.0, merge=False)
    windows, dropped = plan_windows(tl, hits, spec, duration=7.5, fps=30.0)
    # "look surprised" ends in segment 2 -> next segment at 4.0; 5.0 + 1 s > 5.5 -> backwards: 3.0
    assert [(w.start, w.hits[0]["fallback"]) for w in windows] == [(3.0, True)]
    assert [d.reason for d in dropped] == [NO_NEXT_SEGMENT]  # "smiling" is in the last segment
    windows, dropped = plan_windows(tl, hits[:1], spec, duration=5.2, fps=30.0)
    assert not windows and [d.reason for d in dropped] == [WINDOW_PAST_END]


def test_anchor_past_the_video_end_and_clamping():
    tl = timeline()
    hits = find_hits(tl, ["smiling", "smile"])
    windows, dropped = plan_windows(tl, hits, WindowSpec(post=1.0), duration=3.5, fps=25.0)
    assert [d.reason for d in dropped] == [PAST_VIDEO_END]
    assert windows[0].start == 3.12 and windows[0].end == 3.5  # clamped to the video
    _, dropped = plan_windows(tl, hits[:1], WindowSpec(post=1.0, min_duration=0.5), duration=3.5, fps=25.0)
    assert [d.reason for d in dropped] == [WINDOW_PAST_END]  # only 0.38 s left before the end
    _, dropped = plan_windows(tl, hits[:1], WindowSpec(post=0.3, min_duration=0.5), duration=10, fps=25.0)
    assert [d.reason for d in dropped] == [TOO_SHORT]


def test_overlapping_hits_merge_or_stay_apart():
    tl = timeline()
    hits = find_hits(tl, ["smiled", "smiling"])
    merged, _ = plan_windows(tl, hits, WindowSpec(post=1.0), duration=10, fps=25)
    assert [(w.start, w.end, len(w.hits)) for w in merged] == [(4.32, 6.0, 2)]
    apart, _ = plan_windows(tl, hits, WindowSpec(post=1.0, merge=False), duration=10, fps=25)
    assert [(w.start, w.end) for w in apart] == [(4.32, 5.32), (5.0, 6.0)]
    capped, _ = plan_windows(tl, hits, WindowSpec(post=1.0, max_duration=1.2), duration=10, fps=25)
    assert len(capped) == 2


def test_random_windows_are_seeded_non_overlapping_and_gapped():
    a, missing = random_windows(60.0, 25.0, 10, 1.0, seed=3, source="v.mp4", min_gap=0.5, end_margin=5.0)
    b, _ = random_windows(60.0, 25.0, 10, 1.0, seed=3, source="v.mp4", min_gap=0.5, end_margin=5.0)
    c, _ = random_windows(60.0, 25.0, 10, 1.0, seed=3, source="w.mp4", min_gap=0.5, end_margin=5.0)
    assert missing == 0 and [w.start for w in a] == [w.start for w in b] != [w.start for w in c]
    for x, y in zip(a, a[1:], strict=False):
        assert y.start - x.end >= 0.5 - 1e-9
    assert a[-1].end <= 55.0 and all(abs(w.duration - 1.0) < 1e-9 for w in a)
    few, missing = random_windows(3.0, 25.0, 5, 1.0, seed=0, source="v.mp4", min_gap=0.5)
    assert len(few) == 2 and missing == 3
