"""Crop geometry at its edges: half-pixel boundaries of the outside mask, non-square boxes, interpolation choice,
the aligned square's absolute scale, and grey images through every fill."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceexpr_cli.crop import geometry as g


def test_square_matrix_scales_each_axis_by_its_own_side():
    # box 20 wide, 10 tall onto 10 x 10: sx = 0.5, sy = 1; offsets sx * (0.5 - x0) - 0.5 and sy * (0.5 - y0) - 0.5
    m = g.square_matrix(np.array([4, 2, 24, 12]), 10)
    np.testing.assert_allclose(m, [[0.5, 0, 0.5 * (0.5 - 4) - 0.5], [0, 1, 1 * (0.5 - 2) - 0.5]])
    assert m.dtype == np.float64 and m.shape == (2, 3)
    flat = g.square_matrix(np.array([5, 5, 5, 15]), 10)  # a zero-width box does not divide by zero
    assert np.isfinite(flat).all() and flat[0, 0] == pytest.approx(10 / 1e-6)


def test_a_non_square_box_is_stretched_onto_the_square():
    image = np.arange(20 * 40, dtype=np.float32).reshape(20, 40) % 251
    image = np.repeat(image[..., None], 3, axis=2).astype(np.uint8)
    out = g.crop_square(image, np.array([0, 0, 40, 20]), 20, fill="black")  # 2:1 onto 1:1: columns halved
    want = cv2.resize(image, (20, 20), interpolation=cv2.INTER_AREA)  # width halved, height kept
    assert out.shape == (20, 20, 3)
    assert np.abs(out.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize(("box", "inside"), [
    ([-0.5, 0, 9.5, 10], True), ([-0.6, 0, 9.4, 10], False),  # left: the first pixel centre at x = -0.5 is in
    ([0.5, 0, 10.5, 10], True), ([0.6, 0, 10.6, 10], False),  # right: the last centre at 9.5 = width - 0.5
    ([0, -0.5, 10, 9.5], True), ([0, -0.6, 10, 9.4], False),
    ([0, 0.5, 10, 10.5], True), ([0, 0.6, 10, 10.6], False),
])
def test_outside_mask_boundary_is_half_a_pixel_past_the_edge(box, inside):
    m = g.square_matrix(np.array(box), 10)  # scale 1: crop pixel u has its centre at frame x0 + u
    mask = g.outside_mask(m, 10, 10, 10)
    if inside:
        assert mask is None
    else:
        assert mask is not None and mask.sum() == 10  # exactly one row or column of centres past the edge


@pytest.mark.parametrize(("box", "col", "row"), [
    ([-0.5, -3, 9.5, 7], 0, None),  # 3 rows above the frame; column 0 sits at x = -0.5: inside
    ([0.5, -3, 10.5, 7], 9, None),  # column 9 at x = 9.5: inside
    ([-3, -0.5, 7, 9.5], None, 0),
    ([-3, 0.5, 7, 10.5], None, 9),
])
def test_outside_mask_per_pixel_uses_the_same_half_pixel_rule(box, col, row):
    mask = g.outside_mask(g.square_matrix(np.array(box), 10), 10, 10, 10)
    want = np.zeros((10, 10), bool)
    if col is not None:
        want[:3, :] = True  # the rows above
        assert not mask[3:, col].any()
    else:
        want[:, :3] = True  # the columns left
        assert not mask[row, 3:].any()
    np.testing.assert_array_equal(mask, want)


def test_outside_mask_in_a_wide_frame_uses_width_and_height_apart():
    # frame 20 wide, 10 tall: a crop at x 8..18, y 5..15 leaves only at the bottom (5 rows)
    mask = g.outside_mask(g.square_matrix(np.array([8, 5, 18, 15]), 10), 10, 20, 10)
    want = np.zeros((10, 10), bool)
    want[5:] = True
    np.testing.assert_array_equal(mask, want)
    assert g.outside_mask(g.square_matrix(np.array([10, 0, 20, 10]), 10), 10, 20, 10) is None


@pytest.mark.parametrize(("side", "want"), [(20, cv2.INTER_AREA), (10, cv2.INTER_LINEAR), (5, cv2.INTER_LINEAR)])
def test_shrinking_uses_area_sampling_and_everything_else_linear(side, want, monkeypatch):
    seen = []

    def spy(image, m, size, interp):
        seen.append(interp)
        return np.zeros((size, size, 3), np.uint8)

    monkeypatch.setitem(g.FILLS._items, "spy", spy)  # a fill that records how it was asked to sample
    g.crop_square(np.zeros((40, 40, 3), np.uint8), np.array([0, 0, side, side]), 10, fill="spy")
    assert seen == [want]  # 10 px out of a 20 px box is scale 0.5 (area); 10 of 10 is scale 1 (linear)


def test_grey_images_through_every_fill():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (16, 16), dtype=np.uint8)
    box = np.array([-4, 0, 12, 16])  # 4 columns left of the frame, scale 1
    for fill in ("black", "replicate", "reflect", "blur"):
        out = g.crop_square(image, box, 16, fill=fill)
        assert out.shape == (16, 16), fill
        np.testing.assert_array_equal(out[:, 4:], image[:, :12])  # inside: the frame's own pixels
    np.testing.assert_array_equal(g.crop_square(image, box, 16, fill="black")[:, :4], 0)
    blur = g.crop_square(image, box, 16, fill="blur")[:, :4].astype(float)
    assert blur.std() < image.std() and blur.mean() > 30


def _kps(iod=40.0, cx=200.0, cy=150.0):
    # eyes 40 apart, mouth corners one eye distance below the eyes: FFHQ's quad side is 2 * 2 * iod = 4 iod
    # (twice the eye distance beats 1.8 times the eye-to-mouth distance), so with margin m the crop spans
    # 4 iod * (1 + 2m) / 1.6 source pixels
    return np.array([[-0.5, -0.4], [0.5, -0.4], [0.0, 0.1], [-0.4, 0.6], [0.4, 0.6]]) * iod + [cx, cy]


@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_aligned_square_spans_four_eye_distances_times_the_margin_over_1_6(margin):
    from faceexpr_cli.face.align import transform_points

    size = 200
    kps = np.stack([_kps()] * 4)
    m = g.align_matrices(kps, np.arange(4) / 25, size, margin)[0]
    eyes = transform_points(m, kps[0][:2])
    span = 4 * 40.0 * (1 + 2 * margin) / 1.6  # source pixels across the crop
    assert np.linalg.norm(eyes[1] - eyes[0]) == pytest.approx(40.0 * size / span, rel=1e-4)
    box = g.matrix_crop_box(m, size)
    np.testing.assert_allclose(box[2:] - box[:2], [span, span], rtol=1e-4)  # upright: the box is the square
