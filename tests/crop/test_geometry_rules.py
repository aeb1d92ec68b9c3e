"""Crop geometry against hand-computed cases: squares, union/follow rules, frame tests, fills, aligned squares.

Written from the survivors of a mutation run over crop/geometry.py (make mutation MODULE=crop FILES=geometry).
"""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.crop.geometry import (
    FILLS,
    align_matrices,
    crop_square,
    fill_keypoints,
    follow_crops,
    leaves_frame,
    matrix_crop_box,
    square_around,
    union_crops,
)
from faceexpr_cli.face.align import transform_points


def test_square_around_uses_the_longer_side_and_the_margin_on_each_side():
    np.testing.assert_allclose(square_around(np.array([10, 20, 50, 100]), 0.25), [-30, 0, 90, 120])  # tall
    np.testing.assert_allclose(square_around(np.array([0, 0, 40, 10]), 0.0), [0, -15, 40, 25])  # wide


def test_union_square_holds_every_box_and_moves_inside_the_frame():
    boxes = np.array([[100, 100, 140, 150], [120, 90, 170, 140]], np.float32)
    crops = union_crops(boxes, 0.0)
    np.testing.assert_allclose(crops, [[100, 85, 170, 155]] * 2)  # union 100,90,170,150: side 70 about (135, 120)
    np.testing.assert_allclose(union_crops(boxes, 0.0, frame=(160, 300)), [[90, 85, 160, 155]] * 2)


def test_follow_squares_have_the_median_side_and_follow_each_centre():
    boxes = np.array([[0, 0, 20, 10], [10, 10, 20, 40], [50, 50, 80, 60]], np.float32)  # sides 20, 30, 30 -> 30
    crops = follow_crops(boxes, 0.5)  # side 60
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    np.testing.assert_allclose(crops[:, 2:] - crops[:, :2], 60)
    np.testing.assert_allclose((crops[:, :2] + crops[:, 2:]) / 2, centres)
    inside = follow_crops(boxes, 0.5, frame=(100, 100))
    assert (inside[:, :2] >= 0).all() and (inside[:, 2:] <= 100).all()
    np.testing.assert_allclose(inside[0], [0, 0, 60, 60])


@pytest.mark.parametrize("edge", range(4))
def test_leaves_frame_on_each_edge_with_its_tolerance(edge):
    inside = np.array([[10.0, 10.0, 110.0, 110.0]])  # side 100: tolerance 2 px
    assert not leaves_frame(inside, 120, 120)
    for shift, leaves in ((1.9, False), (2.5, True)):
        crop = inside.copy()
        if edge < 2:  # left / top: move the crop to -shift
            crop[0, edge] -= 10 + shift
            crop[0, edge + 2] -= 10 + shift
        else:  # right / bottom: past 120 by shift
            crop[0, edge] += 10 + shift
            crop[0, edge - 2] += 10 + shift
        assert leaves_frame(crop, 120, 120) is leaves, (edge, shift)
    assert leaves_frame(inside, 120, 120, tolerance=0.0) is False


def test_fills_outside_the_frame():
    image = np.tile(np.arange(10, dtype=np.uint8)[None, :, None] * 20, (10, 1, 3))  # columns 0, 20, ..., 180
    box = np.array([-2, 0, 8, 10])  # two columns left of the frame, at scale 1
    black = crop_square(image, box, 10, fill="black")[0, :, 0]
    replicate = crop_square(image, box, 10, fill="replicate")[0, :, 0]
    reflect = crop_square(image, box, 10, fill="reflect")[0, :, 0]
    np.testing.assert_array_equal(black, [0, 0, 0, 20, 40, 60, 80, 100, 120, 140])
    np.testing.assert_array_equal(replicate, [0, 0, 0, 20, 40, 60, 80, 100, 120, 140])
    np.testing.assert_array_equal(reflect, [40, 20, 0, 20, 40, 60, 80, 100, 120, 140])  # ...c b | a b c...
    bright = np.full((10, 10, 3), 200, np.uint8)
    assert (crop_square(bright, box, 10, fill="black")[:, :2] == 0).all()
    assert (crop_square(bright, box, 10, fill="replicate")[:, :2] == 200).all()
    assert set(FILLS.names()) >= {"black", "replicate", "reflect", "blur"}


def test_fill_keypoints_interpolates_each_point_in_time():
    kps = np.full((4, 5, 2), np.nan)
    kps[0] = np.arange(10).reshape(5, 2)
    kps[3] = np.arange(10).reshape(5, 2) + 30
    times = np.array([0.0, 1.0, 2.0, 3.0])
    out = fill_keypoints(kps, times)
    np.testing.assert_allclose(out[1], np.arange(10).reshape(5, 2) + 10)
    np.testing.assert_allclose(out[2], np.arange(10).reshape(5, 2) + 20)
    assert fill_keypoints(np.full((3, 5, 2), np.nan), times[:3]) is None


def _kps(cx=200.0, cy=150.0, iod=40.0, angle=0.0):
    """Five key points (eyes, nose, mouth corners) of a face at (cx, cy), rotated by ``angle`` radians."""
    base = np.array([[-0.5, -0.4], [0.5, -0.4], [0.0, 0.1], [-0.4, 0.6], [0.4, 0.6]]) * iod
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return base @ rot.T + [cx, cy]


def test_aligned_squares_undo_rotation_and_scale_and_follow_the_margin():
    times = np.arange(6) / 25
    size = 256
    still = np.stack([_kps()] * 6)
    turned = np.stack([_kps(angle=0.4, iod=80.0, cx=300)] * 6)
    m_still = align_matrices(still, times, size, 0.0)
    m_turned = align_matrices(turned, times, size, 0.0)
    a = transform_points(m_still[0], still[0])
    b = transform_points(m_turned[0], turned[0])
    np.testing.assert_allclose(a, b, atol=1e-3)  # the same face in the crop, whatever its pose and size
    assert abs(a[0, 1] - a[1, 1]) < 1e-3  # eyes level
    assert 0 < a[0, 0] < a[1, 0] < size and 0 < a[2, 1] < size
    wide = transform_points(align_matrices(still, times, size, 0.5)[0], still[0])
    eye_gap = np.linalg.norm(a[1] - a[0]) / np.linalg.norm(wide[1] - wide[0])
    assert eye_gap == pytest.approx(2.0, rel=1e-3)  # margin 0.5 doubles the square's side (1 + 2m)
    from faceexpr_cli.face.align import ffhq_quad

    centre = ffhq_quad(still[0]).mean(0, keepdims=True)  # both squares are centred on the FFHQ quad's centre
    for margin in (0.0, 0.5):
        m = align_matrices(still, times, size, margin)[0]
        np.testing.assert_allclose(transform_points(m, centre)[0], [size / 2, size / 2], atol=1e-3)
    assert align_matrices(np.full((3, 5, 2), np.nan), times[:3], size, 0.0) is None


def test_aligned_square_of_a_frame_without_key_points_is_interpolated():
    times = np.arange(3) / 25
    kps = np.stack([_kps(cx=100), _kps(cx=100), _kps(cx=100)])
    gap = kps.copy()
    gap[1] = np.nan
    np.testing.assert_allclose(align_matrices(gap, times, 128, 0.2), align_matrices(kps, times, 128, 0.2), atol=1e-6)


def test_matrix_crop_box_is_the_frame_box_the_crop_covers():
    m = np.array([[2.0, 0.0, -20.0], [0.0, 2.0, -40.0]])  # scale 2, crop origin at frame (10, 20)
    np.testing.assert_allclose(matrix_crop_box(m, 100), [10, 20, 60, 70])
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0]])  # 45 degrees about the origin
    box = matrix_crop_box(rot, 10)
    half = 10 * np.sqrt(2) / 2
    np.testing.assert_allclose(box, [0, -half, 2 * half, half], atol=1e-5)


def test_outside_mask_marks_exactly_the_crop_pixels_whose_centre_leaves_the_frame():
    from faceexpr_cli.crop.geometry import outside_mask, square_matrix

    assert outside_mask(square_matrix(np.array([0, 0, 10, 10]), 10), 10, 10, 10) is None  # the frame itself
    mask = outside_mask(square_matrix(np.array([-2, -3, 8, 7]), 10), 10, 10, 10)  # 2 columns left, 3 rows up
    want = np.zeros((10, 10), bool)
    want[:, :2] = True
    want[:3, :] = True
    np.testing.assert_array_equal(mask, want)
    mask = outside_mask(square_matrix(np.array([4, 6, 14, 16]), 10), 10, 12, 14)  # 2 right, 2 down
    want = np.zeros((10, 10), bool)
    want[:, 8:] = True
    want[8:, :] = True
    np.testing.assert_array_equal(mask, want)
    half = square_matrix(np.array([0, 0, 20, 20]), 10)  # scale 1/2: a crop pixel covers 2 frame pixels
    np.testing.assert_array_equal(outside_mask(half, 10, 12, 20)[0], [False] * 6 + [True] * 4)


def test_blur_fill_keeps_the_inside_sharp_and_fills_the_outside_with_the_blurred_mirror():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    box = np.array([-8, 0, 32, 40])  # 8 columns left of the frame, scale 1
    out = crop_square(image, box, 40, fill="blur")
    np.testing.assert_array_equal(out[:, 8:], image[:, :32])  # inside: the exact pixels
    outside = out[:, :8].astype(np.float32)
    assert outside.std() < 0.5 * image.astype(np.float32).std()  # blurred, not a copy of noise
    assert abs(outside.mean() - image[:, :16].mean()) < 25  # from the mirrored neighbourhood, not black
    np.testing.assert_array_equal(crop_square(image, np.array([0, 0, 40, 40]), 40, fill="blur"), image)
