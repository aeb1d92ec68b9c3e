"""The writer's audio starts where the clip starts: a clip cut from 3.2 s carries the source's audio from 3.2 s
on, measured by the footage chirp's frequency (tests/mediacheck.chirp_time), for the writer itself and through
`fx clip`."""

from __future__ import annotations

import io
import shutil

import av
import numpy as np
import pytest
from mediacheck import chirp_time, decode_audio

from faceexpr_cli.media.writer import VideoWriter

START = 3.2
TOL = 0.02  # s: the chirp sweeps 100 Hz/s, so 20 ms is 2 Hz


def _source_frame(path, t: float) -> np.ndarray:
    """The source's frame shown at ``t`` (s from its first shown frame), decoded with plain PyAV."""
    with av.open(str(path)) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(c.streams.video[0])]
    t0 = frames[0][0]
    return min(frames, key=lambda f: abs(f[0] - t0 - t))[1]


@pytest.mark.parametrize("footage", ["phone_vfr", "edit_list_video"])
def test_writer_audio_starts_at_audio_start(footage, request, tmp_path):
    src = request.getfixturevalue(footage)
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=25, audio=src.path, audio_start=START, audio_duration=0.6) as w:
        for _ in range(15):
            w.write(np.full((64, 64, 3), 128, np.uint8))
    wave, rate = decode_audio(path)
    assert len(wave) / rate == pytest.approx(0.6, abs=0.03)
    for at in (0.1, 0.3, 0.5):  # clip time -> the chirp's source time, relative to the clip's start
        assert chirp_time(wave, rate, at) - src.chirp_offset == pytest.approx(START + at, abs=TOL), at


def test_writer_audio_into_memory_starts_at_audio_start(phone_vfr):
    buf = io.BytesIO()
    with VideoWriter(buf, fps=25, audio=phone_vfr.path, audio_start=START, audio_duration=0.4) as w:
        for _ in range(10):
            w.write(np.zeros((32, 32, 3), np.uint8))
    wave, rate = decode_audio(buf.getvalue())
    assert chirp_time(wave, rate, 0.1) == pytest.approx(START + 0.1, abs=TOL)


def test_fx_clip_from_3_2_s_carries_the_audio_from_3_2_s(edit_list_video, tmp_path, capsys):
    from faceexpr_cli.cli.app import main
    from faceexpr_cli.dataset.sources import iter_shard, list_shards
    from faceexpr_cli.media.clip_decode import decode_clip
    from faceexpr_cli.transcripts.vtt_writer import write_youtube_vtt

    video = tmp_path / "talk.mp4"
    shutil.copy(edit_list_video.path, video)
    write_youtube_vtt(tmp_path / "talk.en.vtt", [("hello", 0.3, 0.6), ("smile", START, 3.5), ("now", 3.6, 3.7)])
    out = tmp_path / "out"
    assert main(["clip", str(video), "-k", "smile", "--post", "0.6", "-o", str(out)]) == 0, capsys.readouterr()
    [sample] = [s for shard in list_shards(out) for s in iter_shard(shard)]
    # the clip's first picture is the source's picture at 3.2 s (and not its neighbours 40 ms away)
    first = decode_clip(sample.video, audio=False).frames[0].astype(float)
    diffs = {dt: np.abs(first - _source_frame(video, START + dt)).mean() for dt in (-0.04, 0.0, 0.04)}
    assert diffs[0.0] < 3.0 and diffs[0.0] < min(diffs[-0.04], diffs[0.04]), diffs
    wave, rate = decode_audio(sample.video)
    for at in (0.1, 0.3, 0.5):
        got = chirp_time(wave, rate, at) - edit_list_video.chirp_offset
        assert got == pytest.approx(START + at, abs=TOL), at
