"""Every reference of the parity case reproduced through fx's modules (atol 1e-4, key points 1e-5), and the
motion math checked against independent numpy computations of the README's formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.liveportrait.conftest import as_batch, read_rgb

IMAGES = {"source": "source.png", "driving_reference": "driving_reference.png", "driving": "driving.png"}


@pytest.fixture(scope="module")
def run(tiny_model, case):
    from faceexpr_cli.nn.liveportrait import decode, drive, transform_keypoint

    m = tiny_model
    with torch.no_grad():
        info = {k: decode(m.motion_extractor(as_batch(read_rgb(v))), 21) for k, v in IMAGES.items()}
        feature = m.appearance_feature_extractor(as_batch(read_rgb("source.png")))
        x_s = transform_keypoint(info["source"])
        x_d = drive(info["source"], info["driving"], info["driving_reference"])
        x_st = m.stitching(x_s, x_d)
        warped, occlusion, deformation = m.warping_module(feature, kp_source=x_s, kp_driving=x_st)
        prediction = m.spade_generator(warped)
        plain = m.spade_generator(m.warping_module(feature, kp_source=x_s, kp_driving=x_d)[0])
        r = case["ratios"]
        eye = m.retarget_eye(x_s, torch.tensor(r["eye_close_ratio"]))
        lip = m.retarget_lip(x_s, torch.tensor(r["lip_close_ratio"]))
    out = {"feature_3d": feature, "x_s": x_s, "x_d_new": x_d, "x_d_stitched": x_st, "occlusion_map": occlusion,
           "deformation": deformation, "warped_feature": warped, "prediction": prediction,
           "prediction_no_stitching": plain, "eye_delta": eye, "lip_delta": lip}
    return {k: v.numpy() for k, v in out.items()}, {k: {f: t.numpy() for f, t in v.items()} for k, v in info.items()}


@pytest.mark.parametrize("name", ["feature_3d", "occlusion_map", "deformation", "warped_feature", "prediction",
                                  "prediction_no_stitching", "eye_delta", "lip_delta"])
def test_outputs_match_the_original(run, reference, case, name):
    got = run[0][name]
    want = reference(name)
    assert list(got.shape) == case["outputs"][name]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["x_s", "x_d_new", "x_d_stitched"])
def test_keypoints_match_the_original(run, reference, name):
    np.testing.assert_allclose(run[0][name], reference(name), atol=1e-5, rtol=0)


@pytest.mark.parametrize("image", list(IMAGES))
def test_motion_extractor_values_match_case_json(run, case, image):
    got = run[1][image]
    for field, want in case["keypoint_info"][image].items():
        tol = 1e-5 if field in ("kp", "exp", "t", "scale") else 1e-4
        np.testing.assert_allclose(got[field], np.asarray(want, np.float32), atol=tol, rtol=0, err_msg=field)


def _rotation(p, y, r):
    """R = (Rz Ry Rx)^T from degrees, written out independently."""
    p, y, r = np.radians([p, y, r])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return (rz @ ry @ rx).T


def test_relative_motion_equals_the_readme_formula(case, reference):
    """x_d_new from case.json's values alone (numpy, float64): R_d R_d0^T R_s, exp/scale/t relative, tz = 0."""
    info = {k: {f: np.asarray(v, np.float64) for f, v in d.items()} for k, d in case["keypoint_info"].items()}
    s, d, d0 = info["source"], info["driving"], info["driving_reference"]

    def rot(i):
        return _rotation(i["pitch"].item(), i["yaw"].item(), i["roll"].item())

    r_new = rot(d) @ rot(d0).T @ rot(s)
    exp = s["exp"][0] + d["exp"][0] - d0["exp"][0]
    scale = s["scale"].item() * d["scale"].item() / d0["scale"].item()
    t = s["t"][0] + d["t"][0] - d0["t"][0]
    t[2] = 0
    x = scale * (s["kp"][0] @ r_new + exp) + t
    np.testing.assert_allclose(x, reference("x_d_new")[0], atol=1e-5)
    x_s = s["scale"].item() * (s["kp"][0] @ rot(s) + s["exp"][0]) + np.r_[s["t"][0][:2], 0]
    np.testing.assert_allclose(x_s, reference("x_s")[0], atol=1e-5)


def test_the_mistakes_case_json_lists_are_visible(run, reference):
    """Stitching matters: without it the prediction is off by about case.json's 'no_stitching' figure."""
    diff = np.abs(run[0]["prediction_no_stitching"] - reference("prediction")).max()
    assert diff > 0.3
