"""Framing: squares shifted inside the frame, and what fills the part that still falls outside.

Pixels are checked against an independent computation: the source frames decoded here with PyAV, and a numpy
bilinear sampler (pixel centres at half-integers, border rule per fill mode) standing in for OpenCV's warp.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.cli.app import main
from faceexpr_cli.crop import geometry as g
from faceexpr_cli.crop import read_manifest

W, H = 640, 360


# --- independent helpers ----------------------------------------------------------------------------------------
def _decode(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _border_index(i: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour indices mapped into [0, n) by the border rule, and whether each is a real pixel."""
    valid = (i >= 0) & (i < n)
    if mode == "reflect":  # mirrored about the edge pixel: ... 2 1 | 0 1 2 ... n-2 n-1 | n-2 ...
        i = np.abs(i)
        i = np.where(i >= n, 2 * (n - 1) - i, i)
    return np.clip(i, 0, n - 1), valid


def _sample(image: np.ndarray, box, size: int, mode: str = "replicate") -> np.ndarray:
    """What ``box`` of ``image`` looks like at ``size`` x ``size`` (bilinear; outside by ``mode``)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    img = image.astype(np.float64)

    def axis(start, end, n):
        c = start + (np.arange(size) + 0.5) * (end - start) / size - 0.5
        f = np.floor(c)
        a = c - f
        i0, v0 = _border_index(f.astype(int), n, mode)
        i1, v1 = _border_index(f.astype(int) + 1, n, mode)
        return i0, i1, a, v0, v1

    yi0, yi1, ay, yv0, yv1 = axis(y0, y1, image.shape[0])
    xi0, xi1, ax, xv0, xv1 = axis(x0, x1, image.shape[1])

    def px(yi, xi, yv, xv):
        v = img[yi][:, xi]
        if mode == "black":
            v = v * (yv[:, None] & xv[None, :])[..., None]
        return v

    ay, ax = ay[:, None, None], ax[None, :, None]
    out = ((1 - ay) * (1 - ax) * px(yi0, xi0, yv0, xv0) + (1 - ay) * ax * px(yi0, xi1, yv0, xv1)
           + ay * (1 - ax) * px(yi1, xi0, yv1, xv0) + ay * ax * px(yi1, xi1, yv1, xv1))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _mad(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _black_fraction(frames) -> float:
    return float(np.mean([(f.max(axis=2) < 12).mean() for f in frames]))


def _union_square(face_boxes, margin) -> np.ndarray:
    b = np.stack([np.asarray(x, np.float64) for x in face_boxes])
    x0, y0, x1, y1 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


# --- fill modes on a synthetic image (exact, no video) ----------------------------------------------------------
@pytest.fixture(scope="module")
def texture():
    """Noise over a left-red / right-blue split: every row and column differs from its neighbours."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 120, (90, 160, 3), dtype=np.uint8)
    img[:, :80, 0] += 120
    img[:, 80:, 2] += 120
    return img


def test_replicate_repeats_the_edge_row_and_reflect_mirrors(texture):
    box = np.array([20, -30, 120, 70])  # 100 px square, 30 rows above the frame; scale 1, exact
    rep = g.crop_square(texture, box, 100, fill="replicate")
    ref = g.crop_square(texture, box, 100, fill="reflect")
    blk = g.crop_square(texture, box, 100, fill="black")
    inside = texture[0:70, 20:120]
    for out in (rep, ref, blk):
        np.testing.assert_array_equal(out[30:], inside)  # the part inside the frame is the frame
    np.testing.assert_array_equal(rep[:30], np.repeat(texture[0:1, 20:120], 30, axis=0))
    np.testing.assert_array_equal(ref[:30], texture[30:0:-1, 20:120])  # row -d shows row d
    assert blk[:30].max() == 0


def test_blur_is_an_edge_coloured_smooth_copy_not_black(texture):
    box = np.array([-60, 0, 90, 150])  # 60 columns left of the frame, 60 rows below it (150 px square)
    out = g.crop_square(texture, box, 150, fill="blur")
    np.testing.assert_array_equal(out[:90, 60:], texture[:, :90])  # sharp where the frame is
    left = out[:90, :50].astype(float)
    assert left.mean() > 60  # not black
    assert left[..., 0].mean() > left[..., 2].mean() + 60  # the red half of the frame continues outwards
    grad = lambda a: np.abs(np.diff(a.astype(float), axis=1)).mean()  # noqa: E731
    assert grad(left) < 0.1 * grad(texture[:, :80])  # smooth: the noise is blurred away
    below = out[100:, 60:]
    assert below.mean() > 60 and grad(below) < 0.1 * grad(texture)


def test_blur_costs_nothing_inside_the_frame(texture):
    box = np.array([10.25, 5.5, 70.25, 65.5])
    np.testing.assert_array_equal(g.crop_square(texture, box, 48, fill="blur"),
                                  g.crop_square(texture, box, 48, fill="replicate"))


def test_rotated_crops_share_the_fills(texture):
    """Align mode's matrices: the same fill modes, outside decided per pixel."""
    import cv2

    m = cv2.getRotationMatrix2D((80, 45), 30, 0.8)  # rotated and scaled about the frame centre
    m[:, 2] += [-40, 10]
    crops = {f: g.warp_square(texture, m, 96, fill=f) for f in g.FILLS.names()}
    mask = g.outside_mask(m, 96, texture.shape[1], texture.shape[0])
    assert mask is not None and 0.05 < mask.mean() < 0.6
    deep = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # past the blended edge
    assert crops["black"][deep].max() == 0
    ring = ~mask & ~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    for f in ("replicate", "reflect", "blur"):  # away from the edge, all see the same frame pixels
        assert _mad(crops[f][ring], crops["black"][ring]) < 0.5
        assert crops[f][mask].mean() > 60


def test_unknown_fill_is_a_usage_error(texture):
    from faceexpr_cli.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown fill mode 'mirror'"):
        g.crop_square(texture, np.array([0, 0, 10, 10]), 8, fill="mirror")


# --- fx crop on 16:9 footage with the face near the left edge ---------------------------------------------------
@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    from faceexpr_cli.samples.footage import make_wide_edge

    footage = make_wide_edge(tmp_path_factory.mktemp("wide") / "wide.mp4", seconds=2.0)
    return footage, _decode(footage.path)


def _crop(wide, out, *args):
    footage, _ = wide
    code = main(["crop", str(footage.path), "--out", str(out), "--size", "128", "--no-embed", "--json", *args])
    assert code == 0
    df = read_manifest(out / "manifest.parquet")
    assert list(df["status"]) == ["ok"]
    row = df.iloc[0]
    return row, _decode(out / row["clip"])


@pytest.fixture(scope="module")
def union_black(wide, tmp_path_factory):
    return _crop(wide, tmp_path_factory.mktemp("union_black"), "--fill", "black")


def test_union_square_is_shifted_inside_not_barred(wide, union_black):
    footage, _ = wide
    row, clip = union_black
    boxes = np.array([np.asarray(b) for b in row["crop_boxes"]])
    # the fixture's point: the square around the face would leave the frame by a fifth of its side
    unshifted = _union_square(row["face_boxes"], 0.3)
    assert unshifted[0] < -0.15 * (unshifted[2] - unshifted[0])
    assert np.allclose(footage.extra["face_box"][:, 0].min(), np.stack(row["face_boxes"])[:, 0].min(), atol=25)
    # recorded: the same square moved right just enough, not resized, not moved vertically
    expected = unshifted + [-unshifted[0], 0, -unshifted[0], 0]
    np.testing.assert_allclose(boxes, np.repeat(expected[None], len(boxes), 0), atol=0.02)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= W).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 3] <= H).all()
    assert _black_fraction(clip) < 0.02  # was about a fifth of every frame (black bars)


def test_union_clip_pixels_are_the_recorded_box(wide, union_black):
    _, source = wide
    row, clip = union_black
    assert len(clip) == row["n_frames"]
    first = int(row["start_frame"])
    for k in (0, len(clip) // 2, len(clip) - 1):
        box = np.asarray(row["crop_boxes"][k])
        expected = _sample(source[first + k], box, 128)
        err = _mad(clip[k], expected)
        assert err < 3.0, (k, err)
        # the comparison can tell: 6 source pixels off is several times worse
        assert _mad(clip[k], _sample(source[first + k], box + [6, 0, 6, 0], 128)) > 2 * err


@pytest.mark.parametrize("fill", ["replicate", "blur"])
def test_square_larger_than_the_frame_is_filled(wide, tmp_path, fill):
    """--margin 0.9: the square is taller than the 360 px frame; it covers the height and only that spills."""
    _, source = wide
    row, clip = _crop(wide, tmp_path / fill, "--margin", "0.9", "--fill", fill)
    box = np.asarray(row["crop_boxes"][0])
    side = box[2] - box[0]
    assert side > H and box[0] >= 0 and box[2] <= W and box[1] < 0 and box[3] > H
    top = int(np.floor(-box[1] * 128 / side)) - 1  # output rows wholly above the frame
    bottom = 128 - int(np.floor((box[3] - H) * 128 / side)) + 1
    assert top >= 8 and bottom <= 120
    first = int(row["start_frame"])
    k = len(clip) // 2
    if fill == "replicate":  # the whole frame, outside included, matches the edge-clamped sampler
        assert _mad(clip[k], _sample(source[first + k], box, 128, "replicate")) < 3.0
        assert _mad(clip[k][:top], _sample(source[first + k], box, 128, "black")[:top]) > 20
    else:
        band = clip[k][:top].astype(float)
        assert band.mean() > 30  # not black
        assert np.abs(np.diff(band, axis=1)).mean() < 2.0  # smooth
        sharp = _sample(source[first + k], box, 128)
        np.testing.assert_array_less(_mad(clip[k][top + 3:bottom - 3], sharp[top + 3:bottom - 3]), 3.0)


# --- fx clip --faces on the same footage --------------------------------------------------------------------------
def test_clip_faces_square_is_shifted_inside(wide, tmp_path):
    import pyarrow.parquet as pq

    from faceexpr_cli.dataset import ClipDataset

    footage, source = wide
    out = tmp_path / "faces"
    code = main(["clip", str(footage.path), "--random", "1", "--post", "0.6", "--faces", "--face-size", "96",
                 "--fill", "black", "-o", str(out), "--json"])
    assert code == 0
    rows = pq.read_table(out / "index.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["ok"], rows
    [s] = list(ClipDataset(out, audio=False))
    faces = s["meta"]["faces"]
    assert faces["fill"] == "black"
    boxes = np.asarray(faces["crop_boxes"])
    side = boxes[:, 2] - boxes[:, 0]
    face = np.asarray(faces["face_boxes"])
    # the unshifted square (centred on the face) would leave on the left; the recorded one starts at 0
    # (the random window depends on the temporary path, so the amount is measured, not assumed)
    outside = np.clip(side / 2 - (face[:, 0] + face[:, 2]) / 2, 0, None) / side
    assert outside.mean() > 0.06
    assert np.allclose(boxes[:, 0], 0, atol=0.01) and (boxes[:, 3] <= H).all() and (boxes[:, 1] >= 0).all()
    frames = s["frames"].numpy()
    assert _black_fraction(frames) < 0.25 * outside.mean()  # unshifted, that share of each frame is black
    first = round(s["meta"]["actual_start"] * 25)
    for k in (0, len(frames) - 1):
        assert _mad(frames[k], _sample(source[first + k], boxes[k], 96)) < 4.0


def test_fill_is_checked_before_work(wide, tmp_path, capsys):
    footage, _ = wide
    assert main(["crop", str(footage.path), "--out", str(tmp_path / "c"), "--fill", "mirror"]) == 2
    assert "unknown --fill 'mirror'" in capsys.readouterr().err
    assert main(["clip", str(footage.path), "--random", "1", "--faces", "--fill", "mirror",
                 "-o", str(tmp_path / "f")]) == 2
    assert "unknown fill mode 'mirror'" in capsys.readouterr().err
    assert not (tmp_path / "f" / "index.parquet").exists()
