"""fx crop on footage as phones and cameras write it: variable frame rate, edit lists, audio shorter than video.

Every check measures the written clip itself (decoded frames and audio, the chirp's frequency) against the
footage's ground truth, not the numbers fx wrote in its manifest.
"""

from __future__ import annotations

import numpy as np
import pytest
from mediacheck import chirp_time, decode_audio, decode_video_times

from faceexpr_cli.crop import CropOptions, crop_videos


@pytest.fixture(scope="module")
def cropped(phone_vfr, edit_list_video, short_audio_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("crop_footage")
    opts = CropOptions(size=96, min_duration=0.5, max_duration=1.5, embed=False)
    result = crop_videos([phone_vfr.path, edit_list_video.path, short_audio_video.path], out, opts)
    return out, result, {str(f.path): f for f in (phone_vfr, edit_list_video, short_audio_video)}


def _truth_span(footage, start: float, end: float) -> tuple[int, float]:
    """Frames of the footage shown in [start, end) and how long they last, from the footage's own frame times."""
    t = footage.frame_times
    nxt = np.append(t[1:], footage.duration)
    inside = (t >= start - 1e-4) & (t < end - 1e-4)
    return int(inside.sum()), float(nxt[inside][-1] - t[inside][0])


def test_every_source_is_cropped_and_no_edit_list_file_is_called_truncated(cropped):
    _, result, sources = cropped
    by_source = {}
    for r in result.rows:
        by_source.setdefault(r["source"], []).append(r)
    assert set(by_source) == set(sources)
    for source, rows in by_source.items():
        assert [r["status"] for r in rows] and all(r["status"] == "ok" for r in rows), (source, rows[0]["error"])


def test_clips_last_as_long_as_their_source_span(cropped):
    out, result, sources = cropped
    for r in result.rows:
        footage = sources[r["source"]]
        frames, duration = decode_video_times(out / r["clip"])
        want_frames, want_duration = _truth_span(footage, r["start_time"], r["end_time"])
        assert frames == want_frames, r["clip"]
        period = want_duration / want_frames
        assert abs(duration - want_duration) <= period + 1e-3, (r["clip"], duration, want_duration)
        assert r["fps_mode"] == "source"


def test_vfr_clip_keeps_the_source_timing(cropped, phone_vfr):
    """The 24 fps half of the phone file plays at 24 fps, the 30 fps half at 30: no average rate anywhere."""
    out, result, _ = cropped
    rows = sorted((r for r in result.rows if r["source"] == str(phone_vfr.path)), key=lambda r: r["start_time"])
    first, last = rows[0], rows[-1]
    f0, d0 = decode_video_times(out / first["clip"])
    f1, d1 = decode_video_times(out / last["clip"])
    assert f0 / d0 == pytest.approx(30, abs=0.5)  # starts at 0 s: all 30 fps
    assert f1 / d1 == pytest.approx(24, abs=0.5)  # ends at 4 s: all 24 fps


def test_clip_audio_is_the_span_of_the_source(cropped):
    """Audio as long as the clip (40 ms), and the chirp says it comes from the clip's own span of the source."""
    out, result, sources = cropped
    checked = 0
    for r in result.rows:
        footage = sources[r["source"]]
        wave, rate = decode_audio(out / r["clip"])
        _, duration = decode_video_times(out / r["clip"])
        covered = max(0.0, min(footage.audio_duration, r["start_time"] + duration) - r["start_time"])
        if covered == 0:
            assert wave is None and r["has_audio"] is False and r["audio_coverage"] == 0
            continue
        assert abs(len(wave) / rate - duration) <= 0.04, r["clip"]
        assert r["audio_coverage"] == pytest.approx(covered / duration, abs=0.02)
        at = min(covered, duration) / 2
        want = footage.chirp_offset + r["start_time"] + at
        assert chirp_time(wave, rate, at) == pytest.approx(want, abs=0.05), r["clip"]
        checked += 1
    assert checked >= 6


def test_audio_past_the_source_audio_is_silence_not_a_shorter_clip(cropped, short_audio_video):
    out, result, _ = cropped
    rows = [r for r in result.rows if r["source"] == str(short_audio_video.path)]
    straddling = [r for r in rows if r["start_time"] < short_audio_video.audio_duration < r["end_time"]]
    assert straddling, "the fixture should put a clip across the end of the audio"
    for r in straddling:
        wave, rate = decode_audio(out / r["clip"])
        cut = int((short_audio_video.audio_duration - r["start_time"]) * rate)
        before, after = wave[: cut - rate // 20], wave[cut + rate // 20:]
        assert np.sqrt(np.mean(before ** 2)) > 0.1  # the chirp (amplitude 0.3)
        assert len(after) > rate // 2 and np.sqrt(np.mean(after ** 2)) < 0.01  # silence, as long as the video
    after_audio = [r for r in rows if r["start_time"] >= short_audio_video.audio_duration]
    assert after_audio and all(not r["has_audio"] for r in after_audio)
    # each clip's frames are all there although the audio stopped (no -shortest)
    for r in after_audio:
        frames, _ = decode_video_times(out / r["clip"])
        assert frames == r["n_frames"] and frames >= 12


def test_sidecar_describes_the_clip(cropped):
    import json

    out, result, _ = cropped
    for r in result.rows:
        doc = json.loads((out / r["clip"]).with_suffix(".json").read_text())
        frames, duration = decode_video_times(out / r["clip"])
        assert doc["source"] == r["source"] and doc["subject"] == r["source"] and doc["track_id"] == r["track_id"]
        assert doc["frames"] == frames and doc["duration"] == pytest.approx(duration, abs=1e-3)
        assert doc["bytes"] == (out / r["clip"]).stat().st_size


def test_constant_rate_on_request(phone_vfr, tmp_path):
    result = crop_videos([phone_vfr.path], tmp_path, CropOptions(size=64, min_duration=0.5, max_duration=1.5,
                                                                  embed=False, fps=25))
    for r in result.rows:
        frames, duration = decode_video_times(tmp_path / r["clip"])
        assert r["fps_mode"] == "constant" and r["fps"] == 25
        assert frames / duration == pytest.approx(25, abs=0.01)
        _, want = _truth_span(phone_vfr, r["start_time"], r["start_time"] + duration)
        assert abs(duration - want) <= 1 / 24 + 1e-3


def test_resume_redoes_a_clip_whose_file_changed(phone_vfr, tmp_path):
    opts = CropOptions(size=64, min_duration=0.5, max_duration=2.5, embed=False)
    first = crop_videos([phone_vfr.path], tmp_path, opts)
    clip = tmp_path / first.rows[0]["clip"]
    clip.write_bytes(clip.read_bytes()[:2000])  # damaged after the run
    again = crop_videos([phone_vfr.path], tmp_path, opts)
    assert again.stats["resumed_skipped"] == 0
    frames, _ = decode_video_times(clip)
    assert frames == again.rows[0]["n_frames"]


@pytest.mark.parametrize("value", ["nan", "0", "-5", "inf"])
def test_bad_fps_is_a_usage_error_before_any_work(phone_vfr, tmp_path, capsys, value):
    from faceexpr_cli.cli.app import main

    out = tmp_path / "out"
    assert main(["crop", str(phone_vfr.path), "--out", str(out), "--fps", value]) == 2
    err = capsys.readouterr().err
    assert "--fps" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not list(out.rglob("*.mp4"))
