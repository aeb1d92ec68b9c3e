"""Clip pixels keep their colours: each channel of a decoded clip frame matches the same square cut here from the
decoded source frame. The source is strongly tinted (R >> G >> B), so a red/blue swap is far outside the margin."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.crop import CropOptions, crop_videos
from faceexpr_cli.crop.geometry import crop_square


def _decode(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def tinted(sample_video, tmp_path_factory):
    """The talking head with a warm tint: red kept, green x0.6, blue x0.25."""
    from faceexpr_cli.media.writer import write_video

    frames = [np.clip(f * np.array([1.0, 0.6, 0.25]), 0, 255).astype(np.uint8)
              for f in _decode(sample_video.path)[:50]]
    path = write_video(tmp_path_factory.mktemp("tinted") / "tinted.mp4", frames, fps=25)
    return path, _decode(path)


@pytest.mark.parametrize("mode", ["union", "follow"])
def test_clip_channels_match_the_source_square(tinted, tmp_path, mode):
    path, source = tinted
    res = crop_videos([path], tmp_path, CropOptions(size=96, mode=mode, embed=False, min_duration=0.5))
    [row] = res.rows
    clip = _decode(tmp_path / row["clip"])
    assert len(clip) == row["n_frames"] >= 10
    first = int(row["start_frame"])
    for k in (0, len(clip) // 2, len(clip) - 1):
        want = crop_square(source[first + k], np.asarray(row["crop_boxes"][k]), 96, fill="replicate")
        got = clip[k].astype(float)
        mean_got, mean_want = got.mean((0, 1)), want.astype(float).mean((0, 1))
        assert mean_want[0] > mean_want[2] + 40, mean_want  # the fixture is tinted enough to tell
        np.testing.assert_allclose(mean_got, mean_want, atol=4.0, err_msg=f"frame {k} channel means")
        per_pixel = np.abs(got - want).mean((0, 1))
        assert (per_pixel < 8.0).all(), (k, per_pixel)
