"""Small pieces: TPS warp, landmark retargeting, key point normalisation, crop framing, smoothing, best frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceexpr_cli.animate.engines import Motion
from faceexpr_cli.animate.motion import MotionOptions, movement_scale, normalize_kp
from faceexpr_cli.animate.retarget import FaceFrame, control_points, landmark_targets, to_normalized
from faceexpr_cli.nn.tps import TPSWarp, fit_tps, tps_transform


def _face(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(80, 160, (68, 2))).astype(np.float32)


def test_tps_interpolates_and_identity_is_exact():
    g = torch.Generator().manual_seed(0)
    c = torch.rand(2, 20, 2, generator=g) * 2 - 1
    v = c + 0.05 * torch.randn(2, 20, 2, generator=g)
    w, a = fit_tps(c, v)
    assert (tps_transform(c, c, w, a) - v).abs().max() < 1e-4
    image = torch.rand(2, 3, 40, 50, generator=g)
    w0, a0 = fit_tps(c, c)
    out = TPSWarp(num_points=20, grid_size=16)(image, c, w0, a0, torch.ones(2, 1, 40, 50))
    assert (out - image).abs().max() < 1e-4
    # region 0: the image stays as it is whatever the spline says
    still = TPSWarp(num_points=20, grid_size=16)(image, c, w, a, torch.zeros(2, 1, 40, 50))
    assert (still - image).abs().max() < 1e-4


def test_tps_warp_moves_a_dot_to_the_target():
    h = w = 64
    image = torch.zeros(1, 1, h, w)
    image[0, 0, 30:34, 20:24] = 1.0  # a dot centred at (21.5, 31.5)
    src = np.array([[21.5, 31.5], [5, 5], [58, 5], [5, 58], [58, 58]], np.float32)
    dst = src.copy()
    dst[0] = [41.5, 31.5]  # the dot should appear 20 px to the right
    control = torch.from_numpy(to_normalized(dst, h, w))[None]
    values = torch.from_numpy(to_normalized(src, h, w))[None]
    wts, aff = fit_tps(control, values)
    out = TPSWarp(num_points=5, grid_size=64)(image, control, wts, aff, torch.ones(1, 1, h, w))[0, 0]
    ys, xs = np.nonzero(out.numpy() > 0.5)
    assert abs(xs.mean() - 41.5) < 1.5 and abs(ys.mean() - 31.5) < 1.5


def test_landmark_targets_relative_absolute_and_scale():
    source = _face(0)
    reference = source * 0.5 + 10  # the driver's face: half the size, elsewhere
    driving = np.stack([reference, reference + np.array([2.0, 0.0], np.float32)])
    rel = landmark_targets(source, driving, reference)
    np.testing.assert_allclose(rel[0], source, atol=1e-4)  # the reference frame is the source itself
    np.testing.assert_allclose(rel[1] - rel[0], np.tile([4.0, 0.0], (68, 1)), atol=1e-3)  # scaled by 2
    absolute = landmark_targets(source, driving, reference, relative=False)
    np.testing.assert_allclose(absolute[1], source + np.array([4.0, 0.0]), atol=1e-3)
    adapt = landmark_targets(source, driving, reference, adapt_scale=True)
    np.testing.assert_allclose(adapt[1] - adapt[0], np.tile([4.0, 0.0], (68, 1)), atol=1e-3)


def test_control_points_hold_the_background_still():
    source = _face(1)
    targets = (source + np.array([6.0, -3.0], np.float32))[None]
    frame = FaceFrame.around(source)
    control, values = control_points(source, targets, frame)
    assert control.shape == (1, 104, 2) and values.shape == (104, 2)
    np.testing.assert_allclose(control[0, 80:], values[80:])  # the still ring does not move
    np.testing.assert_allclose(control[0, 68:80] - values[68:80], np.tile([6.0, -3.0], (12, 1)), atol=1e-3)
    region = frame.region(240, 240)
    assert region.max() == pytest.approx(1.0) and region[0, 0] == 0.0


def test_normalize_kp_modes():
    g = torch.Generator().manual_seed(0)
    kp = lambda b: (torch.rand(b, 10, 2, generator=g) * 2 - 1, torch.eye(2).expand(b, 10, 2, 2) * 1.2)  # noqa: E731
    src, drv, ref = kp(1), kp(3), kp(1)
    v, j = normalize_kp(src, drv, ref, MotionOptions(relative=False))
    assert torch.equal(v, drv[0]) and torch.equal(j, drv[1])
    v, j = normalize_kp(src, drv, ref, MotionOptions(relative=True, adapt_scale=False))
    torch.testing.assert_close(v, drv[0] - ref[0] + src[0])
    torch.testing.assert_close(j, drv[1] @ torch.linalg.inv(ref[1]) @ src[1])
    assert movement_scale(np.zeros((10, 2)), np.random.rand(10, 2)) == 1.0  # degenerate hull


def test_crop_square_box_and_round_trip():
    from faceexpr_cli.animate.crop import make_crop, square_box

    sq = square_box(np.array([100, 50, 140, 110]), increase=0.1)
    assert sq[2] - sq[0] == pytest.approx(72) and sq[3] - sq[1] == pytest.approx(72)
    image = np.random.default_rng(0).integers(0, 255, (200, 240, 3), dtype=np.uint8)
    crop = make_crop(np.array([100, 50, 140, 110]), 64)
    patch = crop.apply(image)
    assert patch.shape == (64, 64, 3)
    back = crop.paste(image, np.full_like(patch, 255))  # a white result pasted into the frame
    assert back.shape == image.shape
    assert (back[75:86, 115:126] >= 250).all()  # around the face box's centre: the pasted picture
    assert np.abs(back[:20].astype(int) - image[:20]).max() == 0  # far from the crop nothing changes


def test_smoothing_removes_jitter_but_keeps_motion():
    from faceexpr_cli.animate.pipeline import smooth_motion

    t = np.arange(100) / 25.0
    base = _face(2)[None] + (20 * np.sin(2 * np.pi * 0.4 * t))[:, None, None]
    noisy = base + np.random.default_rng(0).normal(0, 1.5, base.shape)
    out = smooth_motion(Motion(noisy.astype(np.float32)), 25.0, 1.5).points
    assert np.abs(out - base).mean() < 0.6 * np.abs(noisy - base).mean()
    assert np.abs(out - base).mean() < 1.0  # the 20 px swing survives


def test_best_frame_picks_the_closest_shape():
    from faceexpr_cli.animate.landmarks import best_frame

    source = _face(3)
    frames = np.stack([_face(4), source * 1.7 + 30, _face(5)])  # same shape, other size and place
    assert best_frame(source, frames) == 1


def test_the_driver_face_is_confident_and_continuous():
    """A weak, larger false detection (dlib on the astronaut's mission patch) is never the face."""
    import numpy as np

    from faceexpr_cli.animate.landmarks import _pick
    from faceexpr_cli.face.types import Face

    face = Face(np.array([179, 83, 267, 171], np.float32), 1.5)
    patch = Face(np.array([123, 330, 228, 435], np.float32), 0.02)
    assert _pick([patch, face]) is face
    other = Face(np.array([300, 80, 420, 200], np.float32), 1.4)  # a second, larger real face
    assert _pick([face, other]) is other  # no history: the largest confident one
    assert _pick([face, other], prev_box=np.array([175, 80, 265, 170], np.float32)) is face  # the one being followed
    assert _pick([]) is None
