"""AudioCursor sample for sample against the PCM it reads (16-bit WAV: exact as float32), silence and
``last_real`` outside the stream, when it seeks (backwards, far ahead) and when it keeps its buffer, its extent
on the video clock, and the layouts it names."""

from __future__ import annotations

import wave
from fractions import Fraction

import av
import numpy as np
import pytest

from faceexpr_cli.media.audio import AudioCursor

RATE = 16000


def write_pcm(path, samples: np.ndarray) -> np.ndarray:
    """(C, N) int16 samples as a WAV; returns them as the float32 a decoder gives (x / 32768)."""
    data = np.asarray(samples, np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[0])
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.T.tobytes())
    return data.astype(np.float32) / 32768


@pytest.fixture(scope="module")
def wav5(tmp_path_factory):
    """5 s of mono noise: every sample different, so an offset of one sample shows."""
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("cursor") / "noise.wav"
    return path, write_pcm(path, rng.integers(-20000, 20000, (1, 5 * RATE)))


@pytest.fixture()
def cursor(wav5):
    c = AudioCursor(wav5[0])
    yield c
    c.close()


@pytest.fixture()
def restarts(monkeypatch):
    calls = []
    real = AudioCursor._restart

    def spy(self, at):
        calls.append(round(at, 6))
        real(self, at)

    monkeypatch.setattr(AudioCursor, "_restart", spy)
    return calls


def test_stream_facts(cursor):
    assert cursor.rate == RATE and cursor.channels == 1 and cursor.layout == "mono" and cursor.t0 == 0.0
    assert cursor.extent == (0.0, 5.0)


def test_a_span_is_exactly_the_source_samples(cursor, wav5):
    pcm = wav5[1]
    got = cursor.read(0.25, 0.5)
    assert got.shape == (1, 8000) and got.dtype == np.float32
    assert np.array_equal(got, pcm[:, 4000:12000])
    assert cursor.last_real == 8000


def test_consecutive_spans_join_without_a_gap(cursor, wav5, restarts):
    pcm = wav5[1]
    parts = [cursor.read(k * 0.1, 0.1) for k in range(12)]
    assert np.array_equal(np.concatenate(parts, axis=1), pcm[:, :12 * 1600])
    assert restarts == [0.0]  # one seek for the first span only


def test_a_span_over_the_end_is_padded_with_silence(cursor, wav5):
    pcm = wav5[1]
    got = cursor.read(4.9, 0.2)
    assert got.shape == (1, 3200) and cursor.last_real == 1600
    assert np.array_equal(got[:, :1600], pcm[:, -1600:]) and not got[:, 1600:].any()
    assert not cursor.read(6.0, 0.1).any() and cursor.last_real == 0


def test_a_span_before_the_start_is_padded_with_silence(cursor, wav5):
    pcm = wav5[1]
    got = cursor.read(-0.1, 0.2)
    assert cursor.last_real == 1600
    assert not got[:, :1600].any() and np.array_equal(got[:, 1600:], pcm[:, :1600])


def test_reading_backwards_seeks_and_is_still_exact(cursor, wav5, restarts):
    pcm = wav5[1]
    cursor.read(3.0, 0.1)
    got = cursor.read(0.5, 0.1)
    assert np.array_equal(got, pcm[:, 8000:9600])
    assert restarts == [3.0, 0.5]


def test_a_second_before_the_last_start_is_kept_for_overlapping_clips(cursor, wav5, restarts):
    pcm = wav5[1]
    for start in (0.0, 1.5, 2.5):  # decoded forward from 0 s: no seek after the first
        cursor.read(start, 0.1)
    assert np.array_equal(cursor.read(1.6, 0.1), pcm[:, 25600:27200])  # 0.9 s back: still buffered
    assert restarts == [0.0]
    assert np.array_equal(cursor.read(1.4, 0.1), pcm[:, 22400:24000])  # 1.1 s back: gone, seek again
    assert restarts == [0.0, 1.4]


def test_only_a_span_more_than_two_seconds_ahead_seeks(cursor, wav5, restarts):
    pcm = wav5[1]
    cursor.read(0.0, 0.1)  # buffered to at least 0.1 s
    assert np.array_equal(cursor.read(1.5, 0.1), pcm[:, 24000:25600])  # ahead, but decoded forward
    assert restarts == [0.0]
    cursor.read(4.6, 0.1)  # more than 2 s past what is buffered
    assert restarts == [0.0, 4.6]


def test_extent_and_spans_are_on_the_given_clock(wav5):
    pcm = wav5[1]
    c = AudioCursor(wav5[0], t0=0.5)  # a video that starts 0.5 s into the audio's clock
    try:
        assert c.t0 == 0.5 and c.extent == (-0.5, 4.5)
        assert np.array_equal(c.read(0.0, 0.1), pcm[:, 8000:9600])
    finally:
        c.close()


def test_stereo_is_named_stereo_and_keeps_its_channels(tmp_path):
    left = np.arange(-8000, 8000, dtype=np.int16)
    pcm = write_pcm(tmp_path / "st.wav", np.stack([left, -left]))
    c = AudioCursor(tmp_path / "st.wav")
    try:
        assert c.channels == 2 and c.layout == "stereo"
        assert np.array_equal(c.read(0.5, 0.25), pcm[:, 8000:12000])
    finally:
        c.close()


def _video_with_audio_offset(path, video_start_ms: int, with_audio: bool):
    """A 32x32 mp4 whose video stream starts ``video_start_ms`` after 0, optionally with 1 s of AAC."""
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
        vs.time_base = vs.codec_context.time_base = Fraction(1, 1000)
        a = out.add_stream("aac", rate=RATE) if with_audio else None
        for k in range(5):
            f = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            f.pts, f.time_base = video_start_ms + 100 * k, Fraction(1, 1000)
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
        if a is not None:
            for s in range(0, RATE, 1024):
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = RATE, s, Fraction(1, RATE)
                out.mux(a.encode(af))
            out.mux(a.encode(None))


def test_without_a_clock_the_video_streams_start_is_used(tmp_path):
    _video_with_audio_offset(tmp_path / "v.mp4", 500, with_audio=False)
    c = AudioCursor(tmp_path / "v.mp4")
    try:
        assert c.stream is None and c.t0 == pytest.approx(0.5)
    finally:
        c.close()
    _video_with_audio_offset(tmp_path / "va.mp4", 0, with_audio=True)
    c = AudioCursor(tmp_path / "va.mp4")
    try:
        lo, hi = c.extent
        assert c.t0 == 0.0 and c.rate == RATE and hi - lo == pytest.approx(1.0, abs=0.07)
    finally:
        c.close()
