"""Shared pre/post-processing on tiny hand-made images: sizes, channel handling, grey weights, float input, layouts,
rounding and clipping of output images, and face crops of a synthetic portrait with known geometry."""

from __future__ import annotations

import types

import numpy as np
import pytest

from faceexpr_cli.config.cards import InputContract
from faceexpr_cli.errors import DataError
from faceexpr_cli.onnx.preprocess import (
    SAMPLE_PORTRAITS,
    contract_size,
    images_from_output,
    prepare_images,
    resize_batch,
    sample_faces,
)


def test_contract_size():
    assert contract_size(None) is None
    assert contract_size(InputContract()) is None
    assert contract_size(InputContract(size=7)) == (7, 7)
    assert contract_size(InputContract(size=[5, 9])) == (5, 9)
    assert contract_size(InputContract(size=[4, 6, 8])) == (4, 8)  # first and last


def _pixels(*rgb) -> np.ndarray:
    return np.array(rgb, np.uint8).reshape(1, 1, len(rgb), 3)


def test_grey_uses_the_bt601_weights_per_channel():
    x = prepare_images(_pixels((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)), InputContract(color="GRAY"))
    assert x.shape == (1, 1, 1, 4)
    np.testing.assert_allclose(x[0, 0, 0], [0.299, 0.587, 0.114, 1.0], rtol=1e-6)


def test_uint8_is_scaled_to_unit_range_and_float_input_is_taken_as_it_is():
    u = prepare_images(_pixels((51, 102, 255)), InputContract(layout="NHWC"))
    np.testing.assert_allclose(u[0, 0, 0], [0.2, 0.4, 1.0], rtol=1e-6)
    f = prepare_images(np.full((1, 1, 1, 3), 0.25, np.float32), InputContract(layout="NHWC"))
    np.testing.assert_array_equal(f, 0.25)
    assert f.dtype == np.float32 and f.flags["C_CONTIGUOUS"]


def test_value_range_mean_and_std_each_apply_alone():
    mid = np.full((1, 1, 1, 3), 0.5, np.float32)
    np.testing.assert_allclose(prepare_images(mid, InputContract(layout="NHWC", value_range=(2.0, 6.0))), 4.0)
    np.testing.assert_allclose(prepare_images(mid, InputContract(layout="NHWC", mean=[0.1, 0.2, 0.3]))[0, 0, 0],
                               [0.4, 0.3, 0.2], rtol=1e-6)
    np.testing.assert_allclose(prepare_images(mid, InputContract(layout="NHWC", std=[0.5, 0.25, 2.0]))[0, 0, 0],
                               [1.0, 2.0, 0.25], rtol=1e-6)


def test_layouts_move_channels_where_the_contract_says():
    frames = np.zeros((2, 4, 5, 6, 3), np.uint8)  # N, T, H, W, C
    frames[..., 2] = 255
    x = prepare_images(frames, InputContract(layout="NTCHW"))
    assert x.shape == (2, 4, 3, 5, 6)
    np.testing.assert_array_equal(x[:, :, 2], 1.0)
    np.testing.assert_array_equal(x[:, :, :2], 0.0)
    assert prepare_images(frames[0], InputContract(layout="NCHW")).shape == (4, 3, 5, 6)
    assert prepare_images(frames[0], InputContract(layout="NHWC")).shape == (4, 5, 6, 3)
    assert prepare_images(frames[0], None).shape == (4, 3, 5, 6)  # no contract: the default NCHW


def test_batches_from_lists_single_frames_alpha_and_grey_input():
    a = np.full((2, 3, 3), 255, np.uint8)
    b = np.zeros((2, 3, 3), np.uint8)
    x = prepare_images([a, b], InputContract(layout="NHWC"))
    assert x.shape == (2, 2, 3, 3) and x[0].min() == 1.0 and x[1].max() == 0.0
    assert prepare_images(a, InputContract(layout="NHWC")).shape == (1, 2, 3, 3)  # one frame: batch of one
    rgba = np.zeros((1, 1, 1, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128
    np.testing.assert_array_equal(prepare_images(rgba, InputContract(layout="NHWC"))[0, 0, 0], [1.0, 0.0, 0.0])
    grey = np.full((1, 1, 2, 1), 51, np.uint8)
    np.testing.assert_allclose(prepare_images(grey, InputContract(layout="NHWC")), 0.2, rtol=1e-6)
    assert prepare_images(grey, InputContract(layout="NHWC")).shape == (1, 1, 2, 3)


def test_bad_image_batches_are_data_errors():
    with pytest.raises(DataError, match=r"images of different sizes in one batch: \[\(2, 2, 3\), \(3, 2, 3\)\]"):
        prepare_images([np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2, 3), np.uint8)], None)
    for shape in ((4, 4), (1, 4, 4, 2), (4, 4, 5)):
        with pytest.raises(DataError, match=r"expected RGB images \(H, W, 3\) or a batch"):
            prepare_images(np.zeros(shape, np.uint8), None)


def test_resize_batch_keeps_the_size_it_has_and_resizes_with_antialiasing():
    import torch
    import torch.nn.functional as F

    frames = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    assert resize_batch(frames, (8, 8)) is frames
    stripes = np.zeros((1, 8, 8, 3), np.float32)
    stripes[:, :, ::4] = 1.0  # one bright column in four
    small = resize_batch(stripes, (2, 2))
    x = torch.from_numpy(stripes).permute(0, 3, 1, 2)
    want = F.interpolate(x, size=(2, 2), mode="bilinear", antialias=True, align_corners=False)
    np.testing.assert_allclose(small, want.permute(0, 2, 3, 1).numpy(), rtol=1e-6)
    assert small.min() > 0.1  # plain bilinear samples between columns 1|2 and 5|6: zero everywhere
    lead = resize_batch(np.ones((2, 3, 4, 6, 3), np.float32), (5, 7))  # N, T, H, W, C
    assert lead.shape == (2, 3, 5, 7, 3)
    np.testing.assert_allclose(lead, 1.0, rtol=1e-6)
    assert prepare_images(np.zeros((1, 4, 6, 3), np.uint8), InputContract(size=[5, 7])).shape == (1, 3, 5, 7)


def test_output_images_round_to_nearest_and_clip():
    x = np.array([-0.5, 0.0, 100.4 / 255, 100.6 / 255, 1.0, 2.0], np.float32).reshape(1, 1, 2, 3)
    img = images_from_output(x, InputContract(layout="NHWC"))  # no channel move in NHWC
    assert img.dtype == np.uint8 and img.shape == (1, 1, 2, 3)
    assert img.reshape(-1).tolist() == [0, 0, 100, 101, 255, 255]
    scaled = images_from_output(np.array([0.0, 127.6, 255.0], np.float32).reshape(1, 1, 1, 3),
                                InputContract(layout="NHWC", value_range=(0.0, 255.0)))
    assert scaled.reshape(-1).tolist() == [0, 128, 255]
    nchw = np.zeros((1, 3, 1, 2), np.float32)
    nchw[:, 1] = 0.5  # green at half: 127.5 + 0.5 -> 128
    assert images_from_output(nchw)[0, 0].tolist() == [[0, 128, 0], [0, 128, 0]]


class _Portrait:
    def __init__(self, center, size):
        self.face_center = center
        self.face_size = size


@pytest.fixture
def synthetic_portrait(monkeypatch):
    """A 20x20 image whose pixel (y, x) is (x, y, 7), with a face whose centre and size the test sets."""
    import faceexpr_cli.samples as samples

    yy, xx = np.mgrid[0:20, 0:20]
    image = np.stack([xx, yy, np.full_like(xx, 7)], axis=-1).astype(np.uint8)
    where = types.SimpleNamespace(portrait=_Portrait((10.0, 10.0), 5.0))
    monkeypatch.setattr(samples, "load_portrait", lambda name: (image, where.portrait))
    return image, where


def test_sample_faces_crops_scale_times_the_face_box(synthetic_portrait):
    image, _ = synthetic_portrait
    # centre (10, 10), face 5, scale 2: half 5, crop x, y in [5, 15): 10x10, already the asked size
    crop = sample_faces((10, 10), ["one"], scale=2.0)
    assert crop.shape == (1, 10, 10, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop[0], image[5:15, 5:15])
    # the default scale is 1.8: half 4.5, x0 = round(5.5) = 6 (banker's rounding), side 9
    np.testing.assert_array_equal(sample_faces((9, 9), ["one"])[0], image[6:15, 6:15])
    assert sample_faces((4, 4), ["a", "b"]).shape == (2, 4, 4, 3)


def test_sample_faces_pads_with_edge_pixels_past_each_border(synthetic_portrait):
    image, where = synthetic_portrait
    where.portrait = _Portrait((2.0, 10.0), 5.0)  # x0 = -3: 3 columns left of the image
    left = sample_faces((10, 10), ["one"], scale=2.0)[0]
    assert left[0, :, 0].tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6] and left[:, 0, 1].tolist() == list(range(5, 15))
    where.portrait = _Portrait((10.0, 2.0), 5.0)  # y0 = -3: above the image
    assert sample_faces((10, 10), ["one"], scale=2.0)[0][:, 0, 1].tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]
    where.portrait = _Portrait((18.0, 18.0), 5.0)  # x0 = y0 = 13, side 10: 3 past the right and bottom
    right = sample_faces((10, 10), ["one"], scale=2.0)[0]
    assert right[0, :, 0].tolist() == [13, 14, 15, 16, 17, 18, 19, 19, 19, 19]
    assert right[:, 0, 1].tolist() == [13, 14, 15, 16, 17, 18, 19, 19, 19, 19]
    assert (right[..., 2] == 7).all()


def test_sample_faces_of_the_real_portraits():
    assert SAMPLE_PORTRAITS == ("astronaut", "grace_hopper")
    faces = sample_faces((12, 10))
    assert faces.shape == (2, 12, 10, 3) and faces.dtype == np.uint8
    assert not np.array_equal(faces[0], faces[1])
    np.testing.assert_array_equal(sample_faces((12, 10), ["grace_hopper"])[0], faces[1])
