"""ONNX export of the FOMM parts (tiny card build with the fixture weights) and of the landmarks warp, with parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceexpr_cli.animate.engines.fomm import GEN_INPUTS, GEN_OUTPUTS, KP_INPUTS, KP_OUTPUTS
from faceexpr_cli.animate.export import OnnxRunner, card_of, export_module
from faceexpr_cli.builders import build_model
from faceexpr_cli.config.cards import load_card


@pytest.fixture(scope="module")
def tiny_fomm():
    from faceexpr_cli.animate.checkpoints import load_fomm_checkpoint

    from .conftest import FOMM_FIXTURES

    card = load_card("fomm-vox256")
    model = build_model(card, tiny=True).eval()
    load_fomm_checkpoint(model, FOMM_FIXTURES / "tiny_checkpoint.pth", card.name)
    return card, model


def _part(card, name):
    return next(p for p in card.onnx.parts if p.name == name)


def test_fomm_parts_export_and_match(tmp_path, tiny_fomm):
    card, model = tiny_fomm
    torch.manual_seed(0)
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        kp = model.kp_detector(x)
    kp_part, gen_part = _part(card, "kp_detector"), _part(card, "generator")
    assert [s.name for s in kp_part.inputs] == KP_INPUTS and [s.name for s in kp_part.outputs] == KP_OUTPUTS
    assert [s.name for s in gen_part.inputs] == GEN_INPUTS and [s.name for s in gen_part.outputs] == GEN_OUTPUTS
    dyn = {n: {0: "batch"} for n in KP_INPUTS + KP_OUTPUTS + GEN_INPUTS + GEN_OUTPUTS}
    kp_path = export_module(model.kp_detector, (x,), tmp_path / "kp.onnx", KP_INPUTS, KP_OUTPUTS, dyn, card=card)
    gen_path = export_module(model.generator, (x, *kp, *kp), tmp_path / "gen.onnx", GEN_INPUTS, GEN_OUTPUTS, dyn,
                             card=card)
    assert card_of(kp_path)["name"] == "fomm-vox256"

    # Another batch size than the export's, and motion between two different frames.
    x3 = torch.rand(3, 3, 256, 256)
    with torch.no_grad():
        kp3 = model.kp_detector(x3)
        ref = model.generator(x3, kp3[0].flip(0), kp3[1].flip(0), *kp3)
    got_kp = OnnxRunner(kp_path)(x3.numpy())
    for got, want in zip(got_kp, kp3, strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=kp_part.atol, rtol=kp_part.rtol)
    args = [a.numpy() for a in (x3, kp3[0].flip(0), kp3[1].flip(0), *kp3)]
    got = OnnxRunner(gen_path)(*args)[0]
    np.testing.assert_allclose(got, ref.numpy(), atol=gen_part.atol, rtol=gen_part.rtol)
    assert ref.std() > 0.05


def test_graphs_have_no_inverse_and_use_4d_gridsample(tmp_path, tiny_fomm):
    import onnx

    card, model = tiny_fomm
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        kp = model.kp_detector(x)
    path = export_module(model.generator, (x, *kp, *kp), tmp_path / "gen.onnx", GEN_INPUTS, GEN_OUTPUTS)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "GridSample" in ops and "Inverse" not in ops


def _portrait(h: int, w: int) -> torch.Tensor:
    import cv2

    from faceexpr_cli.samples import load_portrait

    img = cv2.resize(load_portrait("astronaut")[0], (w, h), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 255.0)[None].repeat(2, 1, 1, 1)


def test_landmarks_warp_exports_and_matches(tmp_path):
    from faceexpr_cli.animate.engines.landmarks import WARP_INPUTS, WARP_OUTPUTS
    from faceexpr_cli.nn.tps import fit_tps

    card = load_card("animate-landmarks")
    warp = build_model(card).eval()
    n = card.preset["num_points"]
    g = torch.Generator().manual_seed(1)
    control = torch.rand(2, n, 2, generator=g) * 1.6 - 0.8
    values = control + 0.03 * torch.randn(2, n, 2, generator=g)
    weights, affine = fit_tps(control, values, 1e-3)
    image, image2 = _portrait(96, 128), _portrait(120, 100)
    region = torch.ones(2, 1, 96, 128)
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}, "region": {0: "batch", 2: "height", 3: "width"},
           "warped": {0: "batch", 2: "height", 3: "width"}}
    path = export_module(warp, (image, control, weights, affine, region), tmp_path / "tps.onnx", WARP_INPUTS,
                         WARP_OUTPUTS, dyn, card=card)
    # A different image size than at export time.
    region2 = torch.rand(2, 1, 120, 100, generator=g)
    with torch.no_grad():
        want = warp(image2, control, weights, affine, region2)
    got = OnnxRunner(path)(image2.numpy(), control.numpy(), weights.numpy(), affine.numpy(), region2.numpy())[0]
    np.testing.assert_allclose(got, want.numpy(), atol=card.onnx.parts[0].atol, rtol=card.onnx.parts[0].rtol)
    assert (want - image2).abs().mean() > 1e-3  # it really warps
