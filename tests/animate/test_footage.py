"""fx animate driven by phone and camera footage: the result plays on the driver's own clock (VFR kept, the
edit-list file taken like any other), with the driver's audio over the whole result. Measured on the file."""

from __future__ import annotations

import numpy as np
import pytest
from mediacheck import chirp_time, decode_audio, decode_video_times

from faceexpr_cli.animate.pipeline import AnimateOptions, animate


@pytest.fixture(scope="module")
def short_phone(tmp_path_factory):
    """0.5 s at 30 fps then 0.5 s at 24 fps, as the phone fixture."""
    from faceexpr_cli.samples.footage import make_phone_vfr

    return make_phone_vfr(tmp_path_factory.mktemp("phone") / "IMG_0002.MOV", seg_seconds=(0.5, 0.5))


def test_vfr_driver_keeps_its_timing_and_audio(short_phone, portrait_png, tmp_path):
    out = tmp_path / "vfr.mp4"
    result = animate(portrait_png, short_phone.path, out, AnimateOptions())
    frames, duration = decode_video_times(out)
    assert frames == short_phone.n_frames == result.frames == 27
    # the driver's own clock as its container states it (mediacheck, not fx): the HEVC fixture has B-frames, so its
    # mov muxer gives the last frame the previous sample's 1/30 s rather than 1/24 s
    _, source_duration = decode_video_times(short_phone.path)
    assert duration == pytest.approx(source_duration, abs=1e-3)
    assert abs(source_duration - short_phone.duration) <= 1 / 24 + 1e-6
    import av

    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        times = sorted(float(p.pts * vs.time_base) for p in c.demux(vs) if p.size)
    np.testing.assert_allclose(times, short_phone.frame_times, atol=1e-3)  # 1/30 s steps, then 1/24 s
    wave, rate = decode_audio(out)
    assert abs(len(wave) / rate - duration) <= 0.04
    assert chirp_time(wave, rate, 0.75, width=0.15) == pytest.approx(0.75, abs=0.05)


def test_edit_list_driver_is_not_called_truncated(edit_list_video, portrait_png, tmp_path):
    out = tmp_path / "edl.mp4"
    result = animate(portrait_png, edit_list_video.path, out, AnimateOptions(max_frames=20))
    frames, duration = decode_video_times(out)
    assert frames == result.frames == 20 and duration == pytest.approx(20 / 25, abs=1e-3)
    wave, rate = decode_audio(out)
    assert abs(len(wave) / rate - duration) <= 0.04
    assert chirp_time(wave, rate, 0.4) == pytest.approx(edit_list_video.chirp_offset + 0.4, abs=0.05)
