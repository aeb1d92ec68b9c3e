"""VideoWriter's options and rules, measured on the written file with plain PyAV: suffixes and containers, the
default rate and frame times, size, crf, faststart, memory targets, the exact messages of every refusal, the
temporary name and what an abort leaves, and when a clip gets an audio track and how much of it is real."""

from __future__ import annotations

import io
import os
from fractions import Fraction

import av
import numpy as np
import pytest

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media.audio import AudioCursor
from faceexpr_cli.media.writer import VideoWriter, rate_fraction, temp_path, write_timed, write_video
from faceexpr_cli.samples.talking_head import write_wav


def grey(i: int, w: int = 32, h: int = 32) -> np.ndarray:
    return np.full((h, w, 3), 20 * i, np.uint8)


def decoded(source) -> list[tuple[float, int]]:
    """(pts in s, grey level / 20) of each decoded frame, plain PyAV."""
    target = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with av.open(target) as c:
        vs = c.streams.video[0]
        return [(float(f.pts * vs.time_base), int(round(f.to_ndarray(format="rgb24").mean() / 20)))
                for f in c.decode(vs)]


def stream_facts(path):
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        return c.format.name, c.metadata.get("major_brand"), vs.codec_context.width, vs.codec_context.height, bool(
            c.streams.audio)


@pytest.fixture(scope="module")
def wav2s(tmp_path_factory):
    """2 s of 16 kHz mono noise (PCM: the writer's source audio)."""
    rng = np.random.default_rng(0)
    return write_wav(tmp_path_factory.mktemp("wav") / "noise.wav", rng.uniform(-0.5, 0.5, 32000), 16000)


# -- targets ----------------------------------------------------------------------------------------------
def test_an_unsupported_suffix_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(MediaError) as err:
        VideoWriter(tmp_path / "out.avi", 25)
    assert err.value.path == str(tmp_path / "out.avi")
    assert err.value.problem == "unsupported video suffix '.avi'" and err.value.hint == "use .mp4, .mov or .mkv"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "fmt", "brand"), [("a.MP4", "mov,mp4,m4a,3gp,3g2,mj2", "isom"),
                                                    ("a.m4v", "mov,mp4,m4a,3gp,3g2,mj2", "isom"),
                                                    ("a.mov", "mov,mp4,m4a,3gp,3g2,mj2", "qt  "),
                                                    ("a.Mkv", "matroska,webm", None)])
def test_each_suffix_gets_its_container(tmp_path, name, fmt, brand):
    path = write_video(tmp_path / "sub" / name, [grey(i) for i in range(3)], 10)
    assert path == tmp_path / "sub" / name
    got_fmt, got_brand, *_ = stream_facts(path)
    assert got_fmt == fmt and got_brand == brand
    assert sorted(p.name for p in path.parent.iterdir()) == [name]  # no temporary file left beside it


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_mp4_and_mov_files_have_the_index_first(tmp_path, suffix):
    data = write_video(tmp_path / f"a{suffix}", [grey(i) for i in range(3)], 10).read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_a_memory_target_is_mp4_and_named_clip_mp4(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    w = VideoWriter(buf, 10)
    for i in range(3):
        w.write(grey(i))
    assert w.close().name == "clip.mp4"
    assert list(tmp_path.iterdir()) == []  # nothing on disk
    data = buf.getvalue()
    assert data[4:8] == b"ftyp" and [g for _, g in decoded(data)] == [0, 1, 2]
    with pytest.raises(MediaError) as err:
        VideoWriter(io.BytesIO(), 10).close()
    assert err.value.path == "clip.mp4" and err.value.problem == "no frames were written"


def test_temp_path_is_hidden_beside_the_file_and_unique_to_the_process(tmp_path):
    assert temp_path(tmp_path / "x" / "clip.mp4") == tmp_path / "x" / f".clip.mp4.{os.getpid()}.part"


def test_the_file_appears_only_on_close_and_an_abort_leaves_nothing(tmp_path):
    path = tmp_path / "a.mp4"
    w = VideoWriter(path, 10)
    for i in range(30):  # enough for the encoder to hand out packets (the muxer opens the file on the first)
        w.write(grey(i % 10))
    assert not path.exists() and temp_path(path).exists()
    w.abort()
    assert list(tmp_path.iterdir()) == []
    w = VideoWriter(path, 10)
    w.write(grey(1))
    assert w.close() == path and path.exists() and not temp_path(path).exists()


def test_a_bad_codec_is_one_error_and_leaves_no_file(tmp_path):
    with pytest.raises(MediaError, match=r"cannot start the encoder \(") as err:
        w = VideoWriter(tmp_path / "a.mp4", 10, codec="no-such-codec")
        w.write(grey(1))
    assert err.value.path == str(tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []


# -- frames -----------------------------------------------------------------------------------------------
def test_the_default_rate_is_25_and_untimed_frames_are_one_period_apart(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4")
    for i in range(4):
        w.write(grey(i))
    w.close()
    assert w.fps == 25.0 and w.frames == 4 and w.duration == pytest.approx(0.16)
    assert [t for t, _ in decoded(tmp_path / "a.mp4")] == pytest.approx([0.0, 0.04, 0.08, 0.12], abs=1e-6)


def test_untimed_frames_follow_the_last_timed_one(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", 10)
    w.write(grey(0), time=0.5)
    w.write(grey(1))
    w.write(grey(2), time=1.0)
    w.write(grey(3))
    w.close()
    got = decoded(tmp_path / "a.mp4")
    # times as written (the first frame's 0.5 s is kept: times are the clip's own)
    assert [t for t, _ in got] == pytest.approx([0.5, 0.6, 1.0, 1.1], abs=1e-6)
    assert [g for _, g in got] == [0, 1, 2, 3] and w.duration == pytest.approx(1.2)


def test_frame_times_must_increase_by_more_than_a_microsecond(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", 10)
    w.write(grey(0), time=0.0)
    with pytest.raises(ValueError, match=r"^frame times must increase \(0\.000001 after 0\.000000\)$"):
        w.write(grey(1), time=1e-6)  # exactly the tolerance: the same frame time
    with pytest.raises(ValueError, match=r"frame times must increase \(-0\.100000 after 0\.000000\)"):
        w.write(grey(1), time=-0.1)
    w.write(grey(1), time=0.1)
    w.close()
    assert w.frames == 2


def test_end_at_or_before_the_last_frame_means_one_period_more(tmp_path):
    for end, want in ((0.3, 0.4), (0.3 + 5e-7, 0.4), (0.31, 0.31), (None, 0.4)):
        w = VideoWriter(tmp_path / "a.mkv", 10)
        for i in range(4):
            w.write(grey(i))
        w.close(end=end)
        assert w.duration == pytest.approx(want), end


@pytest.mark.parametrize(("frame", "message"), [
    (np.zeros((8, 8, 3), np.float32), r"frames must be HxWx3 uint8, got \(8, 8, 3\) float32"),
    (np.zeros((8, 8), np.uint8), r"frames must be HxWx3 uint8, got \(8, 8\) uint8"),
    (np.zeros((8, 8, 4), np.uint8), r"frames must be HxWx3 uint8, got \(8, 8, 4\) uint8"),
])
def test_frames_that_are_not_rgb_uint8_are_refused(tmp_path, frame, message):
    with pytest.raises(ValueError, match=message):
        VideoWriter(tmp_path / "a.mp4", 10).write(frame)
    assert list(tmp_path.iterdir()) == []


def test_a_frame_of_another_size_is_refused(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", 10)
    w.write(grey(0, 33, 31))
    with pytest.raises(ValueError, match=r"frame size changed from \(33, 31\) to \(34, 32\)"):
        w.write(grey(0, 34, 32))  # the encoded size, but not the size handed in
    w.abort()


def test_a_one_pixel_frame_is_padded_to_two_and_a_zero_size_is_refused(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", 10)
    w.write(grey(3, 1, 1))
    assert w.size_written == (2, 2)
    w.close()
    assert stream_facts(tmp_path / "a.mp4")[2:4] == (2, 2)
    with pytest.raises(MediaError, match="frame size 0x32 is too small to encode") as err:  # the size asked for
        VideoWriter(tmp_path / "b.mp4", 10, size=(0, 32)).write(grey(1))
    assert err.value.path == str(tmp_path / "b.mp4") and not (tmp_path / "b.mp4").exists()


def test_size_scales_the_frames_and_is_made_even(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", 10, size=(47, 24))
    assert w.size_written == (0, 0)  # nothing encoded yet
    frame = grey(5)
    frame[:, 16:] = 220  # left half 100, right half 220: scaled, not padded
    for _ in range(2):
        w.write(frame)
    w.close()
    assert w.size_written == (48, 24)
    with av.open(str(tmp_path / "a.mp4")) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert img.shape == (24, 48, 3)
    assert abs(img[:, :20].mean() - 100) < 6 and abs(img[:, 28:].mean() - 220) < 6


def test_a_higher_crf_writes_a_smaller_file(tmp_path):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    fine = write_video(tmp_path / "fine.mp4", frames, 10).stat().st_size  # default crf 18
    coarse = write_video(tmp_path / "coarse.mp4", frames, 10, crf=40).stat().st_size
    finer = write_video(tmp_path / "finer.mp4", frames, 10, crf=10).stat().st_size
    assert coarse < fine / 2 and finer > fine


def test_an_av_frame_is_written_as_given(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", 10)
    for i in range(3):
        w.write(av.VideoFrame.from_ndarray(grey(i, 16, 12), format="rgb24"))
    w.close()
    assert w.size_written == (16, 12) and [g for _, g in decoded(tmp_path / "a.mp4")] == [0, 1, 2]


def test_rate_fraction_keeps_ntsc_rates_exact():
    assert rate_fraction(30000 / 1001) == Fraction(30000, 1001)
    assert rate_fraction(24000 / 1001) == Fraction(24000, 1001)
    assert rate_fraction(25.0) == 25


# -- constant rate ----------------------------------------------------------------------------------------
def test_constant_rate_accepts_repeated_times_and_keeps_the_latest(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", constant_fps=10)
    assert w.fps == 10.0 and w.constant_fps == 10.0
    w.write(grey(1), time=0.0)
    w.write(grey(2), time=0.0)  # replaces the held frame
    w.write(grey(3), time=0.2)
    w.close()
    assert [g for _, g in decoded(tmp_path / "a.mp4")] == [2, 2, 3] and w.duration == pytest.approx(0.3)


def test_constant_rate_without_times_steps_one_output_period(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", 50, constant_fps=10)  # constant_fps wins over fps
    for i in range(3):
        w.write(grey(i))
    w.close()
    assert w.fps == 10.0 and w.frames == 3 and w.duration == pytest.approx(0.3)
    assert [t for t, _ in decoded(tmp_path / "a.mp4")] == pytest.approx([0.0, 0.1, 0.2], abs=1e-6)


# -- audio ------------------------------------------------------------------------------------------------
def _with_audio(path, audio, frames=10, fps=10, **kw) -> VideoWriter:
    w = VideoWriter(path, fps, audio=audio, **kw)
    for i in range(frames):
        w.write(grey(i % 10))
    w.close()
    return w


def _audio_samples(path) -> tuple[int, int] | None:
    """(samples the stream's duration states, rate) of the written audio, or None without a track."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        a = c.streams.audio[0]
        return int(a.duration * a.time_base * a.codec_context.sample_rate), a.codec_context.sample_rate


@pytest.mark.parametrize(("start", "coverage"), [(0.0, 1.0), (0.5, 1.0), (1.5, 0.5), (1.9985, 0.0015)])
def test_audio_coverage_is_the_share_of_real_source_samples(tmp_path, wav2s, start, coverage):
    # a 1 s clip of a 2 s source from ``start``: real audio up to the source's end, silence after
    w = _with_audio(tmp_path / "a.mp4", wav2s, audio_start=start)
    assert w.has_audio and w.audio_coverage == pytest.approx(coverage)
    assert _audio_samples(tmp_path / "a.mp4") == (16000, 16000)  # the whole second, silence included


@pytest.mark.parametrize(("start", "duration"), [(1.999, None), (2.5, None), (-0.004, 0.005), (-1.0, 0.5)])
def test_a_clip_wholly_outside_the_source_audio_gets_no_track(tmp_path, wav2s, start, duration):
    # within a millisecond of the source audio's end (2 s) or start (0 s) counts as outside
    w = _with_audio(tmp_path / "a.mp4", wav2s, audio_start=start, audio_duration=duration)
    assert not w.has_audio and w.audio_coverage == 0.0
    assert _audio_samples(tmp_path / "a.mp4") is None


def test_a_clip_that_ends_just_inside_the_source_audio_gets_a_track(tmp_path, wav2s):
    w = _with_audio(tmp_path / "a.mp4", wav2s, audio_start=-0.004, audio_duration=0.006)
    assert w.has_audio and _audio_samples(tmp_path / "a.mp4") == (16000, 16000)


def test_the_source_samples_come_through_in_place(tmp_path):
    # loud from 0.25 s of the source on: a clip from 0.125 s is silent for its first 0.125 s
    wave = np.zeros(16000)
    wave[4000:] = 0.5 * np.sin(2 * np.pi * 500 * np.arange(12000) / 16000)
    wav = write_wav(tmp_path / "step.wav", wave, 16000)
    out = tmp_path / "a.mp4"
    _with_audio(out, wav, frames=5, audio_start=0.125)
    with av.open(str(out)) as c:
        got = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(c.streams.audio[0])])
    env = np.convolve(np.abs(got) > 0.2, np.ones(32), mode="same") > 0
    onset = np.flatnonzero(env)[0] / 16000
    # the decoder drops the encoder's priming (the edit list says how much): the step is at 0.125 s
    assert onset == pytest.approx(0.125, abs=0.005)


def test_a_shared_cursor_is_left_open_and_an_own_one_is_closed(tmp_path, wav2s, monkeypatch):
    closed = []
    monkeypatch.setattr(AudioCursor, "close", lambda self: closed.append(self))
    cursor = AudioCursor(wav2s)
    _with_audio(tmp_path / "a.mp4", cursor, audio_start=0.0)
    _with_audio(tmp_path / "b.mp4", cursor, audio_start=1.0)  # the same cursor, further on
    assert closed == []
    _with_audio(tmp_path / "c.mp4", wav2s)
    assert len(closed) == 1 and closed[0] is not cursor
    assert _audio_samples(tmp_path / "b.mp4") == (16000, 16000)


def test_a_source_without_audio_gives_a_clip_without_audio(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", [grey(i) for i in range(3)], 10)
    w = _with_audio(tmp_path / "a.mp4", silent)
    assert not w.has_audio and _audio_samples(tmp_path / "a.mp4") is None


# -- write_timed ------------------------------------------------------------------------------------------
def test_write_timed_uses_the_table_and_its_end(tmp_path):
    frames = [grey(i, 16, 8) for i in range(3)]
    n, shape = write_timed(tmp_path / "a.mp4", frames, [0.0, 0.1, 0.5], end=0.7, fps=10)
    assert (n, shape) == (3, (8, 16, 3))
    got = decoded(tmp_path / "a.mp4")
    assert [t for t, _ in got] == pytest.approx([0.0, 0.1, 0.5], abs=1e-6)
    with av.open(str(tmp_path / "a.mp4")) as c:
        vs = c.streams.video[0]
        assert float(vs.duration * vs.time_base) == pytest.approx(0.7, abs=1e-4)


def test_write_timed_frames_past_the_table_follow_at_fps_and_ignore_the_end(tmp_path):
    frames = [grey(i) for i in range(4)]
    n, _ = write_timed(tmp_path / "a.mp4", frames, [0.0, 0.2], end=5.0, fps=10)
    assert n == 4
    assert [t for t, _ in decoded(tmp_path / "a.mp4")] == pytest.approx([0.0, 0.2, 0.3, 0.4], abs=1e-6)
    with av.open(str(tmp_path / "a.mp4")) as c:
        vs = c.streams.video[0]
        assert float(vs.duration * vs.time_base) == pytest.approx(0.5, abs=1e-4)


def test_write_timed_leaves_no_file_on_error(tmp_path):
    def frames():
        yield grey(0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_timed(tmp_path / "a.mp4", frames(), [0.0, 0.1], end=0.2, fps=10)
    assert list(tmp_path.iterdir()) == []
