"""Fast (stream-copy) cuts, measured on the copied packets with plain PyAV: the order clips come in, the key frame
each starts at, timestamps moved to start at 0 for video and audio alike, the audio copied up to the span's end,
and the frame count, rate, size and end each clip reports."""

from __future__ import annotations

import io

import av
import pytest

from faceexpr_cli.clip.synthetic import make_coded_video, read_code
from faceexpr_cli.media import clipping, run_ffmpeg


@pytest.fixture(scope="module")
def gop(tmp_path_factory):
    """2 s at 25 fps, 192x96, a key frame every 10 frames (0, 0.4, ... 1.6 s), two B-frames, AAC audio."""
    tmp = tmp_path_factory.mktemp("fast")
    src = make_coded_video(tmp / "src.mp4", seconds=2.0, fps=25.0)
    out = tmp / "gop.mp4"
    run_ffmpeg(["-i", str(src.path), "-c:v", "libx264", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0",
                "-bf", "2", "-c:a", "copy", str(out)], src.path)
    return out


def _measure(data: bytes) -> dict:
    """Codes of the decoded frames, the first video/audio times (s) and the audio's decoded length (s)."""
    with av.open(io.BytesIO(data)) as c:
        vs = c.streams.video[0]
        frames = list(c.decode(vs))
        out = {"codes": [read_code(f.to_ndarray(format="rgb24")) for f in frames],
               "v0": min(float(f.pts * vs.time_base) for f in frames), "a0": None, "audio": 0.0}
        if c.streams.audio:
            c.seek(0)
            a = c.streams.audio[0]
            packets = [p for p in c.demux(a) if p.size]
            out["a0"] = min(float(p.pts * a.time_base) for p in packets)
            out["audio"] = sum(float(p.duration * a.time_base) for p in packets)
    return out


def _copied(path, key: float, end: float) -> list[int]:
    """The frames a stream copy from ``key`` to ``end`` holds: the packets from the key frame on that are decoded
    (dts) before half a frame ahead of the end; with B-frames a reference frame shown after the end comes too."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        tb = vs.time_base
        kept = [round(float(p.pts * tb) / 0.04) for p in c.demux(vs)
                if p.size and p.pts is not None and float(p.dts * tb) < end - 0.02 and float(p.pts * tb) >= key - 0.02]
    return sorted(kept)


def test_fast_cuts_come_in_start_order_and_start_at_the_key_frame_before(gop):
    spans = [(1.3, 1.8), (0.1, 0.5), (0.9, 1.3)]
    cuts = list(clipping.cut_many(gop, spans, "fast"))
    assert [c.index for c in cuts] == [1, 2, 0]  # by start, each with its place in the list asked
    assert [(c.start, c.end) for c in cuts] == [spans[1], spans[2], spans[0]]
    assert [c.actual_start for c in cuts] == pytest.approx([0.0, 0.8, 1.2])
    for c, first in zip(cuts, [0, 20, 30], strict=True):
        got = _measure(c.data)
        want = _copied(gop, c.actual_start, c.end)
        assert want[0] == first and want[-1] >= round(c.end / 0.04) - 1  # nothing the span shows is missing
        assert got["codes"] == want  # every copied frame decodes, in display order
        assert c.frames == len(want) and c.actual_end == pytest.approx(0.04 * (want[-1] + 1))
        assert c.fps == pytest.approx(c.frames / (c.actual_end - c.actual_start))
        assert (c.width, c.height) == (192, 96) and c.has_audio and c.audio_coverage == 1.0
        # both streams moved to start at 0, the audio copied from the key frame to the span's end
        assert got["v0"] == pytest.approx(0.0, abs=1e-3)
        # whole AAC packets (64 ms at 16 kHz): the first starting at or after the key frame, the last before the end
        assert -1e-6 <= got["a0"] < 0.064
        assert got["audio"] == pytest.approx(c.end - c.actual_start, abs=0.064)


def test_a_fast_cut_without_audio_copies_only_the_video(gop):
    (c,) = clipping.cut_many(gop, [(0.5, 0.9)], "fast", audio=False)
    got = _measure(c.data)
    assert got["a0"] is None and not c.has_audio and c.audio_coverage == 0.0
    assert got["codes"] == _copied(gop, 0.4, 0.9) and got["codes"][0] == 10 and c.actual_start == pytest.approx(0.4)
