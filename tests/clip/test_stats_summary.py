"""stats.json and the one-line summary from hand-made index rows: every count, sum, rounding and sentence."""

from __future__ import annotations

import pytest

from faceexpr_cli.clip.stats import _no_transcript, build_stats, summary_line


def _row(status, source="a.mp4", **kw):
    row = {"status": status, "source": source, "keyword": None, "reason": None, "snap": None, "duration": None,
           "bytes": None, "error": None}
    row.update(kw)
    return row


def _stats(rows, keywords=("smile", "frown"), **kw):
    args = {"inputs_total": 3, "skipped": 1, "wall_seconds": 12.3456, "settings": {"s": 1}, "shards": 2}
    args.update(kw)
    return build_stats(rows, keywords=None if keywords is None else list(keywords), **args)


ROWS = [
    _row("ok", keyword="smile", snap=-0.3, duration=1.0004, bytes=100),
    _row("ok", keyword="smile|smile", snap=0.1, duration=2.0, bytes=50),  # two hits merged into one clip
    _row("ok", source="b.mp4", keyword=None, snap=None, duration=None, bytes=None),
    _row("dropped", keyword="smile", reason="too_short"),
    _row("dropped", keyword="frown", reason="too_short"),
    _row("dropped", keyword=None, reason="no_room"),
    _row("dropped", keyword=None, reason=None),
    _row("failed", source="c.mp4", error="boom"),
    _row("failed", source="c.mp4", error="boom again"),
    _row("input_done", source="a.mp4"),
    _row("input_done", source="b.mp4"),
    _row("input_done", source="a.mp4"),
]


def test_counts_sums_and_rounding():
    s = _stats(ROWS)
    assert s["inputs"] == {"total": 3, "done": 2, "failed": 1, "skipped_as_done": 1}  # sources, not rows
    assert s["clips"] == 3 and s["shards"] == 2
    assert s["seconds"] == 3.0  # 1.0004 + 2.0 + 0 rounded to 3 places
    assert s["bytes"] == 150
    assert s["snap_seconds"] == {"mean": 0.2, "max": 0.3}  # |-0.3| and |0.1|; the None snap is left out
    assert s["wall_seconds"] == 12.35 and s["settings"] == {"s": 1}
    assert s["failed"] == [{"source": "c.mp4", "error": "boom"}, {"source": "c.mp4", "error": "boom again"}]


def test_dropped_rows_by_reason_and_keyword():
    s = _stats(ROWS)
    assert s["dropped"] == {"no_room": 1, "too_short": 2, "unknown": 1}
    assert list(s["dropped"]) == ["no_room", "too_short", "unknown"]  # sorted by reason
    assert s["dropped_per_keyword"] == {"no_room": {"(random)": 1}, "too_short": {"smile": 1, "frown": 1},
                                        "unknown": {"(random)": 1}}


def test_hits_count_every_hit_clips_count_each_keyword_once_per_clip():
    s = _stats(ROWS)
    # smile: 1 + 2 (merged) in clips + 1 dropped = 4 hits, in 2 clips; frown: its dropped hit only
    assert s["hits_per_keyword"] == {"smile": 4, "frown": 1}
    assert s["clips_per_keyword"] == {"smile": 2, "frown": 0}
    assert s["keywords_not_found"] == []
    s = _stats(ROWS, keywords=("smile", "frown", "cry"))
    assert s["hits_per_keyword"]["cry"] == 0 and s["keywords_not_found"] == ["cry"]


def test_no_transcript_lists_the_failed_sources_with_that_reason_once_sorted():
    rows = [_row("failed", source="z.mp4", reason="no_transcript"), _row("failed", source="b.mp4",
            reason="no_transcript"), _row("failed", source="z.mp4", reason="no_transcript"),
            _row("failed", source="x.mp4", reason="other")]
    assert _stats(rows)["no_transcript"] == ["b.mp4", "z.mp4"]


def test_random_mode_has_no_keyword_fields_and_no_snap_without_clips():
    s = _stats([_row("dropped", reason="no_room")], keywords=None)
    assert not {"hits_per_keyword", "clips_per_keyword", "keywords_not_found", "no_transcript"} & set(s)
    assert s["snap_seconds"] is None and s["clips"] == 0 and s["seconds"] == 0 and s["bytes"] == 0


def test_at_most_50_failures_are_listed():
    rows = [_row("failed", source=f"v{i}.mp4", error=f"e{i}") for i in range(51)]
    s = _stats(rows)
    assert len(s["failed"]) == 50 and s["failed"][-1] == {"source": "v49.mp4", "error": "e49"}
    assert s["inputs"]["failed"] == 51


def _summary(**over):
    stats = {"clips": 3, "seconds": 3.04, "shards": 2, "inputs": {"total": 4, "done": 3, "failed": 0},
             "dropped": {}, "snap_seconds": None}
    stats.update(over)
    return summary_line(stats, "out/")


def test_summary_first_sentence():
    assert _summary() == "3 clips (3.0 s) from 3 of 4 videos into out/ (2 shards)"


def test_summary_with_hits_missing_keywords_drops_snap_and_failures():
    line = _summary(hits_per_keyword={"smile": 2, "frown": 0, "cry": 1}, keywords_not_found=["frown"],
                    dropped={"no_room": 1, "too_short": 2}, snap_seconds={"mean": 0.1, "max": 0.304},
                    inputs={"total": 4, "done": 3, "failed": 1})
    assert line == ("3 clips (3.0 s) from 3 of 4 videos into out/ (2 shards); hits: smile 2, cry 1; "
                    "not found: frown; dropped 3 (no_room 1, too_short 2); fast-cut snap up to 0.30 s; "
                    "1 videos failed")


@pytest.mark.parametrize(("snap", "shown"), [(0.001, False), (0.0011, True), (0.0, False)])
def test_summary_mentions_a_snap_only_above_a_millisecond(snap, shown):
    line = _summary(snap_seconds={"mean": snap, "max": snap})
    assert ("fast-cut snap" in line) is shown


def test_summary_when_no_keyword_is_found():
    line = _summary(clips=0, hits_per_keyword={"smile": 0, "frown": 0}, keywords_not_found=["smile", "frown"],
                    inputs={"total": 2, "done": 2, "failed": 0})
    assert line == "no keyword found in 2 videos (smile, frown); no clips written to out/"


def test_summary_when_no_keyword_is_found_and_some_transcripts_are_missing():
    line = _summary(clips=0, hits_per_keyword={"smile": 0}, keywords_not_found=["smile"],
                    no_transcript=["v/a.mp4"], inputs={"total": 3, "done": 2, "failed": 1})
    assert line == ("no keyword found in 2 videos with a transcript (smile); "
                    "no transcript for a.mp4 (looked for a.vtt, a.srt, a.json, a.tsv, a.csv, a.<lang>.vtt, "
                    "a.<lang>.srt beside it); no clips written to out/; 1 videos failed")
    # every video lacks its transcript: nothing was searched, so no "no keyword found"
    line = _summary(clips=0, hits_per_keyword={"smile": 0}, keywords_not_found=["smile"],
                    no_transcript=["a.mp4"], inputs={"total": 1, "done": 0, "failed": 1})
    assert line.startswith("no transcript for a.mp4 (") and "no keyword found" not in line
    assert line.endswith("; no clips written to out/; 1 videos failed")


def test_summary_with_hits_and_a_missing_transcript():
    line = _summary(hits_per_keyword={"smile": 1}, keywords_not_found=[], no_transcript=["b.mp4"])
    assert line.startswith("3 clips (3.0 s) from 3 of 4 videos into out/ (2 shards); hits: smile 1; "
                           "no transcript for b.mp4 (looked for b.vtt,")
    assert "not found" not in line


@pytest.mark.parametrize(("n", "tail"), [
    (1, ""),
    (2, ", nor for v1.mp4 (the same names for each)"),
    (5, ", nor for v1.mp4, v2.mp4, v3.mp4, v4.mp4 (the same names for each)"),  # all five named
    (6, ", nor for v1.mp4, v2.mp4, v3.mp4, v4.mp4 and 1 more (the same names for each)"),
    (8, ", nor for v1.mp4, v2.mp4, v3.mp4, v4.mp4 and 3 more (the same names for each)"),
])
def test_no_transcript_names_five_videos_then_counts_the_rest(n, tail):
    sources = [f"dir/v{i}.mp4" for i in range(n)]
    head = ("no transcript for v0.mp4 (looked for v0.vtt, v0.srt, v0.json, v0.tsv, v0.csv, v0.<lang>.vtt, "
            "v0.<lang>.srt beside it)")
    assert _no_transcript(sources) == head + tail
