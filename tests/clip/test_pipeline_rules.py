"""The clip pipeline's rules without encoding: settings checks and defaults (the CLI's), clip keys, failed rows,
frame snapping on hand-made frame tables, the clip's metadata and index row, and whole inputs run with the
cutter replaced by a stub (rows, keys, drops and resume), recorded by the executor's ``RecordingWriter``."""

from __future__ import annotations

import inspect
import zlib
from pathlib import Path

import numpy as np
import pytest

from faceexpr_cli.clip import pipeline
from faceexpr_cli.clip.inputs import ClipInput, resolve_inputs
from faceexpr_cli.clip.job import RecordingWriter
from faceexpr_cli.clip.pipeline import (
    DEFAULT_MAX_PIXELS,
    ClipSettings,
    clip_key,
    clip_record,
    failed_row,
    process_input,
    run_clip,
    snap_to_frames,
)
from faceexpr_cli.clip.windows import Window, WindowSpec
from faceexpr_cli.errors import UsageError
from faceexpr_cli.executors import ExecutorSpec
from faceexpr_cli.media.clipping import ClipCut
from faceexpr_cli.media.timeline import FrameTimes

# --- settings -------------------------------------------------------------------------------------------------


def test_keywords_or_random_exactly_one():
    for s in (ClipSettings(), ClipSettings(keywords=["a"], random=2)):
        with pytest.raises(UsageError) as err:
            s.check()
        assert err.value.message == "give either --keywords or --random N"
        assert err.value.hint == "e.g. --keywords smile or --random 5"
    ClipSettings(keywords=["a"]).check()
    ClipSettings(random=1).check()


@pytest.mark.parametrize(("field", "good", "bad", "message"), [
    ("random", 1, 0, "--random must be a finite number >= 1, got 0"),
    ("fps", 1000.0, 1000.5, "--fps must be a finite number > 0 and <= 1000, got 1000.5"),
    ("fps", 0.01, 0.0, "--fps must be a finite number > 0 and <= 1000, got 0.0"),
    ("min_gap", 0.0, -0.1, "--min-gap must be a finite number >= 0, got -0.1"),
    ("crf", 0, -1, "--crf must be a finite number >= 0 and <= 51, got -1"),
    ("crf", 51, 52, "--crf must be a finite number >= 0 and <= 51, got 52"),
    ("face_size", 16, 15, "--face-size must be a finite number >= 16 and <= 4096, got 15"),
    ("face_size", 4096, 4097, "--face-size must be a finite number >= 16 and <= 4096, got 4097"),
    ("shard_count", 1, 0, "--shard-count must be a finite number >= 1, got 0"),
    ("shard_bytes", 1, 0, "--shard-mb must be a finite number > 0, got 0"),
    ("max_pixels", 1, 0, "--max-pixels must be a finite number >= 1, got 0"),
])
def test_numeric_settings_at_their_bounds(field, good, bad, message):
    base = {} if field == "random" else {"keywords": ["smile"]}
    ClipSettings(**base, **{field: good}).check()
    with pytest.raises(UsageError) as err:
        ClipSettings(**base, **{field: bad}).check()
    assert err.value.message == message


def test_fps_error_has_its_hint_and_other_checks_run():
    with pytest.raises(UsageError) as err:
        ClipSettings(random=1, fps=float("nan")).check()
    assert err.value.hint == "use a rate such as 25 or 30, or leave it out"
    ClipSettings(random=1, max_pixels=None, fps=None).check()  # no limit, the source's rate
    with pytest.raises(UsageError, match="fuzzy"):
        ClipSettings(keywords=["a"], match="fuzzy").check()
    with pytest.raises(UsageError, match="the window is empty"):
        ClipSettings(random=1, window=WindowSpec(post=0.0)).check()


@pytest.mark.parametrize("given", [None, "", "default"])
def test_faces_record_the_real_backend_name(given):
    from faceexpr_cli.face.backend import default_backend

    s = ClipSettings(random=1, faces=True, face_backend=given)
    s.check()
    assert s.face_backend == default_backend().name and s.face_backend not in (None, "", "default")
    s = ClipSettings(random=1, faces=True, face_backend="dlib")
    s.check()
    assert s.face_backend == "dlib"
    s = ClipSettings(random=1, faces=False, face_backend=given)  # without --faces nothing is resolved
    s.check()
    assert s.face_backend == given


def test_library_defaults_are_the_cli_defaults():
    """`ClipSettings()` and `WindowSpec()` mean what `fx clip` means with no options (rules "fx")."""
    from faceexpr_cli.cli.commands.clip import RULES, clip

    cli = {name: p.default for name, p in inspect.signature(clip).parameters.items()}
    s = ClipSettings()
    assert (s.keywords, s.random) == (None, None)
    assert s.match == RULES["fx"]["match"] == "word"
    assert (s.stem, s.seed, s.min_gap, s.cut, s.crf) == (cli["stem"], cli["seed"], cli["min_gap"], cli["cut"],
                                                        cli["crf"])
    assert (s.x264_preset, s.fps, s.faces, s.face_size) == (cli["preset"], cli["fps"], cli["faces"],
                                                            cli["face_size"])
    assert (s.face_fill, s.face_backend, s.shard_count) == (cli["fill"], cli["face_backend"], cli["shard_count"])
    assert s.shard_bytes == int(cli["shard_mb"] * 1024 * 1024) == 512 * 1024 * 1024
    assert s.max_pixels == cli["max_pixels"] == DEFAULT_MAX_PIXELS == 16_777_216  # 4096 x 4096
    w = WindowSpec()
    for name in ("anchor", "offset", "frames", "end_margin", "merge"):
        assert getattr(w, name) == RULES["fx"][name], name
    assert (w.fallback, w.pre, w.post, w.min_duration, w.max_duration) == (
        cli["fallback"], cli["pre"], cli["post"], cli["min_duration"], cli["max_duration"])


def test_the_default_pixel_limit_is_fx_crops():
    from faceexpr_cli.crop.options import CropOptions

    assert CropOptions.__dataclass_fields__["max_pixels"].default == DEFAULT_MAX_PIXELS


def test_to_json_keeps_only_output_shaping_settings():
    s = ClipSettings(keywords=["smile"], threads=3, shard_count=5, shard_bytes=7, max_pixels=9, seed=4)
    d = s.to_json()
    assert not {"shard_count", "shard_bytes", "threads", "max_pixels"} & set(d)
    assert d["keywords"] == ["smile"] and d["seed"] == 4 and d["window"]["post"] == 1.0
    assert set(d) == set(ClipSettings.__dataclass_fields__) - {"shard_count", "shard_bytes", "threads", "max_pixels"}


# --- keys and rows --------------------------------------------------------------------------------------------


def test_clip_key_is_the_plain_stem_a_crc_of_the_source_and_the_index():
    source = "dir/My Talk (take 2).mp4"
    crc = format(zlib.crc32(source.encode()), "08x")
    assert clip_key(source, 7) == f"My_Talk_take_2-{crc}-0007"
    assert clip_key(source, 12345).endswith(f"-{crc}-12345")
    long = "x" * 50 + ".mp4"
    assert clip_key(long, 0) == "x" * 40 + "-" + format(zlib.crc32(long.encode()), "08x") + "-0000"
    assert clip_key("a/v.mp4", 0) != clip_key("b/v.mp4", 0)  # same name, other folder


def test_failed_row_names_the_input():
    item = ClipInput("v.mp4", Path("v.mp4"), Path("v.vtt"), fields={"subject": "s1"})
    assert failed_row(item, "boom", "no_transcript") == {
        "status": "failed", "source": "v.mp4", "error": "boom", "reason": "no_transcript", "transcript": "v.vtt",
        "subject": {"subject": "s1"}}
    assert failed_row(ClipInput("w.mp4", None), "bad") == {
        "status": "failed", "source": "w.mp4", "error": "bad", "reason": None, "transcript": None, "subject": None}


def test_an_input_with_an_error_is_one_failed_row_and_not_done():
    rec = RecordingWriter(frozenset())
    process_input(ClipInput("v.mp4", None, error="v.mp4: gone"), ClipSettings(random=1), rec)
    assert rec.ops == [("row", {"status": "failed", "source": "v.mp4", "error": "v.mp4: gone", "reason": None,
                                "transcript": None, "subject": None})]


# --- snapping onto frame tables -------------------------------------------------------------------------------


def _grid(n=10, period=0.1):
    return FrameTimes(np.arange(n) * period, np.full(n, period))


def _snap(windows, table, frames=None, length=None):
    kept, unfit = snap_to_frames(windows, table, frames, length)
    return [(round(w.start, 9), round(w.end, 9)) for w in kept], [(w.start, why) for w, why in unfit]


def test_snap_takes_the_frames_whose_middle_lies_in_the_window():
    # frames every 0.1 s (middles at 0.05, 0.15, ...): [0.2, 0.5) holds frames 2, 3, 4 -> 0.2 to 0.5
    assert _snap([Window(0.2, 0.5, 0.2)], _grid()) == ([(0.2, 0.5)], [])
    # off the grid: [0.26, 0.54) holds the frames whose middles are 0.35 and 0.45 -> 0.3 to 0.5
    assert _snap([Window(0.26, 0.54, 0.26)], _grid()) == ([(0.3, 0.5)], [])


def test_snap_keeps_anchor_hits_and_kind():
    w = Window(0.2, 0.5, 0.234, [{"keyword": "k"}], kind="random")
    [kept], _ = snap_to_frames([w], _grid(), None)
    assert (kept.anchor, kept.hits, kept.kind) == (0.234, [{"keyword": "k"}], "random")


def test_snap_frames_n_up_to_the_last_frame_and_one_past_it():
    assert _snap([Window(0.7, 0.75, 0.7)], _grid(), frames=3) == ([(0.7, 1.0)], [])  # frames 7, 8, 9: the last
    assert _snap([Window(0.7, 0.75, 0.7)], _grid(), frames=4) == ([], [(0.7, "window_past_end")])


def test_snap_a_window_without_a_frame_is_too_short():
    # [0.31, 0.34) holds no frame middle (0.25 and 0.35 lie outside)
    assert _snap([Window(0.31, 0.34, 0.31)], _grid()) == ([], [(0.31, "too_short")])
    # ... and a window running past the last frame is cut at the video's end
    assert _snap([Window(0.8, 1.5, 0.8)], _grid()) == ([(0.8, 1.0)], [])


def test_snap_length_replaces_the_planned_end():
    assert _snap([Window(0.2, 0.9, 0.2)], _grid(), length=0.3) == ([(0.2, 0.5)], [])


def test_snap_frames_n_on_variable_frame_times():
    # four frames of 0.1 s then frames of 0.05 s: three frames from 0.3 end at 0.4 + 0.05 + 0.05 = 0.5
    times = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55])
    table = FrameTimes(times, np.array([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]))
    assert _snap([Window(0.3, 0.31, 0.3)], table, frames=3) == ([(0.3, 0.5)], [])


# --- the clip's record ----------------------------------------------------------------------------------------


def _cut(start=1.0, end=2.0, actual_start=0.96, actual_end=2.00004, index=0):
    return ClipCut(index, b"mp4", start, end, actual_start, actual_end, frames=26, fps=25.0, width=192, height=96,
                   has_audio=True, audio_coverage=0.5, fps_mode="source")


def test_clip_record_of_a_keyword_clip_with_two_hits():
    item = ClipInput("v.mp4", Path("v.mp4"), Path("v.vtt"), fields={"age": 3})
    s = ClipSettings(keywords=["smile", "frown"], window=WindowSpec(anchor="word-end", offset=0.5))
    hits = [{"keyword": "smile", "matched_text": "Smile"}, {"keyword": "frown", "matched_text": "frowned"}]
    base = {"source": "v.mp4", "transcript": "v.vtt", "subject": {"age": 3}}
    meta, row = clip_record(item, Window(1.0, 2.0, 1.23456, hits), _cut(), s, base)
    assert meta == {
        "source": "v.mp4", "transcript": "v.vtt", "mode": "keywords", "keyword": "smile",
        "keywords": ["smile", "frown"], "matched_text": "Smile", "hits": hits, "anchor_mode": "word-end",
        "anchor": 1.2346, "offset": 0.5, "window": [1.0, 2.0], "actual_start": 0.96, "snap": -0.04, "cut": "exact",
        "fps": 25.0, "frames": 26, "width": 192, "height": 96, "duration": 1.04, "actual_end": 2.0,
        "fps_mode": "source", "has_audio": True, "audio_coverage": 0.5, "subject": {"age": 3}}
    assert row == {
        **base, "keyword": "smile|frown", "matched_text": "Smile|frowned", "anchor_mode": "word-end",
        "anchor": 1.23456, "start": 1.0, "end": 2.0, "actual_start": 0.96, "snap": pytest.approx(-0.04),
        "duration": pytest.approx(1.04004), "frames": 26, "fps": 25.0, "has_audio": True, "audio_coverage": 0.5,
        "fps_mode": "source"}


def test_clip_record_of_a_random_clip():
    item = ClipInput("v.mp4", Path("v.mp4"))
    base = {"source": "v.mp4", "transcript": None, "subject": None}
    meta, row = clip_record(item, Window(1.0, 2.0, 1.0, kind="random"), _cut(actual_start=1.0), ClipSettings(random=2),
                            base)
    assert meta["mode"] == "random" and meta["anchor_mode"] is None and meta["keyword"] is None
    assert meta["keywords"] == [] and meta["matched_text"] is None and meta["snap"] == 0.0
    assert row["keyword"] is None and row["matched_text"] is None and row["anchor_mode"] is None


# --- whole inputs with the cutter stubbed ---------------------------------------------------------------------


@pytest.fixture
def stub_cuts(monkeypatch):
    """``cut_many`` replaced by cuts that take each span as it is; the calls are recorded."""
    import faceexpr_cli.media.clipping as clipping

    calls = []

    def cut_many(video, spans, cut, **kw):
        calls.append((video, list(spans), cut, kw))
        for i, (a, b) in enumerate(spans):
            yield ClipCut(i, b"mp4-%d" % i, a, b, a, b, frames=round((b - a) * 25), fps=25.0, width=192,
                          height=96, has_audio=True, audio_coverage=1.0)

    monkeypatch.setattr(clipping, "cut_many", cut_many)
    return calls


def _item(talk):
    [item] = resolve_inputs([talk.path])
    return item


def _ops(rec, kind):
    return [op for op in rec.ops if op[0] == kind]


def test_keyword_input_cuts_snapped_windows_and_records_the_dropped_hit(talk, stub_cuts):
    item = _item(talk)
    s = ClipSettings(keywords=["smile", "frown"], window=WindowSpec(post=0.8, min_duration=0.7), crf=20,
                     x264_preset="fast", threads=2, fps=None)
    rec = RecordingWriter(frozenset())
    process_input(item, s, rec)
    # "smile" at 1.13 s -> frame 28 (1.12 s) + 0.8 s = 1.92 s; "smile" at 5.37 s -> 5.36 s, cut at the 6 s end
    # to 0.64 s, under the 0.7 s minimum: dropped as past the end
    [(_, spans, cut, kw)] = stub_cuts
    assert [(round(a, 6), round(b, 6)) for a, b in spans] == [(1.12, 1.92)]
    assert cut == "exact" and kw == {"crf": 20, "preset": "fast", "threads": 2, "fps": None}
    [(_, key, data, meta, row)] = _ops(rec, "sample")
    assert key == clip_key(item.source, 0) and data == b"mp4-0"
    assert meta["anchor"] == 1.13 and meta["keyword"] == "smile" and meta["mode"] == "keywords"
    assert row["source"] == item.source and row["transcript"] == str(talk.path.with_name("talk.en.vtt"))
    [(_, dropped)] = _ops(rec, "row")
    assert dropped == {"source": item.source, "transcript": str(talk.path.with_name("talk.en.vtt")),
                       "subject": None, "status": "dropped", "key": f"{clip_key(item.source, 0)}-dropped",
                       "reason": "window_past_end", "keyword": "smile", "matched_text": "smile", "anchor": 5.37,
                       "anchor_mode": "word-start"}
    assert rec.ops[-1] == ("done", item.source)


def test_clips_already_in_the_dataset_are_not_cut_again(talk, stub_cuts):
    item = _item(talk)
    rec = RecordingWriter(frozenset({clip_key(item.source, 0)}))
    process_input(item, ClipSettings(keywords=["smile"], window=WindowSpec(post=0.8)), rec)
    # two windows: the first is done, only the second (index 1) is cut
    [(_, spans, _, _)] = stub_cuts
    assert [(round(a, 6), round(b, 6)) for a, b in spans] == [(5.36, 6.0)]
    assert [op[1] for op in _ops(rec, "sample")] == [clip_key(item.source, 1)]
    stub_cuts.clear()
    rec = RecordingWriter(frozenset({clip_key(item.source, 0), clip_key(item.source, 1)}))
    process_input(item, ClipSettings(keywords=["smile"], window=WindowSpec(post=0.8)), rec)
    assert stub_cuts == [] and rec.ops == [("done", item.source)]


def test_random_input_cuts_what_fits_and_records_each_missing_window(talk, stub_cuts):
    item = _item(talk)
    rec = RecordingWriter(frozenset())
    process_input(item, ClipSettings(random=17, window=WindowSpec(frames=10)), rec)
    # 150 frames hold 15 windows of 10 frames: 15 clips and 2 rows "no_room"
    samples = _ops(rec, "sample")
    assert len(samples) == 15 and [op[1] for op in samples] == [clip_key(item.source, i) for i in range(15)]
    assert all(round((m["window"][1] - m["window"][0]) * 25) == 10 and m["mode"] == "random"
               for _, _, _, m, _ in samples)
    rows = [op[1] for op in _ops(rec, "row")]
    assert [(r["status"], r["reason"], r["key"]) for r in rows] == [
        ("dropped", "no_room", f"{clip_key(item.source, 0)}-dropped"),
        ("dropped", "no_room", f"{clip_key(item.source, 1)}-dropped")]


def test_random_windows_keep_the_asked_length_in_seconds(talk, stub_cuts):
    item = _item(talk)
    rec = RecordingWriter(frozenset())
    process_input(item, ClipSettings(random=3, seed=1, window=WindowSpec(pre=0.1, post=0.3)), rec)
    [(_, spans, _, _)] = stub_cuts
    assert len(spans) == 3 and all(b - a == pytest.approx(0.4, abs=1e-9) for a, b in spans)
    assert all(round(a * 25, 6) == round(a * 25) for a, _ in spans)  # on the 25 fps frames


def test_keyword_input_without_transcript_is_a_failed_no_transcript_row(talk, tmp_path, stub_cuts):
    import shutil

    bare = tmp_path / "bare.mp4"
    shutil.copy(talk.path, bare)
    rec = RecordingWriter(frozenset())
    process_input(ClipInput(str(bare), bare), ClipSettings(keywords=["smile"]), rec)
    [(_, row)] = rec.ops
    assert row["status"] == "failed" and row["reason"] == "no_transcript" and row["transcript"] is None
    assert row["error"].startswith(f"{bare}: no transcript (looked for bare.vtt, ")
    assert stub_cuts == []


def test_an_input_timeline_given_is_used_instead_of_a_file(talk, stub_cuts):
    from faceexpr_cli.transcripts import TimelineBuilder

    b = TimelineBuilder("given", "test")
    b.add(2.0, 3.0, "frown", [("frown", 2.0, 2.5)])
    item = ClipInput(str(talk.path), talk.path, None, b.finish())
    rec = RecordingWriter(frozenset())
    process_input(item, ClipSettings(keywords=["frown", "smile"], window=WindowSpec(post=0.4)), rec)
    [(_, spans, _, _)] = stub_cuts
    assert [(round(a, 6), round(b, 6)) for a, b in spans] == [(2.0, 2.4)]
    [(_, _, _, meta, row)] = _ops(rec, "sample")
    assert meta["transcript"] is None and row["keyword"] == "frown"


# --- whole runs -----------------------------------------------------------------------------------------------


def test_local_workers_are_refused_before_the_folder_is_made(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UsageError) as err:
        run_clip([], out, ClipSettings(random=1), executor=ExecutorSpec(workers=2))
    assert err.value.message == "fx clip runs its inputs in this process; --workers N needs --executor ray"
    with pytest.raises(UsageError, match="give either"):
        run_clip([], out, ClipSettings())
    assert not out.exists()


def test_a_run_and_its_resume_count_inputs_clips_and_shards(talk, tmp_path, stub_cuts):
    item = _item(talk)
    out = tmp_path / "out"
    s = ClipSettings(random=3, shard_count=2, window=WindowSpec(post=0.2))
    run = run_clip([item], out, s)
    assert [r["status"] for r in run.rows] == ["ok"] * 3  # the input's "done" row is not a clip
    assert run.out == out and run.stats["clips"] == 3 and run.stats["shards"] == 2  # 2 + 1 clips
    assert run.stats["inputs"] == {"total": 1, "done": 1, "failed": 0, "skipped_as_done": 0}
    assert "executor" not in run.stats
    again = run_clip([item, item], out, ClipSettings(random=3, shard_count=2, window=WindowSpec(post=0.2)))
    assert again.stats["inputs"] == {"total": 2, "done": 1, "failed": 0, "skipped_as_done": 2}
    assert again.stats["clips"] == 3 and len(stub_cuts) == 1  # nothing cut again


def test_a_distributed_run_sends_each_unfinished_source_once_in_order(talk, tmp_path, stub_cuts, monkeypatch):
    import faceexpr_cli.clip.job as job

    sent = []

    def clip_on(spec, todo, settings, writer, out):
        sent.append([i.source for i in todo])
        for i in todo:
            process_input(i, settings, writer)

    monkeypatch.setattr(job, "clip_on", clip_on)
    item = _item(talk)
    other = ClipInput("other.mp4", None, error="other.mp4: gone")
    out = tmp_path / "out"
    run = run_clip([item, other, item], out, ClipSettings(random=2, window=WindowSpec(post=0.2)),
                   executor=ExecutorSpec(name="ray"))
    assert sent == [[item.source, "other.mp4"]]
    assert run.stats["inputs"] == {"total": 3, "done": 1, "failed": 1, "skipped_as_done": 1}
    sent.clear()
    again = run_clip([item, other], out, ClipSettings(random=2, window=WindowSpec(post=0.2)),
                     executor=ExecutorSpec(name="ray"))
    assert sent == [["other.mp4"]]  # the finished input is not sent again; the failed one is
    assert again.stats["inputs"]["skipped_as_done"] == 1 and again.stats["clips"] == 2


def test_pipeline_module_constants():
    assert pipeline.ClipInterrupted.exit_code == 130
