"""decode_clip's DecodedClip field by field: frames picked at a requested rate, start and count, the clip's
own rate otherwise, sizes, audio cut to exactly the returned frames' span (sample counts, channels, rate, the
offset of a sub-window), audio that starts after the first frame, and its errors naming the clip. Also
inspect_clip/verify_clip at their tolerances."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.media.verify import inspect_clip, verify_clip
from faceexpr_cli.media.writer import VideoWriter
from faceexpr_cli.samples.talking_head import write_wav


def level(img: np.ndarray) -> int:
    return int(round(float(img.mean()) / 20))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """1 s at 10 fps (frame k grey 20 k), 32x16, with 1 s of 16 kHz noise: mp4 bytes, and the path."""
    d = tmp_path_factory.mktemp("decode")
    wav = write_wav(d / "noise.wav", np.random.default_rng(5).uniform(-0.5, 0.5, 16000), 16000)
    path = d / "clip.mp4"
    with VideoWriter(path, 10, audio=wav) as w:
        for k in range(10):
            w.write(np.full((16, 32, 3), 20 * k, np.uint8))
    return path.read_bytes(), path


def test_the_clip_as_it_is(clip):
    got = decode_clip(clip[0])
    assert [level(f) for f in got.frames] == list(range(10)) and got.frames.shape == (10, 16, 32, 3)
    assert got.times.tolist() == pytest.approx([k / 10 for k in range(10)])
    assert got.fps == 10.0 and got.source_fps == 10.0 and got.sample_rate == 16000
    assert got.audio.shape == (1, 16000) and got.audio.dtype == np.float32 and np.abs(got.audio).max() > 0.3


@pytest.mark.parametrize(("fps", "shown"), [(None, [0, 1, 2, 3, 4, 4, 4]), (10, [0, 1, 2, 3, 4, 4, 4]),
                                              (20, [0, 0, 1, 1, 2, 2, 3, 3] + [4] * 6)])
def test_a_held_last_frame_lasts_as_long_as_the_file_shows_it(tmp_path, fps, shown):
    # 5 frames at 10 fps, the last shown 0.3 s (a camera's last frame before a pause): 0.7 s in all. The clip's
    # own rate is still 10 fps (the average, 5 / 0.7 s, would drop frame 3)
    wav = write_wav(tmp_path / "noise.wav", np.random.default_rng(6).uniform(-0.5, 0.5, 16000), 16000)
    w = VideoWriter(tmp_path / "held.mp4", 10, audio=wav)
    for k in range(5):
        w.write(np.full((16, 32, 3), 20 * k, np.uint8), time=k / 10)
    w.close(end=0.7)
    got = decode_clip(tmp_path / "held.mp4", fps=fps)
    assert [level(f) for f in got.frames] == shown and got.source_fps == 10.0
    assert got.audio.shape == (1, 11200)  # 0.7 s of audio, the span of the frames returned


def test_a_path_decodes_like_the_bytes(clip):
    a, b = decode_clip(clip[0]), decode_clip(clip[1])
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)


def test_a_faster_rate_repeats_frames(clip):
    got = decode_clip(clip[0], fps=20, audio=False)
    assert got.fps == 20 and got.source_fps == 10.0 and got.audio is None
    assert [level(f) for f in got.frames] == [k // 2 for k in range(20)]
    assert got.times.tolist() == pytest.approx([k / 20 for k in range(20)])


def test_a_start_and_a_count_pick_a_window(clip):
    got = decode_clip(clip[0], start=0.35, num_frames=4, audio=False)
    # output times 0.35, 0.45, ... hold the frames shown then (3, 4, 5, 6); times count from the window's start
    assert [level(f) for f in got.frames] == [3, 4, 5, 6]
    assert got.times.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    rest = decode_clip(clip[0], start=0.35, audio=False)  # to the end: floor(0.65 s x 10) frames
    assert [level(f) for f in rest.frames] == [3, 4, 5, 6, 7, 8]
    more = decode_clip(clip[0], num_frames=50, audio=False)  # more than the clip has: what it has
    assert len(more.frames) == 10


def test_a_frame_time_on_the_grid_is_that_frame(clip):
    got = decode_clip(clip[0], start=0.3, num_frames=2, audio=False)
    assert [level(f) for f in got.frames] == [3, 4]


def test_a_start_past_the_end_gives_the_last_frame(clip):
    got = decode_clip(clip[0], start=5.0, audio=True)
    assert [level(f) for f in got.frames] == [9]
    assert got.audio.shape == (1, 1600) and not got.audio.any()  # one frame period of silence


def test_size_resizes(clip):
    assert decode_clip(clip[0], size=(16, 8), audio=False).frames.shape == (10, 8, 16, 3)


def test_audio_is_the_window_sample_for_sample(clip):
    whole = decode_clip(clip[0]).audio
    got = decode_clip(clip[0], start=0.35, num_frames=4)
    # 4 frames at 10 fps: 0.4 s = 6400 samples, starting 0.35 s = 5600 samples in
    assert got.audio.shape == (1, 6400)
    assert np.array_equal(got.audio, whole[:, 5600:12000])


def test_audio_rate_and_channels_as_asked(clip):
    got = decode_clip(clip[0], sample_rate=8000, channels=2, num_frames=5)
    assert got.sample_rate == 8000 and got.audio.shape == (2, 4000)
    assert np.array_equal(got.audio[0], got.audio[1]) and np.abs(got.audio).max() > 0.2


def test_audio_that_starts_late_is_preceded_by_silence(tmp_path):
    """Video from 0 s, audio (a loud tone) from 0.5 s: the first half second of the clip's audio is silence."""
    path = tmp_path / "late.mp4"
    tb = Fraction(1, 1000)
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 32, 16, "yuv420p"
        vs.time_base = vs.codec_context.time_base = tb
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        for k in range(10):
            f = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 20 * k, np.uint8), format="rgb24")
            f.pts, f.time_base = 100 * k, tb
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
        tone = (0.5 * np.sin(2 * np.pi * 400 * np.arange(8192) / 16000)).astype(np.float32)
        for s in range(0, 8192, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, s:s + 1024].copy(), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, 8000 + s, Fraction(1, 16000)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        late = float(a.start_time * a.time_base)  # where the container puts the audio's start
    assert late == pytest.approx(0.5, abs=0.07)
    got = decode_clip(path).audio[0]
    assert got.shape == (16000,)
    quiet, loud = got[: int((late - 0.02) * 16000)], got[int((late + 0.1) * 16000): int((late + 0.4) * 16000)]
    assert len(quiet) > 6000 and np.abs(quiet).max() < 0.02 and np.abs(loud).max() > 0.3


def test_errors_name_the_clip(tmp_path):
    with pytest.raises(MediaError, match=r"not a readable clip \(") as err:
        decode_clip(b"\x00" * 100, name="shard-3/clip-7")
    assert err.value.path == "shard-3/clip-7"
    wav = write_wav(tmp_path / "a.wav", np.zeros(1600), 16000)
    with pytest.raises(MediaError) as err:
        decode_clip(wav, name="sound")
    assert err.value.path == "sound" and err.value.problem == "has no video stream"


def test_matroska_bytes_decode_too(tmp_path):
    with VideoWriter(tmp_path / "a.mkv", 10) as w:
        for k in range(3):
            w.write(np.full((16, 32, 3), 20 * k, np.uint8))
    got = decode_clip((tmp_path / "a.mkv").read_bytes())
    assert [level(f) for f in got.frames] == [0, 1, 2] and got.audio is None


# -- inspect_clip / verify_clip ------------------------------------------------------------------------
def _timed(times, end, fps=10, offset=0.0) -> bytes:
    buf = io.BytesIO()
    w = VideoWriter(buf, fps)
    for k, t in enumerate(times):
        w.write(np.full((16, 16, 3), 20 * k, np.uint8), time=t + offset)
    w.close(end=end + offset)
    return buf.getvalue()


def test_inspect_measures_from_the_first_frame_to_the_last_ones_end():
    check = inspect_clip(_timed([0.0, 0.1, 0.5], end=0.7, offset=0.25))
    assert check.frames == 3 and check.duration == pytest.approx(0.7, abs=1e-4) and check.audio_duration is None


def test_inspect_reads_a_path_and_names_it_in_errors(clip, tmp_path):
    check = inspect_clip(clip[1])
    assert check.frames == 10 and check.duration == pytest.approx(1.0) and check.audio_duration == pytest.approx(1.0)
    wav = write_wav(tmp_path / "a.wav", np.zeros(1600), 16000)
    with pytest.raises(MediaError) as err:
        inspect_clip(wav)
    assert err.value.path == str(wav) and err.value.problem == "the written file has no video stream"


@pytest.mark.parametrize(("claim", "ok"), [(1.112, True), (1.113, False), (0.9082, True), (0.9081, False)])
def test_verify_duration_tolerance_is_one_period_and_a_millisecond(claim, ok):
    data = _timed([k / 10 for k in range(10)], end=1.0)  # 10 frames, 1.000 s
    # allowed: |1 - D| <= D / 10 + 0.001, i.e. 0.999 / 1.1 = 0.90818 <= D <= 1.001 / 0.9 = 1.11222
    if ok:
        assert verify_clip(data, frames=10, duration=claim, audio=False).frames == 10
    else:
        with pytest.raises(MediaError, match=rf"the written file lasts 1\.000 s, not {claim:.3f} s"):
            verify_clip(data, frames=10, duration=claim, audio=False)


def test_verify_audio_tolerance_is_40_ms(clip):
    audio = inspect_clip(clip[0]).audio_duration
    assert verify_clip(clip[0], frames=10, duration=audio + 0.039, audio=True).frames == 10
    with pytest.raises(MediaError, match="the written audio lasts 1.000 s, the video 1.041 s") as err:
        verify_clip(clip[0], frames=10, duration=audio + 0.041, audio=True)
    assert err.value.path == "clip"  # bytes without a name
    with pytest.raises(MediaError) as err:
        verify_clip(clip[0], frames=10, duration=audio + 0.041, audio=True, name="k7")
    assert err.value.path == "k7" and err.value.problem == "the written audio lasts 1.000 s, the video 1.041 s"
    with pytest.raises(MediaError, match="the written audio lasts"):
        verify_clip(clip[0], frames=10, duration=audio - 0.041, audio=True)


def test_verify_frame_count_tolerance_is_one(clip):
    verify_clip(clip[0], frames=9, duration=1.0, audio=True)
    with pytest.raises(MediaError, match="holds 10 frames, not 8") as err:
        verify_clip(clip[0], frames=8, duration=1.0, audio=True)
    assert err.value.path == "clip"
    with pytest.raises(MediaError) as err:
        verify_clip(clip[1], frames=8, duration=1.0, audio=True)
    assert err.value.path == str(clip[1])  # a path names itself
