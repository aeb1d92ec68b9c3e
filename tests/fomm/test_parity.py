"""The tiny checkpoint reproduces every output the original code stored (fixtures/fomm/README.md)."""

from __future__ import annotations

import pytest
import torch

from faceexpr_cli.animate.motion import MotionOptions, hull_area, movement_scale, normalize_kp

OUTPUTS = ("prediction", "deformed", "mask", "sparse_deformed", "occlusion_map", "deformation")
ATOL = {"deformed": 5e-4, "sparse_deformed": 5e-4}


def _kp_one_at_a_time(model, images):
    pairs = [model.kp_detector(images[i:i + 1]) for i in range(images.shape[0])]
    return torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])


def _generate(model, source, kp_driving, kp_source):
    outs = [model.generator.forward_all(source, kp_driving[0][i:i + 1], kp_driving[1][i:i + 1], *kp_source)
            for i in range(kp_driving[0].shape[0])]
    return {k: torch.cat([o[k] for o in outs]) for k in OUTPUTS}


def _close(name, got, want, atol=1e-4):
    assert got.shape == want.shape, name
    diff = (got - want).abs().max().item()
    assert diff <= atol, f"{name}: max abs diff {diff:.2e} > {atol:.0e}"


@torch.no_grad()
def test_keypoints_match(tiny_model, tiny_case):
    value, jac = _kp_one_at_a_time(tiny_model, tiny_case["source"])
    _close("kp_source_value", value, tiny_case["kp_source_value"])
    _close("kp_source_jacobian", jac, tiny_case["kp_source_jacobian"])
    value, jac = _kp_one_at_a_time(tiny_model, tiny_case["driving"])
    _close("kp_driving_value", value, tiny_case["kp_driving_value"])
    _close("kp_driving_jacobian", jac, tiny_case["kp_driving_jacobian"])


@torch.no_grad()
def test_absolute_outputs_match(tiny_model, tiny_case):
    kp_s = _kp_one_at_a_time(tiny_model, tiny_case["source"])
    kp_d = _kp_one_at_a_time(tiny_model, tiny_case["driving"])
    got = _generate(tiny_model, tiny_case["source"], kp_d, kp_s)
    for name in OUTPUTS:
        _close(f"abs_{name}", got[name], tiny_case[f"abs_{name}"], ATOL.get(name, 1e-4))
    # Not degenerate: the model really moves pixels.
    assert got["prediction"].std() > 0.05


@torch.no_grad()
def test_relative_motion_and_scale_match(tiny_model, tiny_case):
    kp_s = _kp_one_at_a_time(tiny_model, tiny_case["source"])
    kp_d = _kp_one_at_a_time(tiny_model, tiny_case["driving"])
    kp_ref = (kp_d[0][:1], kp_d[1][:1])
    assert hull_area(kp_s[0][0]) == pytest.approx(tiny_case["rel_source_hull_area"], rel=1e-5)
    assert hull_area(kp_ref[0][0]) == pytest.approx(tiny_case["rel_driving_initial_hull_area"], rel=1e-5)
    scale = movement_scale(kp_s[0][0], kp_ref[0][0])
    assert scale == pytest.approx(tiny_case["rel_adapt_movement_scale"], rel=1e-6)

    options = MotionOptions(relative=True, relative_jacobian=True, adapt_scale=True)
    norm = normalize_kp(kp_s, kp_d, kp_ref, options)
    _close("rel_kp_norm_value", norm[0], tiny_case["rel_kp_norm_value"])
    _close("rel_kp_norm_jacobian", norm[1], tiny_case["rel_kp_norm_jacobian"])
    _close("frame 0 is the source", norm[0][0], kp_s[0][0], 1e-6)
    got = _generate(tiny_model, tiny_case["source"], norm, kp_s)
    for name in OUTPUTS:
        _close(f"rel_{name}", got[name], tiny_case[f"rel_{name}"], ATOL.get(name, 1e-4))


@torch.no_grad()
def test_batched_frames_agree_with_one_at_a_time(tiny_model, tiny_case):
    kp_s = tiny_model.kp_detector(tiny_case["source"])
    kp_d = tiny_model.kp_detector(tiny_case["driving"])
    _close("batched kp", kp_d[0], tiny_case["kp_driving_value"], 2e-5)
    src = tiny_case["source"].expand(4, -1, -1, -1)
    pred = tiny_model.generator(src, *kp_d, kp_s[0].expand(4, -1, -1), kp_s[1].expand(4, -1, -1, -1))
    _close("batched prediction", pred, tiny_case["abs_prediction"], 1e-4)


def test_antialias_kernel_construction(tiny_case):
    from faceexpr_cli.nn.fomm.blocks import gaussian_kernel

    _close("kernel", gaussian_kernel(3, 0.25), tiny_case["antialias_kernel_c3_scale0.25"], 1e-7)


def test_antialias_kernel_is_loaded_not_rebuilt(tiny_model, tiny_case):
    """The fixture kernels were perturbed; a model that recomputed them would differ from the checkpoint."""
    kernel = tiny_model.kp_detector.down.weight
    assert (kernel - tiny_case["antialias_kernel_c3_scale0.25"]).abs().max() > 1e-3
