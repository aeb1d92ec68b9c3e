"""A state dict shaped like the original vox-256 checkpoint loads strictly into the fomm-vox256 card's model."""

from __future__ import annotations

import json

import pytest
import torch

from faceexpr_cli.builders import build_model
from faceexpr_cli.config.cards import load_card

DTYPES = {"float32": torch.float32, "int64": torch.int64}


@pytest.fixture(scope="module")
def manifest(fomm_fixtures):
    return json.loads((fomm_fixtures / "vox256_state_dict_manifest.json").read_text())


@pytest.fixture(scope="module")
def vox_model():
    return build_model(load_card("fomm-vox256"), with_discriminator=True)


def _state_from_manifest(entries, seed):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for e in entries:
        dtype = DTYPES[e["dtype"]]
        if dtype.is_floating_point:
            state[e["key"]] = torch.randn(e["shape"], generator=g, dtype=dtype)
        else:
            state[e["key"]] = torch.full(e["shape"], 7, dtype=dtype)
    return state


@pytest.mark.parametrize("part", ["kp_detector", "generator", "discriminator"])
def test_manifest_state_dict_loads_strictly(vox_model, manifest, part):
    spec = manifest["modules"][part]
    module = getattr(vox_model, part)
    assert list(module.state_dict()) == [e["key"] for e in spec["state_dict"]]
    assert [n for n, _ in module.named_parameters()] == spec["named_parameters_order"]
    assert sum(p.numel() for p in module.parameters()) == spec["num_parameters"]
    state = _state_from_manifest(spec["state_dict"], seed=len(part))
    module.load_state_dict(state, strict=True)
    key = spec["state_dict"][0]["key"]
    assert torch.equal(module.state_dict()[key], state[key])


def test_original_layout_checkpoint_loads_by_part(tmp_path, manifest):
    """vox-cpk.pth.tar's layout: a dict of part state dicts (+ optimizer states and epoch), no renaming."""
    ckpt = {part: _state_from_manifest(manifest["modules"][part]["state_dict"], seed=1) for part in
            ("kp_detector", "generator")}
    ckpt["epoch"] = 99
    model = build_model(load_card("fomm-vox256"))
    assert model.load_parts(ckpt) == ["kp_detector", "generator"]
