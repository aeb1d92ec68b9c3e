"""``ClipDataset(size=...)`` keeps the aspect (short side, then centre crop) unless asked to squash.

The clip is a known pattern: a white disc in the middle of a 16:9 (or 9:16) frame, with red bands in the outer
parts that a centre crop must cut away. Shapes are measured on the output pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.dataset import ClipDataset

RADIUS = 120
BAND = 100  # red bands this wide along both ends of the long side


def _pattern(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.full((height, width, 3), 90, np.uint8)
    img[(xx - width / 2 + 0.5) ** 2 + (yy - height / 2 + 0.5) ** 2 <= RADIUS**2] = 255
    long_axis = xx if width >= height else yy
    long_side = max(width, height)
    img[(long_axis < BAND) | (long_axis >= long_side - BAND)] = (220, 20, 20)
    return img


def _write(path, image: np.ndarray, n: int = 6) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        s.options = {"crf": "12"}
        for _ in range(n):
            for packet in s.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


@pytest.fixture(scope="module", params=[(640, 360), (360, 640)], ids=["wide", "tall"])
def clip_dir(request, tmp_path_factory):
    w, h = request.param
    d = tmp_path_factory.mktemp(f"aspect_{w}x{h}")
    _write(d / "disc.mp4", _pattern(w, h))
    return d, (w, h)


def _disc(frame: np.ndarray) -> tuple[float, float, float, float]:
    """(width, height, centre x, centre y) of the white disc, from its pixels."""
    white = (frame.min(axis=2) > 200)
    ys, xs = np.nonzero(white)
    return float(np.ptp(xs) + 1), float(np.ptp(ys) + 1), float(xs.mean()), float(ys.mean())


def _red(frame: np.ndarray) -> float:
    f = frame.astype(int)
    return float(((f[..., 0] > 150) & (f[..., 1] < 80)).mean())


def _sample(clip_dir, **kw) -> np.ndarray:
    [s] = list(ClipDataset(clip_dir, audio=False, **kw))
    return s["frames"].numpy()


def test_square_size_keeps_the_disc_round_and_crops_the_centre(clip_dir):
    d, (w, h) = clip_dir
    frames = _sample(d, size=224)
    assert frames.shape == (6, 224, 224, 3)
    dw, dh, cx, cy = _disc(frames[0])
    expected = 2 * RADIUS * 224 / min(w, h)  # the short side became 224
    assert abs(dw - expected) <= 3 and abs(dh - expected) <= 3
    assert abs(cx - 111.5) < 1.5 and abs(cy - 111.5) < 1.5  # the centre square, not a corner
    assert _red(frames[0]) == 0  # the bands lie outside the centre square
    # the pixels are the source's centre square, resized (computed here from the source frame)
    import cv2

    src = _pattern(w, h)
    side = min(w, h)
    x0, y0 = (w - side) // 2, (h - side) // 2
    expected_img = cv2.resize(src[y0:y0 + side, x0:x0 + side], (224, 224), interpolation=cv2.INTER_AREA)
    assert np.abs(frames[0].astype(int) - expected_img).mean() < 3


def test_squash_stretches_to_the_size(clip_dir):
    d, (w, h) = clip_dir
    frames = _sample(d, size=224, resize="squash")
    assert frames.shape == (6, 224, 224, 3)
    dw, dh, _, _ = _disc(frames[0])
    assert abs(dw - 2 * RADIUS * 224 / w) <= 3 and abs(dh - 2 * RADIUS * 224 / h) <= 3
    assert abs(_red(frames[0]) - 2 * BAND / max(w, h)) < 0.02  # the whole frame is there


def test_non_square_size_covers_then_crops(clip_dir):
    d, (w, h) = clip_dir
    frames = _sample(d, size=(160, 120))  # 4:3 out of 16:9 (crop the sides) or 9:16 (crop top and bottom)
    assert frames.shape == (6, 120, 160, 3)
    scale = max(160 / w, 120 / h)
    dw, dh, cx, cy = _disc(frames[0])
    assert abs(dw - 2 * RADIUS * scale) <= 3 and abs(dh - 2 * RADIUS * scale) <= 3
    assert abs(cx - 79.5) < 1.5 and abs(cy - 59.5) < 1.5


def test_unknown_resize_mode_is_refused(clip_dir):
    from faceexpr_cli.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown resize mode 'stretch'"):
        ClipDataset(clip_dir[0], size=224, resize="stretch")
