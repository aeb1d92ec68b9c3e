"""The media layer's edges: fast-cut snapping at a non-25 fps rate, clips without audio asked for, audio tracks
with nothing in them, the written-clip checks' reasons, grey images and empty ranges."""

from __future__ import annotations

import io

import av
import cv2
import numpy as np
import pytest

from faceexpr_cli.clip.synthetic import make_coded_video, read_code
from faceexpr_cli.errors import MediaError, UsageError
from faceexpr_cli.media import read_frames, run_ffmpeg
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.media.clipping import cut_many
from faceexpr_cli.media.images import read_image
from faceexpr_cli.media.probe import probe_for_processing
from faceexpr_cli.media.verify import verify_clip
from faceexpr_cli.media.writer import VideoWriter


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    return make_coded_video(tmp_path_factory.mktemp("rules") / "coded.mp4", seconds=3.0, fps=25.0)


@pytest.fixture(scope="module")
def ten_fps_gop10(tmp_path_factory):
    """3 s at 10 fps with a key frame every second (0, 1, 2 s), audio copied."""
    tmp = tmp_path_factory.mktemp("gop")
    src = make_coded_video(tmp / "ten.mp4", seconds=3.0, fps=10.0)
    out = tmp / "ten_gop10.mp4"
    run_ffmpeg(["-i", str(src.path), "-c:v", "libx264", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0",
                "-bf", "0", "-c:a", "copy", str(out)], src.path)
    return out


def _codes(data: bytes) -> list[int]:
    return [read_code(f) for f in decode_clip(data, audio=False).frames]


def test_fast_cut_takes_the_key_frame_half_a_frame_after_the_start_at_10_fps(ten_fps_gop10):
    # half a frame at 10 fps is 50 ms: a start 40 ms before the key frame at 2 s begins at that key frame
    # (at 25 fps the tolerance would be 20 ms and the cut would go back to the key frame at 1 s)
    [c] = list(cut_many(ten_fps_gop10, [(1.96, 2.5)], "fast"))
    assert c.actual_start == pytest.approx(2.0)
    assert _codes(c.data)[0] == 20
    # 60 ms before it is more than half a frame: the key frame before
    [c] = list(cut_many(ten_fps_gop10, [(1.94, 2.5)], "fast"))
    assert c.actual_start == pytest.approx(1.0) and _codes(c.data)[0] == 10


def test_fast_cut_ends_half_a_frame_before_the_end_and_reports_the_source_rate(ten_fps_gop10):
    [c] = list(cut_many(ten_fps_gop10, [(1.0, 1.56)], "fast"))  # frames at 1.0 .. 1.5; 1.6 is past the end
    got = _codes(c.data)
    assert got == list(range(10, 16)) and c.frames == 6
    assert c.actual_end == pytest.approx(1.6) and c.fps == pytest.approx(10.0)
    [c] = list(cut_many(ten_fps_gop10, [(1.0, 1.54)], "fast"))  # 1.5 starts within half a frame of the end
    assert _codes(c.data) == list(range(10, 15))


def test_exact_cut_reports_the_rate_it_wrote(coded):
    [c] = list(cut_many(coded.path, [(1.0, 1.4)]))  # exact is the default
    assert _codes(c.data) == list(range(25, 35))
    assert c.frames == 10 and c.fps == pytest.approx(25.0) and c.fps_mode == "source"
    [c] = list(cut_many(coded.path, [(1.0, 1.4)], "exact", fps=12.5))
    assert c.fps == 12.5 and c.fps_mode == "constant" and len(_codes(c.data)) == 5


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_no_audio_asked_gives_clips_without_audio(coded, mode):
    [c] = list(cut_many(coded.path, [(0.0, 0.8)], mode, audio=False))
    assert c.has_audio is False and c.audio_coverage == 0.0
    with av.open(io.BytesIO(c.data)) as container:
        assert not container.streams.audio and container.streams.video


def test_unknown_cut_mode_is_one_usage_error(coded):
    with pytest.raises(UsageError, match="unknown cut mode 'slow'") as err:
        list(cut_many(coded.path, [(0.0, 0.8)], "slow"))
    assert "exact" in err.value.hint and "fast" in err.value.hint


def _clip(audio_src=None, frames=10, fps=25.0) -> bytes:
    buf = io.BytesIO()
    with VideoWriter(buf, fps, audio=audio_src, audio_duration=frames / fps if audio_src else None) as w:
        for i in range(frames):
            w.write(np.full((32, 32, 3), 20 * i, np.uint8))
    return buf.getvalue()


def test_verify_clip_names_each_reason(coded):
    silent, loud = _clip(), _clip(coded.path)
    assert verify_clip(silent, frames=10, duration=0.4, audio=False).frames == 10
    assert verify_clip(loud, frames=10, duration=0.4, audio=True).audio_duration == pytest.approx(0.4, abs=0.04)
    with pytest.raises(MediaError, match="no audio stream although its source span has audio"):
        verify_clip(silent, frames=10, duration=0.4, audio=True, name="c1")
    with pytest.raises(MediaError, match="has an audio stream that its row does not claim"):
        verify_clip(loud, frames=10, duration=0.4, audio=False)
    with pytest.raises(MediaError, match="holds 10 frames, not 12"):
        verify_clip(silent, frames=12, duration=0.48, audio=False)
    verify_clip(silent, frames=11, duration=0.44, audio=False)  # one frame off is within the rule
    with pytest.raises(MediaError, match="lasts 0.400 s, not 0.500 s"):
        verify_clip(silent, frames=10, duration=0.5, audio=False)
    with pytest.raises(MediaError, match="does not open"):
        verify_clip(b"\x00" * 64, frames=10, duration=0.4, audio=False)
    with pytest.raises(MediaError) as err:
        verify_clip(silent, frames=12, duration=0.48, audio=False, name="clip-7")
    assert err.value.one_line().startswith("clip-7")


def test_an_audio_track_with_no_samples_decodes_as_silence_of_the_clip_length(tmp_path):
    path = tmp_path / "empty_audio.mkv"  # Matroska keeps a track with no packets (mp4 drops it)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        a = out.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * i, np.uint8), format="rgb24")
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        for packet in a.encode(None):
            out.mux(packet)
    with av.open(str(path)) as c:
        assert c.streams.audio  # the track is there, with nothing in it
    clip = decode_clip(path, sample_rate=8000, channels=2)
    assert clip.audio.shape == (2, round(len(clip.frames) / clip.fps * 8000)) and len(clip.frames) == 10
    assert clip.audio.dtype == np.float32 and not clip.audio.any()


def test_grey_and_alpha_images_come_back_rgb(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    img = read_image(tmp_path / "grey.png")
    assert img.shape == (6, 8, 3) and all(np.array_equal(img[..., c], grey) for c in range(3))
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 200, 10, 255  # blue 200, red 10 in OpenCV's order
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    rgba = read_image(tmp_path / "alpha.png")
    assert rgba.shape == (4, 4, 3) and (rgba[..., 0] == 10).all() and (rgba[..., 2] == 200).all()
    sixteen = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4096)
    cv2.imwrite(str(tmp_path / "deep.png"), sixteen)
    assert np.array_equal(read_image(tmp_path / "deep.png")[..., 1], (sixteen // 256).astype(np.uint8))


def test_an_empty_range_is_one_error_naming_the_file(coded):
    with pytest.raises(MediaError, match="no frames in the requested range") as err:
        read_frames(coded.path, start=10.0)
    assert err.value.path == str(coded.path)


def test_too_many_pixels_is_refused_with_the_size_and_the_hint(coded):
    assert probe_for_processing(coded.path, max_pixels=192 * 96).width == 192  # exactly at the limit
    with pytest.raises(MediaError, match=r"resolution 192x96 is above the limit \(18431 pixels\)") as err:
        probe_for_processing(coded.path, max_pixels=192 * 96 - 1, hint="try --max-side")
    assert err.value.path == str(coded.path) and err.value.hint == "try --max-side"


def test_odd_sized_frames_are_padded_on_the_right_and_bottom_not_moved(tmp_path):
    # 33x31 grey frames (no chroma to blur): edges between columns 9 and 10 and rows 14 and 15;
    # H.264 needs even sizes, so the writer adds a column and a row
    frame = np.full((31, 33, 3), 30, np.uint8)
    frame[:, 10:] = 220
    frame[15:, :10] = 120
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 25.0) as w:
        for _ in range(3):
            w.write(frame)
    got = read_frames(path)[0].astype(int)
    assert got.shape == (32, 34, 3)
    assert np.abs(got[:31, :33] - frame).mean() < 3.0  # the picture where it was
    assert abs(got[:15, 9] - 30).max() < 12 and abs(got[:, 10] - 220).max() < 12
    assert abs(got[14, :10] - 30).max() < 12 and abs(got[15, :10] - 120).max() < 12
    assert np.abs(got[:31, 33] - frame[:, 32]).max() < 12 and np.abs(got[31, :33] - frame[30]).max() < 12


@pytest.mark.parametrize(("end", "shown"), [(None, [0, 2, 4, 6, 8, 9]), (0.4, [0, 2, 4, 6, 8])])
def test_constant_rate_resamples_to_the_latest_frame_and_holds_the_last_one_period(tmp_path, end, shown):
    path = tmp_path / "cfr.mp4"
    w = VideoWriter(path, constant_fps=12.5)
    for i in range(10):  # 25 fps input: frames at 0, 0.04, ... 0.36 s
        w.write(np.full((32, 32, 3), 20 * i, np.uint8), time=i / 25)
    w.close(end)
    # output times k/12.5 s show the latest input frame at or before them; without an end the last input
    # (0.36 s) is held for one output period, to 0.44 s, so 0.40 s is still shown
    assert w.frames == len(shown) and w.duration == pytest.approx(len(shown) / 12.5)
    frames = read_frames(path)
    assert [int(round(f.mean() / 20)) for f in frames] == shown


def test_files_that_do_not_open_or_hold_no_video_name_themselves(tmp_path):
    from faceexpr_cli.media.probe import probe

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video\n" * 20)
    with pytest.raises(MediaError, match="not a readable media file") as err:
        probe(bad)
    assert err.value.path == str(bad) and err.value.hint == "is it truncated or not a video?"
    wav = tmp_path / "sound.wav"
    from faceexpr_cli.samples.talking_head import write_wav

    write_wav(wav, np.zeros(1600, np.float32), 16000)
    with pytest.raises(MediaError, match=r"has no video stream \(it holds audio\)") as err:
        probe(wav)
    assert err.value.path == str(wav) and err.value.hint == "pass a video file"
    # a podcast-style file with audio and a subtitle track: both kinds named, sorted
    srt = tmp_path / "words.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,050\nhello\n", encoding="utf-8")
    both = tmp_path / "talk.mp4"
    from faceexpr_cli.media import run_ffmpeg

    run_ffmpeg(["-i", str(wav), "-i", str(srt), "-c:a", "aac", "-c:s", "mov_text", str(both)], wav)
    with pytest.raises(MediaError) as err:
        probe(both)
    assert err.value.problem == "has no video stream (it holds audio, subtitle)"
