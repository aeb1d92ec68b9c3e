"""Every refusal in `faceexpr_cli.media`, triggered through the function that raises it, with its error
checked exactly: for a MediaError its path, its problem (numbers included) and its hint (or that it has none),
for a MissingFileError its path, message and hint, for a UsageError its message and hint, for a ValueError its
text.

Media are real files built here (H.264/AAC written by the writer, a WAV, a raw H.264 stream, truncated copies
of an mp4, a Matroska file whose video track holds no packet). Where a failure cannot be produced with a file
(a muxer that fails, a decoder that fails after a given frame of a written clip) the real container is wrapped
so that one call fails with FFmpeg's "invalid data" error; two checks that a real file never reaches are
reached with a stand-in (a probe result without a frame rate, a frame table for a file without video).

Sites left out, by file:line in faceexpr_cli/media as of commit 1c73979 (their path, problem and hint are
already checked exactly elsewhere):
- probe.py:133 (is truncated: N of M frames present): test_probe_rules::
  test_truncated_means_more_than_one_frame_missing
- reader.py:118 (decoding ended at frame): test_reader_rules::
  test_decoding_fewer_frames_than_the_table_is_an_error
- reader.py:133 (decoding stopped at frame): test_decode_fault_rules::
  test_a_decoder_failing_mid_stream_names_the_frame_it_stopped_at (the whole message, and the hint)
- writer.py:69 (unsupported suffix): test_writer_rules::
  test_an_unsupported_suffix_is_refused_before_anything_is_written
- writer.py:180 (frame times must increase): test_writer_rules::
  test_frame_times_must_increase_by_more_than_a_microsecond (an anchored full-text match)
- clipping.py:214 and cut.py:71 (unknown cut mode): test_cut_rules::
  test_unknown_modes_are_refused_with_the_modes_listed
- cut.py:80 (exact cuts are written as MP4): test_cut_rules::
  test_exact_cuts_refuse_a_non_mp4_name_with_the_hint
- timeline.py:162 (decode-order stamps refuse a stream copy): test_decode_order_rules::
  test_stream_copies_of_decode_order_stamps_are_refused
Not in this table: ffmpeg.py:21 and ffmpeg.py:31 raise DependencyError (test_ffmpeg_rules checks them).
"""

from __future__ import annotations

import importlib
import io
import stat
import sys
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest

from faceexpr_cli.clip.synthetic import make_coded_video
from faceexpr_cli.errors import MediaError, MissingFileError, UsageError
from faceexpr_cli.media import clip_decode, timeline
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.media.clipping import SpanFrames, cut_many, encode_span, iter_span_frames, nominal_fps
from faceexpr_cli.media.cut import cut, extract_audio, keyframe_times
from faceexpr_cli.media.ffmpeg import run_ffmpeg
from faceexpr_cli.media.images import read_image, write_image
from faceexpr_cli.media.probe import probe, probe_for_processing
from faceexpr_cli.media.reader import iter_frames, read_frames
from faceexpr_cli.media.timeline import FrameTimes, frame_times
from faceexpr_cli.media.verify import inspect_clip, verify_clip
from faceexpr_cli.media.writer import VideoWriter, temp_path
from faceexpr_cli.samples.talking_head import write_wav

probe_mod = importlib.import_module("faceexpr_cli.media.probe")  # the module: the package exports probe()

INVALID = "Invalid data found when processing input"
ERRNO_INVALID = f"[Errno 1094995529] {INVALID}"
REAL_OPEN = av.open


def grey(level: int, w: int = 32, h: int = 32) -> np.ndarray:
    return np.full((h, w, 3), level, np.uint8)


def clip_bytes(frames: int = 10, fps: float = 25.0, audio=None) -> bytes:
    buf = io.BytesIO()
    with VideoWriter(buf, fps, audio=audio, audio_duration=frames / fps if audio else None) as w:
        for i in range(frames):
            w.write(grey(20 * i))
    return buf.getvalue()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("refusals")
    coded = make_coded_video(d / "coded.mp4", seconds=1.0, fps=25.0).path  # 25 frames, 192x96, 16 kHz AAC
    wav = write_wav(d / "tone.wav", 0.3 * np.sin(np.arange(16000) / 5), 16000)
    silent = d / "silent.mp4"  # 10 frames at 10 fps, no audio stream
    with VideoWriter(silent, 10) as w:
        for i in range(10):
            w.write(grey(20 * i, 48, 32))
    raw = d / "raw.h264"
    run_ffmpeg(["-i", str(coded), "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", "-an", str(raw)], coded)
    no_frames = d / "no_frames.mkv"  # a video track without a single packet, beside a short audio track
    with av.open(str(no_frames), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        for s in range(0, 4096, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, s, Fraction(1, 16000)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
        out.mux(vs.encode(None))
    # truncated copies of coded.mp4 (its index is at the front): cut at the end of the 5th video packet, in
    # the middle of the 1st and of the 8th, and after 100 bytes (inside the index)
    data = coded.read_bytes()
    with av.open(str(coded)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    cuts = {"five": packets[4][0] + packets[4][1], "mid1": packets[0][0] + packets[0][1] // 2,
            "mid8": packets[7][0] + packets[7][1] // 2, "head": 100}
    truncated = {}
    for name, n in cuts.items():
        truncated[name] = d / f"{name}.mp4"
        truncated[name].write_bytes(data[:n])
    return SimpleNamespace(dir=d, coded=coded, wav=wav, silent=silent, raw=raw, no_frames=no_frames,
                           truncated=truncated, clip=clip_bytes(), loud=clip_bytes(audio=wav))


class _Failing:
    """The real container, its ``method`` (decode or mux) failing with FFmpeg's invalid-data error at frame
    (or call) ``at``; ``kind`` limits a decode failure to streams of that type."""

    def __init__(self, container, method: str, at: int = 0, kind: str | None = None):
        self.container, self.method, self.at, self.kind, self.calls = container, method, at, kind, 0

    def __getattr__(self, name):
        return getattr(self.container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()
        return False

    def _fail_at(self, items):
        for k, item in enumerate(items):
            if k == self.at:
                raise av.error.InvalidDataError(1094995529, INVALID)
            yield item

    def decode(self, *streams):
        items = self.container.decode(*streams)
        if self.method == "decode" and (self.kind is None or streams[0].type == self.kind):
            return self._fail_at(items)
        return items

    def mux(self, packets):
        if self.method == "mux" and self.calls == self.at:
            raise av.error.InvalidDataError(1094995529, INVALID)
        self.calls += 1
        return self.container.mux(packets)


def _fail_av_open(monkeypatch, method, at=0, kind=None):
    monkeypatch.setattr(av, "open", lambda *a, **k: _Failing(REAL_OPEN(*a, **k), method, at, kind))


def assert_media_error(err, path, problem, hint=None):
    assert err.value.path == str(path)
    assert err.value.problem == problem
    if hint is None:
        assert err.value.hint is None
    else:
        assert err.value.hint == hint


# -- ffmpeg.py ----------------------------------------------------------------------------------------------
def fake_ffmpeg(path, body: str):
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_an_ffmpeg_run_past_its_timeout_names_the_file_and_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("FX_FFMPEG", str(fake_ffmpeg(tmp_path / "ff", "import time; time.sleep(5)")))
    with pytest.raises(MediaError) as err:
        run_ffmpeg([], tmp_path / "slow.mp4", timeout=0.2)
    assert_media_error(err, tmp_path / "slow.mp4", "ffmpeg timed out after 0.2 s")


def test_a_failed_ffmpeg_run_names_the_file_and_ffmpegs_last_line(tmp_path, monkeypatch):
    body = "sys.stderr.write('Input #0\\nout.mp4: Invalid argument\\n'); sys.exit(1)"
    monkeypatch.setenv("FX_FFMPEG", str(fake_ffmpeg(tmp_path / "ff", body)))
    with pytest.raises(MediaError) as err:
        run_ffmpeg([], tmp_path / "in.mp4")
    assert_media_error(err, tmp_path / "in.mp4", "ffmpeg failed: out.mp4: Invalid argument")


# -- images.py ----------------------------------------------------------------------------------------------
def test_a_missing_image_is_a_missing_file_error_naming_it(tmp_path):
    with pytest.raises(MissingFileError) as err:
        read_image(tmp_path / "gone.png")
    assert err.value.path == str(tmp_path / "gone.png")
    assert err.value.message == f"image not found: {tmp_path / 'gone.png'}"
    assert err.value.hint == "check the path"


@pytest.mark.parametrize("content", [b"not an image at all", b""])
def test_an_unreadable_or_empty_image_says_what_to_pass(tmp_path, content):
    bad = tmp_path / "x.png"
    bad.write_bytes(content)
    with pytest.raises(MediaError) as err:
        read_image(bad)
    assert_media_error(err, bad, "not a readable image", "pass a PNG or JPEG")


def test_an_image_the_encoder_refuses_names_the_file_and_leaves_nothing(tmp_path):
    out = tmp_path / "wide.jpg"  # JPEG stops at 65500 pixels a side: OpenCV's encoder says no
    with pytest.raises(MediaError) as err:
        write_image(out, np.zeros((1, 70000, 3), np.uint8))
    assert_media_error(err, out, "could not encode the image")
    assert list(tmp_path.iterdir()) == []


def test_an_image_suffix_without_an_encoder_is_a_media_error_naming_the_file(tmp_path):
    out = tmp_path / "frame.xyz"
    with pytest.raises(MediaError) as err:
        write_image(out, np.zeros((4, 4, 3), np.uint8))
    assert_media_error(err, out, "cannot write '.xyz' images", "name it .png or .jpg")
    assert list(tmp_path.iterdir()) == []


# -- probe.py -----------------------------------------------------------------------------------------------
def test_a_missing_video_is_a_missing_file_error_naming_it(tmp_path):
    with pytest.raises(MissingFileError) as err:
        probe(tmp_path / "gone.mp4")
    assert err.value.path == str(tmp_path / "gone.mp4")
    assert err.value.message == f"video not found: {tmp_path / 'gone.mp4'}"
    assert err.value.hint == "check the path"


def test_a_directory_is_refused_without_a_hint(tmp_path):
    with pytest.raises(MediaError) as err:
        probe(tmp_path)
    assert_media_error(err, tmp_path, "is a directory, not a media file")


def test_an_empty_file_is_refused_with_the_re_export_hint(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError) as err:
        probe(tmp_path / "empty.mp4")
    assert_media_error(err, tmp_path / "empty.mp4", "is an empty file (0 bytes)",
                       "re-download or re-export it")


def test_a_file_that_does_not_open_gives_ffmpegs_reason_and_the_hint(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video\n" * 20)
    with pytest.raises(MediaError) as err:
        probe(bad)
    assert_media_error(err, bad, f"not a readable media file ({INVALID})", "is it truncated or not a video?")


def test_a_file_without_video_names_the_streams_it_holds(media):
    with pytest.raises(MediaError) as err:
        probe(media.wav)
    assert_media_error(err, media.wav, "has no video stream (it holds audio)", "pass a video file")
    head = media.truncated["head"]  # 100 bytes: the index is cut before its first track
    with pytest.raises(MediaError) as err:
        probe(head)
    assert_media_error(err, head, "has no video stream (it holds nothing)", "pass a video file")


def test_a_video_track_without_frames_is_refused_as_truncated(media):
    with pytest.raises(MediaError) as err:
        probe(media.no_frames)
    assert_media_error(err, media.no_frames, "has a video stream but no decodable frames", "is it truncated?")


def test_a_first_frame_cut_in_half_does_not_decode(media):
    mid1 = media.truncated["mid1"]
    with pytest.raises(MediaError) as err:
        probe(mid1)
    assert_media_error(err, mid1, f"cannot decode the first frame ({INVALID})", "is it truncated?")


def test_too_many_pixels_names_the_size_the_limit_and_the_hint(media):
    with pytest.raises(MediaError) as err:
        probe_for_processing(media.coded, max_pixels=192 * 96 - 1)
    assert_media_error(err, media.coded, "resolution 192x96 is above the limit (18431 pixels)",
                       "downscale it first")
    with pytest.raises(MediaError) as err:
        probe_for_processing(media.coded, max_pixels=100, hint="try --max-side")
    assert_media_error(err, media.coded, "resolution 192x96 is above the limit (100 pixels)",
                       "try --max-side")


def test_a_video_without_a_frame_rate_is_refused_with_the_re_encode_hint(media, monkeypatch):
    info = probe(media.silent)
    info.fps = 0.0  # no real file probes to 0 fps: a stand-in probe result
    monkeypatch.setattr(probe_mod, "probe", lambda path: info)
    with pytest.raises(MediaError) as err:
        probe_for_processing(media.silent)
    assert_media_error(err, media.silent, "has no frame rate", "re-encode it")


# -- timeline.py --------------------------------------------------------------------------------------------
def test_frame_times_of_a_file_without_video_is_refused(media):
    with pytest.raises(MediaError) as err:
        frame_times(media.wav)
    assert_media_error(err, media.wav, "has no video stream", "pass a video file")


def test_frame_times_of_a_raw_stream_is_refused_with_the_remux_command(media):
    with pytest.raises(MediaError) as err:
        frame_times(media.raw)
    assert_media_error(err, media.raw, "has frames without timestamps (a raw elementary stream)",
                       "put it in a container first: ffmpeg -i IN -c copy OUT.mp4")


# -- reader.py ----------------------------------------------------------------------------------------------
def test_reading_a_file_without_video_is_refused_by_the_reader_itself(media, monkeypatch):
    # frame_times refuses such a file first, with the same words: a stand-in table lets the reader's own
    # check be reached
    monkeypatch.setattr(timeline, "frame_times", lambda path: FrameTimes(np.zeros(1), np.full(1, 0.04)))
    with pytest.raises(MediaError) as err:
        list(iter_frames(media.wav))
    assert_media_error(err, media.wav, "has no video stream", "pass a video file")


def test_a_file_cut_after_its_fifth_frame_is_truncated_at_frame_5_of_25(media):
    five = media.truncated["five"]
    with pytest.raises(MediaError) as err:
        list(iter_frames(five))
    assert_media_error(err, five, "is truncated: the stream ends at frame 5 of 25",
                       "re-download or re-export it")


def test_an_empty_range_is_refused_without_a_hint(media):
    with pytest.raises(MediaError) as err:
        read_frames(media.coded, start=5.0)
    assert_media_error(err, media.coded, "no frames in the requested range")


# -- verify.py ----------------------------------------------------------------------------------------------
def test_a_written_clip_that_does_not_open_names_the_clip_or_the_path(media):
    with pytest.raises(MediaError) as err:
        verify_clip(b"\x00" * 64, frames=10, duration=0.4, audio=False)
    assert_media_error(err, "clip", f"the written file does not open ({ERRNO_INVALID}: '<none>')")
    bad = media.dir / "garbage.mp4"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(MediaError) as err:
        inspect_clip(bad)
    assert_media_error(err, bad, f"the written file does not open ({ERRNO_INVALID}: '{bad}')")


def test_a_written_clip_that_does_not_open_is_named_as_the_caller_asked():
    with pytest.raises(MediaError) as err:
        verify_clip(b"\x00" * 64, frames=10, duration=0.4, audio=False, name="clip 1.000-1.400 s")
    assert err.value.path == "clip 1.000-1.400 s"


def test_a_written_clip_without_video_is_refused(media):
    with pytest.raises(MediaError) as err:
        inspect_clip(media.wav.read_bytes())
    assert_media_error(err, "clip", "the written file has no video stream")


def test_a_written_clip_whose_decoder_fails_names_the_frames_that_decoded(media, monkeypatch):
    _fail_av_open(monkeypatch, "decode", at=3, kind="video")
    with pytest.raises(MediaError) as err:
        inspect_clip(media.clip)
    assert_media_error(err, "clip", f"the written file does not decode after frame 3 ({ERRNO_INVALID})")


def test_a_written_clip_without_frames_is_refused(media):
    with pytest.raises(MediaError) as err:
        inspect_clip(media.no_frames)
    assert_media_error(err, media.no_frames, "the written file has no decodable frames")


def test_a_written_clip_whose_audio_does_not_decode_is_refused(media, monkeypatch):
    _fail_av_open(monkeypatch, "decode", at=0, kind="audio")
    with pytest.raises(MediaError) as err:
        inspect_clip(media.loud)
    assert_media_error(err, "clip", f"the written file's audio does not decode ({ERRNO_INVALID})")


def test_verify_names_each_mismatch_with_its_numbers(media):
    with pytest.raises(MediaError) as err:
        verify_clip(media.clip, frames=12, duration=0.48, audio=False, name="k1")
    assert_media_error(err, "k1", "the written file holds 10 frames, not 12")
    with pytest.raises(MediaError) as err:
        verify_clip(media.clip, frames=10, duration=0.5, audio=False)
    assert_media_error(err, "clip", "the written file lasts 0.400 s, not 0.500 s")
    with pytest.raises(MediaError) as err:
        verify_clip(media.clip, frames=10, duration=0.4, audio=True, name="k2")
    assert_media_error(err, "k2", "the written file has no audio stream although its source span has audio")
    with pytest.raises(MediaError) as err:
        verify_clip(media.loud, frames=10, duration=0.4, audio=False, name="k3")
    assert_media_error(err, "k3", "the written file has an audio stream that its row does not claim")
    # 0.441 s is within a frame of the 0.400 s of video, and 41 ms past the 0.400 s of audio
    with pytest.raises(MediaError) as err:
        verify_clip(media.loud, frames=10, duration=0.441, audio=True, name="k4")
    assert_media_error(err, "k4", "the written audio lasts 0.400 s, the video 0.441 s")


# -- writer.py ----------------------------------------------------------------------------------------------
def test_a_frame_with_no_width_is_too_small_to_encode(tmp_path):
    with pytest.raises(MediaError) as err:
        VideoWriter(tmp_path / "a.mp4", 10).write(np.zeros((4, 0, 3), np.uint8))
    assert_media_error(err, tmp_path / "a.mp4", "frame size 0x4 is too small to encode")
    assert list(tmp_path.iterdir()) == []


def test_a_size_too_small_to_encode_is_the_size_named(tmp_path):
    with pytest.raises(MediaError) as err:
        VideoWriter(tmp_path / "a.mp4", 10, size=(0, 32)).write(grey(1))
    assert err.value.problem == "frame size 0x32 is too small to encode"


def test_an_unknown_codec_cannot_start_the_encoder(tmp_path):
    with pytest.raises(MediaError) as err:
        VideoWriter(tmp_path / "a.mp4", 10, codec="no-such-codec").write(grey(1))
    assert_media_error(err, tmp_path / "a.mp4", "cannot start the encoder (no-such-codec)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("frame", "text"), [
    (np.zeros((8, 6, 3), np.float32), "frames must be HxWx3 uint8, got (8, 6, 3) float32"),
    (np.zeros((8, 6), np.uint8), "frames must be HxWx3 uint8, got (8, 6) uint8"),
    (np.zeros((8, 6, 4), np.uint8), "frames must be HxWx3 uint8, got (8, 6, 4) uint8"),
])
def test_a_frame_that_is_not_rgb_uint8_is_a_value_error_with_its_shape_and_type(tmp_path, frame, text):
    with pytest.raises(ValueError) as err:
        VideoWriter(tmp_path / "a.mp4", 10).write(frame)
    assert str(err.value) == text


def test_a_frame_of_another_size_is_a_value_error_with_both_sizes(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", 10)
    w.write(grey(0, 33, 31))
    with pytest.raises(ValueError) as err:
        w.write(grey(0, 34, 32))
    assert str(err.value) == "frame size changed from (33, 31) to (34, 32)"
    w.abort()


def test_a_muxer_failure_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    _fail_av_open(monkeypatch, "mux", at=0)
    path = tmp_path / "a.mp4"
    with pytest.raises(MediaError) as err, VideoWriter(path, 10) as w:
        for i in range(3):
            w.write(grey(20 * i))
    assert_media_error(err, path, f"writing failed ({ERRNO_INVALID})")
    assert not path.exists() and not temp_path(path).exists()


def test_closing_a_writer_without_frames_is_refused(tmp_path):
    with pytest.raises(MediaError) as err:
        VideoWriter(tmp_path / "a.mp4", 10).close()
    assert_media_error(err, tmp_path / "a.mp4", "no frames were written")
    assert list(tmp_path.iterdir()) == []


# -- clip_decode.py -----------------------------------------------------------------------------------------
def test_a_clip_that_does_not_open_is_named_with_ffmpegs_reason():
    with pytest.raises(MediaError) as err:
        decode_clip(b"\x00" * 100, name="shard-3/clip-7")
    assert_media_error(err, "shard-3/clip-7", f"not a readable clip ({ERRNO_INVALID}: '<none>')")


def test_a_clip_without_video_is_named(media):
    with pytest.raises(MediaError) as err:
        decode_clip(media.wav.read_bytes(), name="k5")
    assert_media_error(err, "k5", "has no video stream")


def test_a_clip_whose_first_frame_does_not_decode_is_named(media, monkeypatch):
    real = clip_decode._open
    monkeypatch.setattr(clip_decode, "_open", lambda source, what: _Failing(real(source, what), "decode"))
    with pytest.raises(MediaError) as err:
        decode_clip(media.clip, name="k6")
    assert_media_error(err, "k6", f"cannot decode ({ERRNO_INVALID})")


def test_a_clip_without_frames_is_named(media):
    with pytest.raises(MediaError) as err:
        decode_clip(media.no_frames.read_bytes(), name="k7")
    assert_media_error(err, "k7", "has no decodable frames")


# -- clipping.py --------------------------------------------------------------------------------------------
def test_the_nominal_rate_of_a_file_without_video_is_refused(media):
    with pytest.raises(MediaError) as err:
        nominal_fps(media.wav)
    assert_media_error(err, media.wav, "has no video stream")


def test_a_walk_over_a_damaged_frame_names_the_last_frame_time_decoded(media):
    mid8 = media.truncated["mid8"]  # frames 0..6 whole, frame 7 cut in half: the last decoded is at 0.24 s
    with pytest.raises(MediaError) as err:
        list(iter_span_frames(mid8, [(0.0, 1.0)], threads=1))
    assert_media_error(err, mid8, f"decoding failed near 0.24 s ({INVALID})")


def test_a_walk_failing_before_its_first_frame_names_where_it_started(media):
    mid1 = media.truncated["mid1"]
    with pytest.raises(MediaError) as err:
        list(iter_span_frames(mid1, [(0.0, 1.0)], threads=1))
    assert err.value.problem == f"decoding failed near 0.00 s ({INVALID})"


def test_a_span_the_video_ends_three_frames_early_is_refused_with_its_end(media):
    frames = [grey(0)] * 4
    span = SpanFrames(0, frames=frames, times=[i / 25 for i in range(4)], end=0.28, expected=7)
    with pytest.raises(MediaError) as err:
        encode_span(0, (0.0, 0.28), span, frames)
    assert_media_error(err, "clip", "the video ended 3 frames before the clip's end at 0.280 s")


def test_a_fast_span_ending_before_its_first_frame_is_refused(media):
    # the span ends within half a frame of the key frame at 0 s, so no packet is copied
    with pytest.raises(MediaError) as err:
        list(cut_many(media.coded, [(0.0, 0.01)], "fast"))
    assert_media_error(err, media.coded, "no frames between 0.000 and 0.010 s")


# -- cut.py -------------------------------------------------------------------------------------------------
def test_key_frames_of_a_file_without_video_are_refused(media):
    with pytest.raises(MediaError) as err:
        keyframe_times(media.wav)
    assert_media_error(err, media.wav, "has no video stream")


@pytest.mark.parametrize(("start", "end"), [(0.5, 0.25), (0.5, 0.5)])
def test_an_empty_time_range_is_a_usage_error_naming_the_source(media, tmp_path, start, end):
    with pytest.raises(UsageError) as err:
        cut(media.coded, tmp_path / "a.mp4", start, end)
    assert err.value.message == f"empty time range {start:.3f}-{end:.3f} s for {media.coded}"
    assert err.value.hint is None
    assert list(tmp_path.iterdir()) == []


def test_an_exact_cut_past_the_end_names_the_source_and_range(media, tmp_path):
    with pytest.raises(MediaError) as err:
        cut(media.coded, tmp_path / "late.mp4", 5.0, 6.0)
    assert_media_error(err, media.coded, "no frames between 5.000 and 6.000 s")
    assert list(tmp_path.iterdir()) == []


def test_extracting_audio_from_a_video_without_audio_is_refused(media, tmp_path):
    with pytest.raises(MediaError) as err:
        extract_audio(media.silent, tmp_path / "a.wav")
    assert_media_error(err, media.silent, "has no audio stream")
    assert list(tmp_path.iterdir()) == []
