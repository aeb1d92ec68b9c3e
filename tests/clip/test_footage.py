"""fx clip on footage as phones and cameras write it: a VFR HEVC .mov (1/600 time base, 120 fps "nominal"), an
edit-list MP4 and audio that ends before the video. Clips are measured by decoding them (frames, duration,
audio, the chirp's frequency) against the footage's ground truth."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from mediacheck import chirp_time, decode_audio, decode_video_times

from faceexpr_cli.clip.inputs import resolve_inputs
from faceexpr_cli.clip.pipeline import ClipSettings, run_clip
from faceexpr_cli.clip.windows import WindowSpec
from faceexpr_cli.dataset.sources import iter_shard, list_shards


def _clips(out) -> dict[str, tuple[bytes, dict]]:
    return {s.key: (s.video, s.meta) for shard in list_shards(out) for s in iter_shard(shard)}


def _shown(footage, start: float, end: float) -> np.ndarray:
    """Indices of the footage frames whose middle lies in [start, end)."""
    t = footage.frame_times
    mid = t + np.diff(np.append(t, footage.duration)) / 2
    return np.flatnonzero((mid >= start) & (mid < end))


def _run(videos, out, **kw):
    spec = WindowSpec(**{k: kw.pop(k) for k in ("pre", "post", "frames") if k in kw})
    settings = ClipSettings(window=spec, **kw)
    return run_clip(resolve_inputs([str(v) for v in videos]), out, settings)


@pytest.fixture(scope="module")
def random_clips(phone_vfr, edit_list_video, short_audio_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip_footage")
    run = _run([phone_vfr.path, edit_list_video.path, short_audio_video.path], out, random=3, post=1.2, seed=3)
    return run, _clips(out), {str(f.path): f for f in (phone_vfr, edit_list_video, short_audio_video)}


def test_a_window_becomes_a_clip_of_that_length_with_its_frames(random_clips):
    run, clips, sources = random_clips
    assert len(clips) == 9 and all(r["status"] == "ok" for r in run.rows)
    for _key, (data, meta) in clips.items():
        footage = sources[meta["source"]]
        frames, duration = decode_video_times(data)
        want = _shown(footage, meta["actual_start"], meta["actual_start"] + duration)
        assert frames == len(want) and footage.frame_times[want[0]] == pytest.approx(meta["actual_start"], abs=1e-3)
        period = duration / frames
        assert abs(duration - 1.2) <= period + 1e-3, (meta["source"], duration)
        assert meta["frames"] == frames and meta["duration"] == pytest.approx(duration, abs=1e-3)


def test_vfr_clip_is_not_played_on_the_nominal_grid(random_clips, phone_vfr):
    """Issue 11 case 1: the 120 fps guess once made a 1.5 s window a 0.30 s clip of 36 frames."""
    _, clips, _ = random_clips
    phone = [(d, m) for d, m in clips.values() if m["source"] == str(phone_vfr.path)]
    assert len(phone) == 3
    for data, _meta in phone:
        frames, duration = decode_video_times(data)
        assert 24 * 1.2 - 1 <= frames <= 30 * 1.2 + 1 and duration == pytest.approx(1.2, abs=1 / 24)


def test_clip_audio_comes_from_the_clip_span(random_clips):
    _, clips, sources = random_clips
    for data, meta in clips.values():
        footage = sources[meta["source"]]
        wave, rate = decode_audio(data)
        _, duration = decode_video_times(data)
        covered = max(0.0, min(footage.audio_duration, meta["actual_start"] + duration) - meta["actual_start"])
        if covered <= 0:
            assert wave is None and not meta["has_audio"] and meta["audio_coverage"] == 0
            continue
        assert abs(len(wave) / rate - duration) <= 0.04
        assert meta["audio_coverage"] == pytest.approx(covered / duration, abs=0.02)
        if covered > 0.25:
            at = covered / 2
            want = footage.chirp_offset + meta["actual_start"] + at
            assert chirp_time(wave, rate, at) == pytest.approx(want, abs=0.05)


def test_frames_n_takes_n_source_frames_of_vfr(phone_vfr, tmp_path):
    _run([phone_vfr.path], tmp_path, random=2, frames=30, seed=1)
    for data, meta in _clips(tmp_path).values():
        frames, duration = decode_video_times(data)
        i = int(np.argmin(np.abs(phone_vfr.frame_times - meta["actual_start"])))
        t = np.append(phone_vfr.frame_times, phone_vfr.duration)
        assert frames == 30 and duration == pytest.approx(t[i + 30] - t[i], abs=1e-3)


def test_constant_rate_on_request(phone_vfr, tmp_path):
    _run([phone_vfr.path], tmp_path, random=2, post=1.5, fps=25.0, seed=2)
    for data, meta in _clips(tmp_path).values():
        frames, duration = decode_video_times(data)
        assert meta["fps_mode"] == "constant" and frames / duration == pytest.approx(25, abs=0.01)
        assert duration == pytest.approx(1.5, abs=1 / 24 + 0.04)


def test_keyword_clip_on_an_edit_list_file(edit_list_video, tmp_path):
    """The edit-list file is clipped like any other (it was refused as "truncated"), at the transcript's times."""
    from faceexpr_cli.transcripts.vtt_writer import write_youtube_vtt

    video = tmp_path / "talk.mp4"
    shutil.copy(edit_list_video.path, video)
    write_youtube_vtt(tmp_path / "talk.en.vtt", [("hello", 0.3, 0.6), ("smile", 2.0, 2.3), ("now", 2.4, 2.6)])
    out = tmp_path / "out"
    run = _run([video], out, keywords=["smile"], post=1.0)
    assert [r["status"] for r in run.rows] == ["ok"]
    (data, meta), = _clips(out).values()
    frames, duration = decode_video_times(data)
    assert meta["actual_start"] == pytest.approx(2.0, abs=0.02) and duration == pytest.approx(1.0, abs=0.04)
    wave, rate = decode_audio(data)
    assert chirp_time(wave, rate, 0.5) == pytest.approx(edit_list_video.chirp_offset + 2.5, abs=0.05)


@pytest.mark.parametrize("value", ["nan", "0", "-1"])
def test_bad_fps_is_a_usage_error_before_any_work(phone_vfr, tmp_path, capsys, value):
    from faceexpr_cli.cli.app import main

    out = tmp_path / "out"
    assert main(["clip", str(phone_vfr.path), "--random", "1", "--fps", value, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--fps" in err and "Traceback" not in err
    assert not list(out.glob("*.tar"))
