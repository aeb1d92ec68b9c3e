"""AVI stores no presentation times: with B-frames in it, the packets' stamps count decode order, and a frame's
stamp goes backwards against the one shown before it (what old camcorders and screen recorders write as H.264 in
AVI). The frames are then timed by their rank in display order, read from the start, and stream copies are
refused; an AVI without B-frames, or whose codec's parser restores the order (MPEG-4 Part 2), is read as usual."""

from __future__ import annotations

import av
import numpy as np
import pytest

from faceexpr_cli.clip.synthetic import make_coded_video, read_code
from faceexpr_cli.errors import MediaError
from faceexpr_cli.media import iter_frames, run_ffmpeg
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.media.clipping import cut_many
from faceexpr_cli.media.cut import cut
from faceexpr_cli.media.timeline import frame_times


@pytest.fixture(scope="module")
def avis(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("avi")
    coded = make_coded_video(tmp / "coded.mp4", seconds=2.0, fps=25.0)
    out = {}
    for name, codec in {"h264_b": ["libx264", "-bf", "2", "-g", "10"], "h264": ["libx264", "-bf", "0"],
                        "mpeg4_b": ["mpeg4", "-bf", "2", "-q:v", "3"]}.items():
        out[name] = tmp / f"{name}.avi"
        run_ffmpeg(["-i", str(coded.path), "-c:v", codec[0], *codec[1:], "-c:a", "copy", str(out[name])], coded.path)
    return out


def _stamps_go_backwards(path) -> bool:
    """Plain PyAV: does a decoded frame's pts ever fall below one decoded before it?"""
    with av.open(str(path)) as c:
        pts = [f.pts for f in c.decode(video=0)]
    return bool(np.any(np.diff(pts) < 0))


def test_only_an_avi_whose_stamps_go_backwards_is_timed_by_rank(avis):
    assert _stamps_go_backwards(avis["h264_b"]) and frame_times(avis["h264_b"]).decode_order
    for name in ("h264", "mpeg4_b"):
        assert not _stamps_go_backwards(avis[name]) and not frame_times(avis[name]).decode_order, name


def test_frames_come_in_order_at_increasing_times_from_any_start(avis):
    path = avis["h264_b"]
    table = frame_times(path)
    frames = list(iter_frames(path))
    assert [read_code(f.image) for f in frames] == list(range(50))
    assert [f.time for f in frames] == pytest.approx(table.times.tolist()) and np.all(np.diff(table.times) > 0)
    # from a start: the frames shown from then on, no seek (the stamps cannot be sought by)
    first = int(np.searchsorted(table.times, 0.7 - 1e-6))
    assert [read_code(f.image) for f in iter_frames(path, start=0.7)] == list(range(first, 50))
    # resampled: the latest frame at or before each output time
    want = [int(np.searchsorted(table.times, t + 1e-6, side="right")) - 1 for t in np.arange(20) / 10]
    got = [read_code(f.image) for f in iter_frames(path, fps=10)][:20]
    assert got == [max(w, 0) for w in want]


def test_exact_cuts_hold_the_frames_shown_in_each_span(avis):
    path = avis["h264_b"]
    table = frame_times(path)
    spans = [(1.2, 1.6), (0.3, 0.7)]
    cuts = {c.index: c for c in cut_many(path, spans)}
    for i, (s, e) in enumerate(spans):
        a, b = table.span(s, e)
        assert [read_code(f) for f in decode_clip(cuts[i].data, audio=False).frames] == list(range(a, b)), (s, e)
        assert cuts[i].has_audio and cuts[i].audio_coverage == 1.0


def test_stream_copies_of_decode_order_stamps_are_refused(avis, tmp_path):
    for call in (lambda: list(cut_many(avis["h264_b"], [(0.5, 1.0)], "fast")),
                 lambda: cut(avis["h264_b"], tmp_path / "f.mp4", 0.5, 1.0, "fast")):
        with pytest.raises(MediaError) as err:
            call()
        assert err.value.path == str(avis["h264_b"])
        assert err.value.problem == ("stamps its frames in decode order (B-frames in AVI): a stream copy would show "
                                     "them out of order")
        assert err.value.hint == "cut it in the exact mode"
    assert list(tmp_path.iterdir()) == []
    r = cut(avis["h264"], tmp_path / "f.mp4", 0.5, 1.0, "fast")  # without B-frames the copy is fine
    assert r.mode == "fast" and (tmp_path / "f.mp4").exists()


def test_a_decoded_clip_keeps_the_decoders_order(avis):
    got = decode_clip(avis["h264_b"])
    assert [read_code(f) for f in got.frames] == list(range(50)) and np.all(np.diff(got.times) > 0)
    assert got.source_fps == 25.0 and got.audio.shape == (1, 32000)


def test_an_avi_without_b_frames_is_still_sought(avis):
    table = frame_times(avis["h264"])
    first = int(np.searchsorted(table.times, 1.1 - 1e-6))
    assert [read_code(f.image) for f in iter_frames(avis["h264"], start=1.1)][:3] == [first, first + 1, first + 2]


def test_an_avi_with_dropped_frames_is_whole_and_a_cut_off_one_is_truncated(avis, tmp_path):
    table = frame_times(avis["h264"])
    # ffmpeg wrote empty chunks (dropped frames: the frame before stays on screen) where the source's video starts
    # after its audio; the index counts them, the demuxer skips them
    assert table.declared > len(table) == 50 and table.demuxed == table.declared
    assert [read_code(f.image) for f in iter_frames(avis["h264"])] == list(range(50))
    data = avis["h264"].read_bytes()
    cut_off = tmp_path / "cut.avi"  # a download that stopped part-way: no index, the header's count stays
    cut_off.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(MediaError) as err:
        list(iter_frames(cut_off))
    assert err.value.problem.startswith("is truncated: the stream ends at frame ")
    assert err.value.problem.endswith(f" of {table.declared}")
