"""Each written frame is shown as long as its source frame was - the last one too, where the rate changes.

Found by a mutation run (a random clip of phone VFR footage ending on the first 24 fps frame after 30 fps ones came
out 1/120 s short): with B-frames, an mp4's last sample in decode order is not the last frame shown, and the
muxer gives the clip's end the wrong frame's duration.
"""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from mediacheck import decode_video_times

from faceexpr_cli.media.writer import VideoWriter


def _packets(data: bytes) -> list[tuple[float, float]]:
    with av.open(io.BytesIO(data)) as box:
        vs = box.streams.video[0]
        tb = float(vs.time_base)
        return sorted((p.pts * tb, p.duration * tb) for p in box.demux(vs) if p.size and p.pts is not None)


@pytest.mark.parametrize("preset", ["superfast", "veryfast", "medium"])
@pytest.mark.parametrize("last", [1 / 24, 1 / 60, 0.5])
def test_the_last_frame_keeps_its_own_duration(preset, last):
    # smooth motion (what an encoder predicts with B-frames): a bright square moving across a gradient
    yy, xx = np.mgrid[0:96, 0:96]
    buf = io.BytesIO()
    w = VideoWriter(buf, 30, preset=preset)
    for k in range(30):  # 29 frames at 30 fps, then one shown for `last`
        frame = np.stack([(xx + yy + 2 * k) % 256] * 3, axis=-1).astype(np.uint8)
        frame[30:50, 10 + 2 * k:30 + 2 * k] = 250
        w.write(frame, time=k / 30)
    w.close(end=29 / 30 + last)
    frames, duration = decode_video_times(buf.getvalue())
    assert frames == 30
    assert duration == pytest.approx(29 / 30 + last, abs=1e-4)
    packets = _packets(buf.getvalue())
    assert packets[-1][1] == pytest.approx(last, abs=1e-4)
    assert all(d == pytest.approx(1 / 30, abs=1e-4) for _, d in packets[:-1])
