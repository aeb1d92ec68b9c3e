"""`media.cut` and the span walk of `media.clipping`: the default mode, what `cut` passes on, the exact messages
and hints of its refusals, spans that end on the same frame, and raw streams without timestamps."""

from __future__ import annotations

import pytest

from faceexpr_cli.clip.synthetic import make_coded_video, read_code
from faceexpr_cli.errors import MediaError, UsageError
from faceexpr_cli.media import run_ffmpeg
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.media.clipping import cut_many, iter_span_frames
from faceexpr_cli.media.cut import cut
from faceexpr_cli.media.images import read_image
from faceexpr_cli.media.reader import iter_frames


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    return make_coded_video(tmp_path_factory.mktemp("cut") / "coded.mp4", seconds=2.0, fps=25.0)


def _codes_of(path) -> list[int]:
    return [read_code(f) for f in decode_clip(path.read_bytes(), audio=False).frames]


def test_the_default_cut_is_exact_and_frame_accurate(coded, tmp_path):
    r = cut(coded.path, tmp_path / "a.mp4", 0.5, 1.0)  # 0.5 s is frame 12.5: the frames shown are 13..24
    assert r.mode == "exact" and r.snap == pytest.approx(0.02) and r.actual_start == pytest.approx(0.52)
    assert _codes_of(tmp_path / "a.mp4") == list(range(13, 25))


def test_the_quality_asked_for_reaches_the_encoder(coded, tmp_path):
    best = cut(coded.path, tmp_path / "best.mp4", 0.0, 1.0, crf=0)
    worst = cut(coded.path, tmp_path / "worst.mp4", 0.0, 1.0, crf=51)
    default = cut(coded.path, tmp_path / "default.mp4", 0.0, 1.0)
    sizes = [(tmp_path / f"{n}.mp4").stat().st_size for n in ("best", "default", "worst")]
    assert sizes[0] > sizes[1] > sizes[2], sizes  # crf 0 (lossless) > crf 18 > crf 51
    assert best.mode == worst.mode == default.mode == "exact"


def test_exact_cuts_refuse_a_non_mp4_name_with_the_hint(coded, tmp_path):
    with pytest.raises(UsageError) as err:
        cut(coded.path, tmp_path / "a.mkv", 0.0, 1.0)
    assert err.value.message == "exact cuts are written as MP4, not '.mkv'"
    assert err.value.hint == "name the output .mp4"
    assert not list(tmp_path.glob("*a.mkv*"))  # nothing left behind


def test_unknown_modes_are_refused_with_the_modes_listed(coded, tmp_path):
    for call in (lambda: cut(coded.path, tmp_path / "a.mp4", 0.0, 1.0, "slow"),
                 lambda: list(cut_many(coded.path, [(0.0, 1.0)], "slow"))):
        with pytest.raises(UsageError) as err:
            call()
        assert err.value.message == "unknown cut mode 'slow'" and err.value.hint == "use one of: exact, fast"


def test_an_unreadable_image_says_what_to_pass(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(MediaError) as err:
        read_image(bad)
    assert "not a readable image" in err.value.message and err.value.hint == "pass a PNG or JPEG"


def test_spans_that_end_on_the_same_frame_are_each_yielded(coded):
    # a frame k belongs where its middle 0.04 k + 0.02 lies: (0, 0.6) holds 0..14, (0.2, 0.6) 5..14 (both complete
    # at frame 14), (0.11, 0.3) 3..6
    spans = [(0.0, 0.6), (0.2, 0.6), (0.11, 0.3)]
    got = {s.index: [read_code(f.to_ndarray(format="rgb24")) for f in s.frames]
           for s in iter_span_frames(coded.path, spans)}
    assert got == {0: list(range(15)), 1: list(range(5, 15)), 2: list(range(3, 7))}
    clips = {c.index: c for c in cut_many(coded.path, spans, "exact", audio=False)}
    assert sorted(clips) == [0, 1, 2] and [clips[i].frames for i in range(3)] == [15, 10, 4]


def test_a_raw_stream_without_timestamps_is_refused_not_read_as_empty(coded, tmp_path):
    raw = tmp_path / "raw.h264"
    run_ffmpeg(["-i", str(coded.path), "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", "-an", str(raw)], coded.path)
    with pytest.raises(MediaError) as err:
        list(iter_frames(raw))
    assert "without timestamps" in err.value.message and "-c copy OUT.mp4" in err.value.hint
    # the same frames in a container read back whole
    boxed = tmp_path / "boxed.mp4"
    run_ffmpeg(["-i", str(raw), "-c", "copy", str(boxed)], raw)
    assert [read_code(f.image) for f in iter_frames(boxed)] == list(range(50))


@pytest.fixture(scope="module")
def gop10(tmp_path_factory):
    """2 s at 25 fps with a key frame every 10 frames (0, 0.4, 0.8, ... s)."""
    tmp = tmp_path_factory.mktemp("gop")
    src = make_coded_video(tmp / "src.mp4", seconds=2.0, fps=25.0)
    out = tmp / "gop10.mp4"
    run_ffmpeg(["-i", str(src.path), "-c:v", "libx264", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0",
                "-bf", "0", "-c:a", "copy", str(out)], src.path)
    return out


def test_a_fast_cut_starts_at_the_key_frame_before_the_start(gop10, tmp_path):
    r = cut(gop10, tmp_path / "f.mp4", 1.3, 1.8, "fast")  # key frames at 0.8 and 1.2 s: 1.2 s
    assert (r.mode, r.start, r.end) == ("fast", 1.3, 1.8)
    assert r.actual_start == pytest.approx(1.2) and r.snap == pytest.approx(-0.1)
    codes = _codes_of(tmp_path / "f.mp4")
    assert codes[0] == 30 and codes[-1] in (44, 45)  # frame 30 is at 1.2 s; the copy ends near 1.8 s


def test_an_exact_cut_may_be_named_mov_and_reports_the_range_asked(coded, tmp_path):
    r = cut(coded.path, tmp_path / "a.mov", 0.2, 0.6)
    assert (r.start, r.end, r.path) == (0.2, 0.6, str(tmp_path / "a.mov"))
    assert _codes_of(tmp_path / "a.mov") == list(range(5, 15))


def test_image_suffixes_are_recognised_in_any_case():
    from faceexpr_cli.media.images import is_image_path

    assert is_image_path("a.png") and is_image_path("B.JPG") and is_image_path("c.Tiff")
    assert not is_image_path("a.mp4") and not is_image_path("png")


def test_a_failed_image_write_raises_its_own_error_and_leaves_nothing(tmp_path, monkeypatch):
    import numpy as np

    from faceexpr_cli.media.images import write_image

    def full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(tmp_path), "write_bytes", full)
    with pytest.raises(OSError, match="No space left on device"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
