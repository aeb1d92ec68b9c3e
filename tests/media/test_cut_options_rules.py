"""`media.cut` options checked on the written file: what a fast (ffmpeg stream-copy) cut keeps and drops, its
container (faststart, the MP4 brand of an .m4v name), timestamps from 0, its key-frame tolerance, what a failed
cut leaves behind, and extract_audio's rate, channels and start."""

from __future__ import annotations

import importlib
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from faceexpr_cli.clip.synthetic import make_coded_video, read_code
from faceexpr_cli.errors import MediaError
from faceexpr_cli.media import run_ffmpeg
from faceexpr_cli.media.cut import cut, extract_audio

cut_module = importlib.import_module("faceexpr_cli.media.cut")  # the package's ``cut`` name is the function


@pytest.fixture(scope="module")
def gop(tmp_path_factory):
    """2 s at 25 fps, a key frame every 10 frames (0, 0.4, ... 1.6 s), no B-frames, AAC audio."""
    tmp = tmp_path_factory.mktemp("cutopts")
    src = make_coded_video(tmp / "src.mp4", seconds=2.0, fps=25.0)
    out = tmp / "gop.mp4"
    run_ffmpeg(["-i", str(src.path), "-c:v", "libx264", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0",
                "-bf", "0", "-c:a", "copy", str(out)], src.path)
    return out


def _facts(path):
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames = list(c.decode(vs))
        return {"brand": c.metadata.get("major_brand"), "audio": bool(c.streams.audio),
                "codes": [read_code(f.to_ndarray(format="rgb24")) for f in frames],
                "t0": float(frames[0].pts * vs.time_base)}


def test_a_fast_cut_keeps_the_audio_starts_at_zero_and_puts_the_index_first(gop, tmp_path):
    r = cut(gop, tmp_path / "f.mp4", 0.9, 1.5, "fast")
    got = _facts(tmp_path / "f.mp4")
    # the earliest packet (audio or video) is moved to 0: the video starts within one AAC packet of it
    assert r.actual_start == pytest.approx(0.8) and got["audio"] and 0.0 <= got["t0"] < 0.064
    assert got["codes"][0] == 20 and got["codes"][-1] in (36, 37)  # from the key frame to about the end
    data = (tmp_path / "f.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: playable while it downloads
    assert not list(tmp_path.glob(".*.part"))


def test_a_fast_cut_without_audio_and_an_m4v_name_is_still_mp4(gop, tmp_path):
    cut(gop, tmp_path / "f.m4v", 0.9, 1.5, "fast", audio=False)
    got = _facts(tmp_path / "f.m4v")
    assert not got["audio"] and got["brand"] == "isom"  # not the iPod muxer that .m4v would otherwise pick
    cut(gop, tmp_path / "e.m4v", 0.9, 1.5, audio=False)
    assert _facts(tmp_path / "e.m4v")["codes"] == list(range(23, 38))  # exact: frames shown in [0.9, 1.5)


@pytest.mark.parametrize(("start", "key"), [(1.2 - 5e-7, 1.2), (1.2 - 5e-6, 0.8), (-0.3, 0.0)])
def test_a_fast_cut_takes_a_key_frame_a_microsecond_after_the_start(gop, tmp_path, start, key):
    r = cut(gop, tmp_path / "f.mp4", start, 1.6, "fast", audio=False)
    assert r.actual_start == pytest.approx(key) and r.snap == pytest.approx(key - start)
    assert _facts(tmp_path / "f.mp4")["codes"][0] == round(key * 25)


def test_a_failed_cut_leaves_nothing_under_either_name(gop, tmp_path, monkeypatch):
    def fails(args, src):
        Path(args[-1]).write_bytes(b"half a file")  # ffmpeg got part-way
        raise MediaError(src, "ffmpeg failed: disk full")

    monkeypatch.setattr(cut_module, "run_ffmpeg", fails)
    with pytest.raises(MediaError, match="disk full"):
        cut(gop, tmp_path / "f.mp4", 0.5, 1.0, "fast")
    with pytest.raises(MediaError, match="disk full"):
        extract_audio(gop, tmp_path / "a.wav")
    assert list(tmp_path.iterdir()) == []

    def full(self, data):
        with open(self, "wb") as f:  # part of the file made it to disk
            f.write(data[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(tmp_path), "write_bytes", full)
    with pytest.raises(OSError, match="No space left"):
        cut(gop, tmp_path / "e.mp4", 0.5, 1.0)
    assert list(tmp_path.iterdir()) == []

    def refused(self, data):  # nothing reached the disk: the error is still the disk's, not a missing file's
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(tmp_path), "write_bytes", refused)
    with pytest.raises(PermissionError, match="Permission denied"):
        cut(gop, tmp_path / "e.mp4", 0.5, 1.0)
    assert list(tmp_path.iterdir()) == []


def test_extract_audio_resamples_to_the_rate_and_channels_asked(gop, tmp_path):
    wav = extract_audio(gop, tmp_path / "a.wav", sample_rate=22050, channels=2, start=0.5)
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (22050, 2, 2)
        assert w.getnframes() / 22050 == pytest.approx(1.5, abs=0.03)  # from 0.5 s to the end
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert np.array_equal(pcm[:, 0], pcm[:, 1]) and np.abs(pcm).max() > 1000  # mono source: both channels alike
