"""Containers and codecs that phones and editors write besides MP4/AAC: Matroska audio without a stream
duration, PCM audio in QuickTime; and the refusals of a cut past the end and of a span short by two frames."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.clip.synthetic import make_coded_video, tone_with_beeps
from faceexpr_cli.errors import MediaError
from faceexpr_cli.media import run_ffmpeg
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.media.clipping import SpanFrames, encode_span
from faceexpr_cli.media.cut import cut
from faceexpr_cli.media.probe import probe


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    return make_coded_video(tmp_path_factory.mktemp("containers") / "coded.mp4", seconds=1.0, fps=25.0)


def test_matroska_audio_without_a_stream_duration_is_probed(coded, tmp_path):
    mkv = tmp_path / "a.mkv"
    run_ffmpeg(["-i", str(coded.path), "-c", "copy", str(mkv)], coded.path)
    import av

    with av.open(str(mkv)) as c:
        assert c.streams.audio[0].duration is None  # what Matroska leaves out
    info = probe(mkv)
    assert [(a.codec, a.sample_rate, a.channels, a.duration) for a in info.audio] == [("aac", 16000, 1, None)]
    assert info.frame_count == 25 and info.duration == pytest.approx(1.0)
    [a] = probe(coded.path).audio
    assert a.duration == pytest.approx(1.0, abs=0.07)  # MP4 states it


@pytest.mark.parametrize("suffix", [".ts", ".flv"])
def test_containers_whose_frames_carry_no_duration_decode_whole(coded, tmp_path, suffix):
    import av

    from faceexpr_cli.clip.synthetic import read_code

    moved = tmp_path / f"a{suffix}"
    run_ffmpeg(["-i", str(coded.path), "-c", "copy", str(moved)], coded.path)
    with av.open(str(moved)) as c:
        assert {f.duration for f in c.decode(video=0)} == {0}  # what MPEG-TS and FLV leave out
    got = decode_clip(moved)
    # the last frame then lasts one period of the stream's rate: every frame once, and 1 s of audio
    assert [read_code(f) for f in got.frames] == list(range(25)) and got.fps == 25.0
    assert got.audio.shape == (1, 16000)


def test_pcm_audio_decodes_to_floats_in_the_source_range(coded, tmp_path):
    mov = tmp_path / "a.mov"
    run_ffmpeg(["-i", str(coded.path), "-c:v", "copy", "-c:a", "pcm_s16le", str(mov)], coded.path)
    clip = decode_clip(mov.read_bytes())
    assert clip.audio.dtype == np.float32 and clip.audio.shape == (1, 16000)
    peak = float(np.abs(tone_with_beeps(1.0)).max())  # 0.78: the beeps over the tone
    assert abs(float(np.abs(clip.audio).max()) - peak) < 0.05


def test_a_cut_past_the_end_names_the_source(coded, tmp_path):
    with pytest.raises(MediaError) as err:
        cut(coded.path, tmp_path / "late.mp4", 5.0, 6.0)
    assert err.value.message == f"{coded.path}: no frames between 5.000 and 6.000 s"
    assert not list(tmp_path.iterdir())


def test_a_span_may_lack_one_frame_but_not_two():
    frames = [np.zeros((16, 16, 3), np.uint8)] * 5
    times = [i / 25 for i in range(5)]
    short_by_two = SpanFrames(0, frames=frames, times=times, end=0.28, expected=7)
    with pytest.raises(MediaError, match="the video ended 2 frames before the clip's end at 0.280 s"):
        encode_span(0, (0.0, 0.28), short_by_two, frames)
    short_by_one = SpanFrames(0, frames=frames, times=times, end=0.24, expected=6)
    c = encode_span(0, (0.0, 0.24), short_by_one, frames)
    import io

    import av

    with av.open(io.BytesIO(c.data)) as written:  # the five frames, the last one held to the span's end
        packets = [p for p in written.demux(video=0) if p.size]
    assert c.frames == 5 and len(packets) == 5
    assert float((packets[-1].pts + packets[-1].duration) * packets[-1].time_base) == pytest.approx(0.24)


def test_an_mpeg_ts_source_that_starts_late_is_cut_on_its_own_clock(coded, tmp_path):
    import av

    from faceexpr_cli.clip.synthetic import read_code
    from faceexpr_cli.media.clipping import cut_many

    ts = tmp_path / "cam.ts"  # what broadcast and action cameras write: timestamps start near 1.4 s
    run_ffmpeg(["-i", str(coded.path), "-c", "copy", str(ts)], coded.path)
    with av.open(str(ts)) as c:
        v = c.streams.video[0]
        assert 1.4 <= float(v.start_time * v.time_base) < 1.5  # the audio's 1.4 s plus the AAC priming
    exact, fast = (next(cut_many(ts, [(0.4, 0.8)], mode)) for mode in ("exact", "fast"))
    # times count from the video's first frame: [0.4, 0.8) holds frames 10..19
    assert [read_code(f) for f in decode_clip(exact.data, audio=False).frames] == list(range(10, 20))
    assert exact.has_audio and exact.audio_coverage == 1.0 and exact.actual_start == pytest.approx(0.4)
    assert fast.actual_start == 0.0 and read_code(decode_clip(fast.data, audio=False).frames[0]) == 0


def test_an_exact_cut_to_a_size_is_encoded_at_it(coded, tmp_path):
    from faceexpr_cli.media.reader import read_frames

    r = cut(coded.path, tmp_path / "small.mp4", 0.2, 0.6, size=(96, 48))
    info = probe(r.path)
    assert (info.width, info.height) == (96, 48) and info.frame_count == 10
    # the picture is the source's, scaled: compare with the source frame shrunk by 2x2 averaging
    src = read_frames(coded.path, start=0.2, max_frames=1)[0].astype(float)
    small = src.reshape(48, 2, 96, 2, 3).mean(axis=(1, 3))
    assert np.abs(read_frames(r.path, max_frames=1)[0] - small).mean() < 8.0

