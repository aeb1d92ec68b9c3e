"""Edges of `media.clipping`: clips before, across and after a late-starting audio track (what a camera that
starts recording sound late writes), the half-frame tolerances of fast cuts at both ends, and spans that a
video ending early leaves unfinished."""

from __future__ import annotations

import av
import numpy as np
import pytest

from faceexpr_cli.clip.synthetic import code_frame, make_coded_video, read_code
from faceexpr_cli.errors import MediaError
from faceexpr_cli.media import clipping, run_ffmpeg
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.media.timeline import FrameTimes


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spans")
    coded = make_coded_video(tmp / "coded.mp4", seconds=2.0, fps=25.0)
    late = tmp / "late.mp4"  # the same audio, starting 1 s later on the video's clock
    run_ffmpeg(["-i", str(coded.path), "-itsoffset", "1.0", "-i", str(coded.path), "-map", "0:v", "-map", "1:a",
                "-c", "copy", str(late)], coded.path)
    gop10 = tmp / "gop10.mp4"  # a key frame every 10 frames (0, 0.4, 0.8, 1.2, 1.6 s), no B-frames
    run_ffmpeg(["-i", str(coded.path), "-c:v", "libx264", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0",
                "-bf", "0", "-an", str(gop10)], coded.path)
    return coded, late, gop10


def _audio_start(path) -> float:
    """Where the audio stream starts on the video's clock, read with plain PyAV."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        return float(a.start_time * a.time_base) - float(v.start_time * v.time_base)


def _has_audio_stream(data: bytes) -> bool:
    import io

    with av.open(io.BytesIO(data)) as c:
        return bool(c.streams.audio)


def test_clips_get_audio_only_where_the_late_track_covers_them(media):
    _, late, _ = media
    lo = _audio_start(late)
    assert 0.9 < lo < 1.0  # 1 s minus the AAC priming the muxer moves the start back by
    spans = [(0.0, 0.5), (0.2, 1.2), (1.2, 1.6)]
    cuts = {c.index: c for c in clipping.cut_many(late, spans)}
    # wholly before the audio: no track at all (not a silent one)
    assert not cuts[0].has_audio and not _has_audio_stream(cuts[0].data) and cuts[0].audio_coverage == 0.0
    # across its start: a track whose real part is the span's share after the start
    assert cuts[1].has_audio and cuts[1].audio_coverage == pytest.approx((1.2 - lo) / 1.0, abs=0.005)
    assert cuts[2].has_audio and cuts[2].audio_coverage == 1.0
    assert [cuts[i].frames for i in range(3)] == [13, 25, 10]


@pytest.mark.parametrize(("start", "key", "first"), [(1.19, 1.2, 30), (1.17, 0.8, 20), (1.2, 1.2, 30)])
def test_a_fast_cut_snaps_to_a_key_frame_within_half_a_frame_after_the_start(media, start, key, first):
    _, _, gop10 = media
    (c,) = clipping.cut_many(gop10, [(start, 1.9)], "fast")
    assert c.actual_start == pytest.approx(key) and read_code(decode_clip(c.data, audio=False).frames[0]) == first


@pytest.mark.parametrize(("end", "last"), [(1.81, 44), (1.83, 45), (1.79, 44), (1.77, 43)])
def test_a_fast_cut_ends_at_the_last_frame_starting_half_a_frame_before_the_end(media, end, last):
    _, _, gop10 = media
    (c,) = clipping.cut_many(gop10, [(1.2, end)], "fast")
    codes = [read_code(f) for f in decode_clip(c.data, audio=False).frames]
    assert codes == list(range(30, last + 1)) and c.frames == last - 29
    assert c.actual_end == pytest.approx(0.04 * (last + 1))


def test_spans_the_video_leaves_unfinished_are_each_yielded_and_refused_when_encoded(media, monkeypatch):
    coded, _, _ = media
    # the frame table claims 60 frames (2.4 s) but the stream decodes 50: both spans below end at the table's last
    # frame, so both are still open, with the same last time, when the decoder runs out
    monkeypatch.setattr(clipping, "frame_times", lambda src: FrameTimes(np.arange(60) / 25, np.full(60, 0.04)))
    spans = [(1.51, 2.4), (1.8, 2.4)]
    got = [(s.index, [read_code(f.to_ndarray(format="rgb24")) for f in s.frames], s.expected)
           for s in clipping.iter_span_frames(coded.path, spans)]
    # a frame k belongs where its middle 0.04 k + 0.02 lies: 38.. and 45.., up to the last decoded, 49
    assert got == [(0, list(range(38, 50)), 22), (1, list(range(45, 50)), 15)]
    with pytest.raises(MediaError) as err:
        list(clipping.cut_many(coded.path, spans, audio=False))
    assert err.value.path == "clip" and err.value.problem == "the video ended 10 frames before the clip's end at 2.400 s"


def test_a_fast_cut_copies_the_audio_whole(media):
    coded, _, _ = media
    (c,) = clipping.cut_many(coded.path, [(0.4, 1.2)], "fast")
    assert c.has_audio and _has_audio_stream(c.data) and c.audio_coverage == 1.0
    (silent,) = clipping.cut_many(coded.path, [(0.4, 1.2)], "fast", audio=False)
    assert not silent.has_audio and not _has_audio_stream(silent.data) and silent.audio_coverage == 0.0


def test_a_stream_that_flags_no_key_frame_is_walked_from_its_start(media, monkeypatch):
    _, _, gop10 = media
    monkeypatch.setattr(clipping, "keyframe_times", lambda src: [])  # no packet says it is a key frame
    got = {s.index: [read_code(f.to_ndarray(format="rgb24")) for f in s.frames]
           for s in clipping.iter_span_frames(gop10, [(1.0, 1.4), (0.2, 0.6)])}
    assert got == {1: list(range(5, 15)), 0: list(range(25, 35))}
    (fast,) = clipping.cut_many(gop10, [(1.0, 1.4)], "fast")  # a stream copy then starts at the stream's start
    assert fast.actual_start == 0.0 and read_code(decode_clip(fast.data, audio=False).frames[0]) == 0


class _FailingDemux:
    """The real container, its demuxer failing at packet ``at``."""

    def __init__(self, container, at):
        self.container, self.at = container, at

    def __getattr__(self, name):
        return getattr(self.container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()
        return False

    def demux(self, *streams):
        for k, packet in enumerate(self.container.demux(*streams)):
            if k == self.at:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            yield packet


def test_a_demuxer_failing_mid_walk_names_the_source_and_the_time(media, monkeypatch):
    coded, _, _ = media
    real = clipping.open_container
    monkeypatch.setattr(clipping, "open_container", lambda src: _FailingDemux(real(src), 20))
    with pytest.raises(MediaError) as err:
        list(clipping.iter_span_frames(coded.path, [(0.0, 1.5)]))
    assert err.value.path == str(coded.path)
    head, sep, tail = err.value.message.partition(" s (")
    assert head.startswith(f"{coded.path}: decoding failed near ") and sep
    assert tail == "Invalid data found when processing input)"
    # 20 packets in: the last frame shown is at most frame 19 (0.76 s); the decoder may hold a few back
    assert 0.0 <= float(head.rsplit(" ", 1)[1]) <= 0.76


def test_a_one_frame_span_of_a_rotated_source_comes_out_upright(media, tmp_path):
    coded, _, _ = media
    rotated = tmp_path / "r90.mp4"
    run_ffmpeg(["-display_rotation", "90", "-i", str(coded.path), "-c", "copy", str(rotated)], coded.path)
    (c,) = clipping.cut_many(rotated, [(0.4, 0.44)], audio=False)  # frame 10 alone
    got = decode_clip(c.data, audio=False).frames
    assert got.shape == (1, coded.width, coded.height, 3) and (c.width, c.height) == (coded.height, coded.width)
    want = np.rot90(code_frame(10, coded.width, coded.height), 1)  # 90 degrees counter-clockwise
    assert np.abs(got[0].astype(float) - want).mean() < 6.0

