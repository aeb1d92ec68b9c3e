"""The parity checker and the shared pre-processing, against values computed by hand in the test.

Both parity sides share ``prepare_images``, so a channel swap there cancels out of every ORT-vs-torch comparison:
it is checked here on a known pixel. The checker is checked on a graph that is wrong by a known amount.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.config.cards import InputContract
from faceexpr_cli.onnx.parity import compare
from faceexpr_cli.onnx.preprocess import images_from_output, prepare_images

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RED = np.zeros((2, 5, 7, 3), np.uint8)
RED[..., 0] = 255


def _per_channel(x: np.ndarray, axis: int) -> list[np.ndarray]:
    return [np.take(x, c, axis=axis) for c in range(3)]


def test_red_pixel_through_an_imagenet_rgb_contract():
    contract = InputContract(layout="NCHW", color="RGB", mean=list(MEAN), std=list(STD))
    x = prepare_images(RED, contract)
    assert x.shape == (2, 3, 5, 7) and x.dtype == np.float32
    want = [(1.0 - MEAN[0]) / STD[0], (0.0 - MEAN[1]) / STD[1], (0.0 - MEAN[2]) / STD[2]]  # 2.2489, -2.0357, -1.8044
    for c, plane in enumerate(_per_channel(x, 1)):
        np.testing.assert_allclose(plane, want[c], rtol=1e-6, err_msg=f"channel {c}")


def test_red_pixel_through_bgr_nhwc_and_a_value_range():
    bgr = prepare_images(RED[0], InputContract(layout="NHWC", color="BGR", mean=list(MEAN), std=list(STD)))
    assert bgr.shape == (1, 5, 7, 3)
    want = [(0.0 - MEAN[0]) / STD[0], (0.0 - MEAN[1]) / STD[1], (1.0 - MEAN[2]) / STD[2]]  # red is the last channel
    for c, plane in enumerate(_per_channel(bgr, 3)):
        np.testing.assert_allclose(plane, want[c], rtol=1e-6, err_msg=f"channel {c}")
    signed = prepare_images(RED, InputContract(value_range=(-1.0, 1.0)))
    for c, plane in enumerate(_per_channel(signed, 1)):
        np.testing.assert_array_equal(plane, [1.0, -1.0, -1.0][c])
    gray = prepare_images(RED, InputContract(color="GRAY"))
    assert gray.shape == (2, 1, 5, 7)
    np.testing.assert_allclose(gray, 0.299, rtol=1e-6)


def test_a_red_output_image_comes_back_red():
    out = np.zeros((1, 3, 4, 4), np.float32)
    out[:, 0] = 1.0
    img = images_from_output(out)
    assert img.shape == (1, 4, 4, 3)
    assert (img[..., 0] == 255).all() and (img[..., 1:] == 0).all()
    signed = images_from_output(out * 2 - 1, InputContract(value_range=(-1.0, 1.0)))
    np.testing.assert_array_equal(signed, img)


def test_both_backends_prepare_a_red_face_as_the_card_the_graph_carries_says(toy_export, toy_run):
    from faceexpr_cli.onnx.predictor import load_chain

    out, _ = toy_export
    for chain in (load_chain("onnx", out, outputs=["token"]), load_chain("torch", toy_run, outputs=["token"])):
        x = chain.prepare_images(RED)
        assert x.shape == (2, 3, 40, 40)  # the run's data.size; a constant image stays constant when resized
        want = [(1.0 - MEAN[0]) / STD[0], -MEAN[1] / STD[1], -MEAN[2] / STD[2]]  # the toy cards' ImageNet contract
        for c, plane in enumerate(_per_channel(x, 1)):
            np.testing.assert_allclose(plane, want[c], rtol=1e-5, err_msg=f"{chain.backend} channel {c}")


def test_compare_uses_numpys_allclose_rule_at_the_given_tolerance():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 8)).astype(np.float32)
    atol, rtol = 1e-3, 1e-2
    tol = atol + rtol * np.abs(ref)
    for factor, ok in ((0.5, True), (0.99, True), (10.0, False), (1.5, False)):
        got = ref + factor * tol
        (diff,) = compare({"y": ref}, {"y": got}, atol, rtol)
        assert diff.ok is ok and np.allclose(got, ref, atol=atol, rtol=rtol) is ok, factor
        assert diff.max_abs == pytest.approx(float(np.max(factor * tol)), rel=1e-3)
    one_off = ref.copy()
    one_off[2, 3] += 10 * atol + rtol * abs(ref[2, 3])  # a single element past the tolerance fails the output
    assert not compare({"y": ref}, {"y": one_off}, atol, 0.0)[0].ok
    nan = ref.copy()
    nan[0, 0] = np.nan
    assert not compare({"y": ref}, {"y": nan}, atol, rtol)[0].ok
    assert not compare({"y": ref}, {"y": ref[:2]}, atol, rtol)[0].ok  # a shape mismatch fails


def _offset_card(offset: float):
    from faceexpr_cli.config.cards import load_card

    card = load_card("toy-offset")
    return card.model_copy(update={"preset": {**card.preset, "offset": offset}})


def test_a_graph_off_by_ten_times_the_tolerance_fails_the_checker(toy_cards, tmp_path):
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models, failure_line

    card = _offset_card(1e-2)
    part = card.onnx.parts[0]
    assert (part.atol, part.rtol) == (1e-3, 0.0)  # so the graph is off by exactly 10x the tolerance
    opts = ExportOptions(simplify=False, latency_runs=1, sample_check=False)
    report = export_models([ModelSource(card)], tmp_path / "off", opts, raise_on_failure=False)
    assert report["ok"] is False
    checks = report["models"][0]["parts"][0]["parity"]
    assert checks and all(not c["ok"] for c in checks)
    assert all(o["max_abs"] == pytest.approx(1e-2, rel=1e-2) for c in checks for o in c["outputs"])
    assert "output 'y'" in failure_line(report) and "atol 0.001" in failure_line(report)
    # the same graph off by half its tolerance passes: the checker is not simply failing everything
    report = export_models([ModelSource(_offset_card(5e-4))], tmp_path / "near", opts, raise_on_failure=False)
    assert report["ok"] is True and (tmp_path / "near" / "body.onnx").is_file()
