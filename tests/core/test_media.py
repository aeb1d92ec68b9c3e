from __future__ import annotations

import numpy as np
import pytest
from mediacheck import chirp_time, decode_audio

from faceexpr_cli.errors import MediaError, MissingFileError, UsageError
from faceexpr_cli.media import (
    VideoWriter,
    cut,
    extract_audio,
    iter_frames,
    keyframe_times,
    probe,
    read_frames,
    write_video,
)

from .conftest import frame_index, index_frames

TOL = 0.02  # s of source time, from the chirp's frequency (100 Hz/s: 2 Hz)


@pytest.fixture(scope="module")
def chirp_wav(tmp_path_factory):
    """2 s of the footage chirp (its frequency says the source time), 16 kHz mono."""
    from faceexpr_cli.samples.footage import chirp
    from faceexpr_cli.samples.talking_head import write_wav

    path = tmp_path_factory.mktemp("chirp") / "chirp.wav"
    return write_wav(path, chirp(np.arange(32000) / 16000), 16000)


@pytest.fixture(scope="module")
def chirp_video(chirp_wav):
    """cfr.mp4's 50 index frames with the chirp as its audio."""
    return write_video(chirp_wav.with_name("chirp.mp4"), index_frames(50), 25, audio=chirp_wav)


def test_probe_cfr_with_audio(media_dir):
    info = probe(media_dir / "cfr.mp4")
    assert (info.width, info.height) == (96, 64)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == 50
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.codec == "h264" and not info.is_vfr and info.rotation == 0
    assert info.has_audio and info.audio[0].codec == "aac"


def test_probe_audio_less(media_dir):
    info = probe(media_dir / "silent.mp4")
    assert not info.has_audio and info.frame_count == 25


def test_sequential_reader_returns_every_frame_in_order(media_dir):
    frames = list(iter_frames(media_dir / "cfr.mp4"))
    assert [frame_index(f.image) for f in frames] == list(range(50))
    assert frames[10].time == pytest.approx(0.4)


def test_reader_time_range_resize_and_fps(media_dir):
    frames = list(iter_frames(media_dir / "cfr.mp4", start=1.0, end=1.4))
    assert [frame_index(f.image) for f in frames] == list(range(25, 35))
    small = read_frames(media_dir / "cfr.mp4", size=(48, 32), max_frames=3)
    assert small.shape == (3, 32, 48, 3)
    resampled = list(iter_frames(media_dir / "cfr.mp4", fps=10))
    assert len(resampled) == 20
    # each output time t holds the source frame shown at t (25 fps source: frame floor(t*25))
    assert [frame_index(f.image) for f in resampled[:5]] == [0, 2, 5, 7, 10]


def test_vfr_video_is_detected_and_resampled(vfr_video):
    info = probe(vfr_video)
    assert info.is_vfr
    assert info.frame_count == 30
    assert info.duration == pytest.approx(1.5, abs=0.05)
    native = list(iter_frames(vfr_video))
    assert len(native) == 30
    assert native[10].time == pytest.approx(1.0, abs=1e-3)
    even = list(iter_frames(vfr_video, fps=20))
    # the container states that the last frame lasts 40 ms (the source's rate): the file runs 1.515 s
    assert len(even) == 31
    # 20 fps over the slow part repeats frames; over the fast part it drops them
    assert [frame_index(f.image) for f in even[:4]] == [0, 0, 1, 1]
    assert frame_index(even[24].image) == 10 + 8  # t = 1.2 s -> frame 18


def test_rotated_phone_video_is_upright(rotated_video):
    info = probe(rotated_video)
    assert info.rotation == 90
    assert (info.width, info.height) == (64, 96)
    img = read_frames(rotated_video, max_frames=1)[0]
    assert img.shape == (96, 64, 3)
    # the red block was top-left in the coded picture; a 90 degree display rotation puts it bottom-left
    ys, xs = np.nonzero(img[..., 0] > 200)
    assert ys.mean() > 64 and xs.mean() < 32
    resized = read_frames(rotated_video, size=(32, 48), max_frames=1)[0]
    assert resized.shape == (48, 32, 3)


def test_hevc_decodes(hevc_video):
    info = probe(hevc_video)
    assert info.codec == "hevc" and info.frame_count == 50 and info.has_audio
    frames = read_frames(hevc_video)
    assert [frame_index(f) for f in frames[:5]] == [0, 1, 2, 3, 4]


def test_cut_exact_is_frame_accurate_and_keeps_audio(media_dir, tmp_path):
    res = cut(media_dir / "cfr.mp4", tmp_path / "c.mp4", 0.5, 1.3, mode="exact")
    frames = read_frames(res.path)
    # frames whose times fall in [0.5, 1.3): 13 (0.52 s) .. 32 (1.28 s)
    assert [frame_index(f) for f in frames] == list(range(13, 33))
    info = probe(res.path)
    assert info.has_audio and info.duration == pytest.approx(0.8, abs=0.05)
    assert res.actual_start == pytest.approx(0.52)


def test_cut_audio_is_the_source_audio_of_the_span(chirp_video, tmp_path):
    """Measured on the decoded audio: the chirp at clip time t is the source's chirp at the first frame's time + t."""
    exact = cut(chirp_video, tmp_path / "e.mp4", 0.5, 1.3, mode="exact")
    fast = cut(chirp_video, tmp_path / "f.mp4", 0.5, 1.3, mode="fast")
    for res, first in ((exact, 13), (fast, frame_index(read_frames(fast.path, max_frames=1)[0]))):
        wave, rate = decode_audio(res.path)
        assert len(wave) / rate == pytest.approx(probe(res.path).duration, abs=0.1)
        lead = _audio_lead(res.path)  # a stream copy may start its audio a little before the first frame
        for at in (0.15, 0.4, 0.65):
            got = chirp_time(wave, rate, at)
            assert got == pytest.approx(first / 25 + at + lead, abs=TOL), (res.path, at, lead)


def _audio_lead(path) -> float:
    """How far the audio stream starts after the video stream (s), from the container's start times."""
    import av

    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        return float(a.start_time * a.time_base) - float(v.start_time * v.time_base)


def test_cut_fast_snaps_to_key_frame(media_dir, tmp_path):
    keys = keyframe_times(media_dir / "cfr.mp4")
    assert keys[0] == 0.0
    res = cut(media_dir / "cfr.mp4", tmp_path / "f.mp4", 0.5, 1.3, mode="fast")
    assert res.actual_start == max(k for k in keys if k <= 0.5)
    assert res.snap <= 0
    frames = read_frames(res.path)
    assert frame_index(frames[0]) == round(res.actual_start * 25)
    wave, rate = decode_audio(res.path)
    assert wave is not None and np.abs(wave).max() > 0.1  # the tone, not silence


def test_cut_rejects_bad_ranges_and_modes(media_dir, tmp_path):
    with pytest.raises(UsageError):
        cut(media_dir / "cfr.mp4", tmp_path / "x.mp4", 1.0, 1.0)
    with pytest.raises(UsageError):
        cut(media_dir / "cfr.mp4", tmp_path / "x.mp4", 0.0, 1.0, mode="slow")
    assert not (tmp_path / "x.mp4").exists()


def test_extract_audio(media_dir, tmp_path):
    import wave

    wav = extract_audio(media_dir / "cfr.mp4", tmp_path / "a.wav", start=0.5, end=1.5)
    with wave.open(str(wav)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        assert w.getnframes() / 16000 == pytest.approx(1.0, abs=0.05)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
    # a 440 Hz tone: ~440 upward zero crossings per second, not silence
    assert np.abs(pcm).max() > 0.1 and abs(np.sum((pcm[:-1] < 0) & (pcm[1:] >= 0)) / (len(pcm) / 16000) - 440) < 5
    with pytest.raises(MediaError, match="no audio stream"):
        extract_audio(media_dir / "silent.mp4", tmp_path / "b.wav")
    assert not (tmp_path / "b.wav").exists()


def test_writer_muxes_audio_span_and_is_atomic(media_dir, tmp_path):
    out = tmp_path / "w.mp4"
    write_video(out, index_frames(10, 33, 21), 25, audio=media_dir / "tone.wav", audio_start=0.5)
    info = probe(out)
    assert (info.width, info.height) == (34, 22)  # odd sizes padded for yuv420p
    assert info.has_audio and info.duration == pytest.approx(0.4, abs=0.05)
    assert [frame_index(f) for f in read_frames(out)] == list(range(10))
    failed = tmp_path / "failed.mp4"
    with pytest.raises(RuntimeError), VideoWriter(failed, 25) as w:
        w.write(index_frames(1)[0])
        raise RuntimeError("boom")
    assert not failed.exists() and not list(tmp_path.glob(".failed*"))


def test_writer_audio_span_starts_at_audio_start(chirp_wav, chirp_video, tmp_path):
    for source in (chirp_wav, chirp_video):  # an audio file, or a video's audio stream
        out = tmp_path / f"span_{source.suffix[1:]}.mp4"
        write_video(out, index_frames(15), 25, audio=source, audio_start=0.5)
        wave, rate = decode_audio(out)
        assert len(wave) / rate == pytest.approx(0.6, abs=0.03)
        for at in (0.1, 0.3, 0.5):
            assert chirp_time(wave, rate, at) == pytest.approx(0.5 + at, abs=TOL), (source.name, at)


def test_extract_audio_is_the_span(chirp_video, tmp_path):
    wav = extract_audio(chirp_video, tmp_path / "span.wav", start=0.5, end=1.5)
    wave, rate = decode_audio(wav)
    assert len(wave) / rate == pytest.approx(1.0, abs=0.02)
    for at in (0.1, 0.5, 0.9):
        assert chirp_time(wave, rate, at) == pytest.approx(0.5 + at, abs=TOL), at


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.mp4", b"", "empty file"),
        ("notes.mp4", b"this is not a video\n" * 20, "not a readable media file"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError, match=expected) as exc:
        probe(path)
    assert str(path) in exc.value.one_line()


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError):
        probe(tmp_path / "nope.mp4")


def test_truncated_mp4_without_index(truncated_video):
    with pytest.raises(MediaError) as exc:
        probe(truncated_video)
    assert "truncated" in exc.value.one_line() and str(truncated_video) in exc.value.one_line()


def test_truncated_mp4_with_index_is_reported_not_silently_short(truncated_faststart):
    with pytest.raises(MediaError, match="is truncated"):
        probe(truncated_faststart)
    with pytest.raises(MediaError, match="is truncated"):
        list(iter_frames(truncated_faststart))
    # a range inside the part that is present still reads
    assert len(list(iter_frames(truncated_faststart, end=1.0))) == 25


def test_audio_only_file(media_dir):
    with pytest.raises(MediaError, match="no video stream"):
        probe(media_dir / "tone.wav")


def test_probe_for_processing_checks_frame_size(media_dir):
    from faceexpr_cli.media.probe import probe_for_processing

    assert probe_for_processing(media_dir / "cfr.mp4", max_pixels=96 * 64).frame_count == 50
    with pytest.raises(MediaError, match="resolution 96x64 is above the limit") as exc:
        probe_for_processing(media_dir / "cfr.mp4", max_pixels=1000, hint="raise --max-pixels")
    assert "raise --max-pixels" in exc.value.one_line()


def test_writer_keeps_frame_times_or_resamples_on_purpose(tmp_path):
    """Frames 0-3 shown for 0.1, 0.1, 0.3 and 0.1 s: kept as given, or held on a 20 fps grid."""
    import av

    times, end = [0.0, 0.1, 0.2, 0.5], 0.6
    frames = index_frames(4)
    kept = tmp_path / "kept.mp4"
    w = VideoWriter(kept, 10)
    for f, t in zip(frames, times, strict=True):
        w.write(f, time=t)
    w.close(end=end)
    with av.open(str(kept)) as c:
        vs = c.streams.video[0]
        got = sorted((float(fr.pts * vs.time_base), frame_index(fr.to_ndarray(format="rgb24"))) for fr in c.decode(vs))
    assert [round(t, 3) for t, _ in got] == times and [i for _, i in got] == [0, 1, 2, 3]
    even = tmp_path / "even.mp4"
    w = VideoWriter(even, constant_fps=20)
    for f, t in zip(frames, times, strict=True):
        w.write(f, time=t)
    w.close(end=end)
    assert w.frames == 12 and w.duration == pytest.approx(0.6)
    shown = [frame_index(f.image) for f in iter_frames(even)]
    assert shown == [0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3]
