"""probe's VideoInfo field by field (audio streams, start offset, coded vs display size per rotation, VFR's
average rate, what count_frames=False reads instead), its truncation rule at the boundary, and the exact
messages for files it cannot use."""

from __future__ import annotations

import importlib
from fractions import Fraction

import av
import numpy as np
import pytest

from faceexpr_cli.errors import MediaError, MissingFileError
from faceexpr_cli.media import run_ffmpeg, timeline
from faceexpr_cli.media.probe import _reason, as_fraction, probe, probe_for_processing
from faceexpr_cli.media.timeline import FrameTimes
from faceexpr_cli.media.writer import VideoWriter
from faceexpr_cli.samples.talking_head import write_wav

probe_mod = importlib.import_module("faceexpr_cli.media.probe")


def encode(path, pts, *, tb=Fraction(1, 1000), fmt="mp4", rate=10, size=(48, 32)):
    """Frames with explicit pts (B-frames off), plain PyAV."""
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.options = {"bf": "0"}
        for k, p in enumerate(pts):
            f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 20 * k, np.uint8), format="rgb24")
            f.pts, f.time_base = p, tb
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    wav = write_wav(d / "tone.wav", 0.3 * np.sin(np.arange(16000) / 5), 16000)
    with VideoWriter(d / "av.mp4", 10, audio=wav) as w:  # 1 s, 48x32, 16 kHz mono AAC
        for i in range(10):
            w.write(np.full((32, 48, 3), 20 * i, np.uint8))
    encode(d / "offset.mp4", [500, 600, 700])  # the video stream starts at 0.5 s
    encode(d / "vfr.mkv", [0, 100, 200, 400, 600], fmt="matroska")  # 10 fps, then 5 fps
    for rot in (90, 180, 270):
        run_ffmpeg(["-display_rotation", str(rot), "-i", str(d / "av.mp4"), "-c", "copy", str(d / f"r{rot}.mp4")],
                   "rotate")
    return d


def test_every_field_of_a_file_with_audio(media):
    info = probe(media / "av.mp4")
    assert info.path == str(media / "av.mp4")
    assert info.container == "mov,mp4,m4a,3gp,3g2,mj2" and info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert (info.width, info.height, info.coded_width, info.coded_height) == (48, 32, 48, 32)
    assert info.rotation == 0 and info.fps == 10.0 and info.frame_count == 10 and not info.is_vfr
    assert info.duration == pytest.approx(1.0) and info.start_time == 0.0
    # the video stream's own rate (its packets over its duration), not the file's with the audio in it
    import av

    with av.open(str(media / "av.mp4")) as c:
        video_bits = 8 * sum(p.size for p in c.demux(c.streams.video[0]))
    assert isinstance(info.bit_rate, int) and info.bit_rate == pytest.approx(video_bits / 1.0, rel=0.05)
    [a] = info.audio
    assert (a.index, a.codec, a.sample_rate, a.channels) == (1, "aac", 16000, 1)
    assert a.duration == pytest.approx(1.0, abs=1e-3)
    d = info.to_dict()
    assert d["has_audio"] is True and d["audio"][0]["sample_rate"] == 16000 and d["frame_count"] == 10


def test_a_file_without_audio(media):
    info = probe(media / "offset.mp4")
    assert info.audio == [] and info.has_audio is False and info.to_dict()["has_audio"] is False


def test_the_start_offset_is_reported_and_the_duration_is_from_the_first_frame(media):
    info = probe(media / "offset.mp4")
    assert info.start_time == pytest.approx(0.5)
    assert info.duration == pytest.approx(0.3) and info.frame_count == 3


@pytest.mark.parametrize(("rot", "size"), [(90, (32, 48)), (180, (48, 32)), (270, (32, 48))])
def test_display_size_follows_the_rotation_and_coded_size_does_not(media, rot, size):
    info = probe(media / f"r{rot}.mp4")
    assert info.rotation == rot
    assert (info.width, info.height) == size and (info.coded_width, info.coded_height) == (48, 32)


def test_vfr_reports_the_average_rate_over_the_frame_times(media):
    info = probe(media / "vfr.mkv")
    # 5 frames from 0 to 0.6 s, the last shown 0.1 s (its packet's duration, from the 10 fps rate): 5 / 0.7 s
    assert info.is_vfr and info.frame_count == 5
    assert info.duration == pytest.approx(0.7) and info.fps == pytest.approx(5 / 0.7)


def test_without_counting_the_container_is_believed(media):
    info = probe(media / "vfr.mkv", count_frames=False)
    # Matroska states no frame count: duration x nominal rate; no VFR judgement without the packets
    assert not info.is_vfr and info.fps == pytest.approx(10.0)
    assert info.duration == pytest.approx(0.7) and info.frame_count == round(0.7 * 10)
    info = probe(media / "offset.mp4", count_frames=False)
    assert info.frame_count == 3  # the mp4 states it


def test_counting_uses_the_table_not_the_container(media, monkeypatch):
    # a table that disagrees with the container proves which one the counts come from
    fake = FrameTimes(np.array([0.0, 0.5]), np.array([0.5, 0.5]), declared=0, demuxed=2)
    monkeypatch.setattr(timeline, "frame_times", lambda path: fake)
    info = probe(media / "av.mp4")
    assert info.frame_count == 2 and info.duration == pytest.approx(1.0)
    empty = FrameTimes(np.zeros(0), np.zeros(0))
    monkeypatch.setattr(timeline, "frame_times", lambda path: empty)
    info = probe(media / "av.mp4")  # no frame times: the stream's own duration, and duration x rate frames
    assert info.duration == pytest.approx(1.0) and info.frame_count == 10


@pytest.mark.parametrize(("demuxed", "truncated"), [(8, True), (9, False), (10, False)])
def test_truncated_means_more_than_one_frame_missing(media, monkeypatch, demuxed, truncated):
    fake = FrameTimes(np.arange(demuxed) / 10, np.full(demuxed, 0.1), declared=10, demuxed=demuxed)
    monkeypatch.setattr(timeline, "frame_times", lambda path: fake)
    if not truncated:
        assert probe(media / "av.mp4").frame_count == demuxed
        return
    with pytest.raises(MediaError) as err:
        probe(media / "av.mp4")
    assert err.value.problem == "is truncated: 8 of 10 frames are present"
    assert err.value.hint == "re-download or re-export it" and err.value.path == str(media / "av.mp4")


def test_unusable_paths_give_their_own_messages(tmp_path):
    with pytest.raises(MissingFileError) as err:
        probe(tmp_path / "gone.mp4")
    assert err.value.message == f"video not found: {tmp_path / 'gone.mp4'}" and err.value.path == str(tmp_path / "gone.mp4")
    with pytest.raises(MediaError) as err:
        probe(tmp_path)
    assert err.value.problem == "is a directory, not a media file" and err.value.path == str(tmp_path)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError) as err:
        probe(tmp_path / "empty.mp4")
    assert err.value.problem == "is an empty file (0 bytes)" and err.value.hint == "re-download or re-export it"
    (tmp_path / "one.mp4").write_bytes(b"x")  # one byte is not empty: it fails later, as unreadable
    with pytest.raises(MediaError, match="not a readable media file"):
        probe(tmp_path / "one.mp4")


def test_an_unreadable_file_says_why_not_where(tmp_path):
    """Found here: the reason in parentheses was the file's path again (PyAV's message ends with it)."""
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video\n" * 20)
    with pytest.raises(MediaError) as err:
        probe(bad)
    assert err.value.problem == "not a readable media file (Invalid data found when processing input)"


def test_reason_without_an_ffmpeg_error_is_the_message():
    assert _reason(ValueError("plain words")) == "plain words"
    assert _reason(ValueError("codec: not found: x")) == "codec: not found: x"  # no "[Errno N] ...:" to cut


def test_probe_for_processing_needs_a_frame_rate(media, monkeypatch):
    info = probe(media / "av.mp4")
    info.fps = 0.0
    monkeypatch.setattr(probe_mod, "probe", lambda path: info)
    with pytest.raises(MediaError) as err:
        probe_for_processing(media / "av.mp4")
    assert err.value.problem == "has no frame rate" and err.value.hint == "re-encode it"


def test_probe_for_processing_default_hint_and_no_limit(media):
    assert probe_for_processing(media / "av.mp4").frame_count == 10  # no pixel limit by default
    with pytest.raises(MediaError) as err:
        probe_for_processing(media / "av.mp4", max_pixels=100)
    assert err.value.hint == "downscale it first"


def test_as_fraction_keeps_ntsc_rates():
    assert as_fraction(30000 / 1001) == Fraction(30000, 1001) and as_fraction(25.0) == 25
