"""The DINOv2 tokenizer: shapes, positional interpolation, both published key layouts, frozen by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceexpr_cli.builders.expression import build_tokenizer, load_dinov2_weights
from faceexpr_cli.errors import CheckpointError, WeightsNotFoundError
from faceexpr_cli.nn.dinov2 import DinoV2, convert_dinov2_state_dict, detect_layout

FIX = Path(__file__).parent / "fixtures"


def tiny(**kw) -> DinoV2:
    torch.manual_seed(0)
    return DinoV2(**({"image_size": 56, "dim": 32, "depth": 2, "heads": 2} | kw))


def ramp(size: int) -> torch.Tensor:
    return torch.linspace(0, 1, 2 * 3 * size * size).reshape(2, 3, size, size).flip(-1)


def test_shapes_and_interpolated_positions():
    model = tiny()
    tokens, pos = model(torch.rand(3, 3, 56, 56))
    assert tokens.shape == (3, 16, 32) and pos.shape == (1, 16, 32)
    assert torch.equal(pos, model.pos_embed[:, 1:])  # trained grid: the table itself
    tokens, pos = model(torch.rand(1, 3, 84, 70))  # 6 x 5 grid
    assert tokens.shape == (1, 30, 32) and pos.shape == (1, 30, 32)
    with torch.no_grad():  # a constant table stays constant under bicubic resizing
        model.pos_embed[:, 1:] = torch.arange(32.0)
    _, pos = model(torch.rand(1, 3, 84, 70))
    assert torch.allclose(pos, torch.arange(32.0).expand(1, 30, 32), atol=1e-4)
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        model(torch.rand(1, 3, 50, 56))


def test_frozen_by_default():
    model = tiny()
    assert not any(p.requires_grad for p in model.parameters())
    wrapper = torch.nn.Sequential(model)
    wrapper.train()
    assert not model.training  # stays in eval mode inside a training model
    assert tiny(frozen=False).train().training


def test_transformers_layout_matches_recorded_reference():
    """Weights in facebook/dinov2-* key names load by mapping and reproduce transformers' outputs."""
    model = tiny()
    assert load_dinov2_weights(model, FIX / "dinov2_hf_tiny.safetensors") == "transformers"
    ref = np.load(FIX / "dinov2_hf_tiny_out.npz")
    with torch.no_grad():
        for size in (56, 70):
            tokens, _ = model(ramp(size))
            np.testing.assert_allclose(tokens.numpy(), ref[f"tokens_{size}"], atol=1e-5)


def test_against_live_transformers():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(1)
    cfg = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=56,
                                    patch_size=14, layerscale_value=0.3)
    hf = transformers.Dinov2Model(cfg).eval()
    model = tiny()
    model.load_state_dict(convert_dinov2_state_dict(hf.state_dict()))  # transformers 5 names (q_proj ...)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.rand(2, 3, 84, 84)
    with torch.no_grad():
        ref = hf(pixel_values=(x - mean) / std).last_hidden_state[:, 1:]
        ours, _ = model(x)
    assert (ref - ours).abs().max() < 1e-5


def test_research_layout_round_trip_with_prefixes_and_chunks():
    src = tiny()
    state = {f"teacher.backbone.{k}".replace("teacher.", ""): v for k, v in src.state_dict().items()}
    state = {k.replace("blocks.1.", "blocks.0.1."): v for k, v in state.items()}  # chunked block naming
    state["backbone.mask_token"] = torch.zeros(1, 32)
    assert detect_layout(state) == "research"
    dst = tiny(depth=2)
    torch.manual_seed(7)  # other weights everywhere, so that only a complete, correct load can match src
    for p in dst.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x = torch.rand(1, 3, 56, 56)
    assert not torch.allclose(src(x)[0], dst(x)[0], atol=1e-3)
    dst.load_state_dict(convert_dinov2_state_dict(state), strict=True)
    assert torch.equal(src(x)[0], dst(x)[0])


def test_unfit_checkpoint_names_the_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "vitb.safetensors"
    save_file({k: v.contiguous() for k, v in tiny(dim=64, heads=2).state_dict().items()}, str(path))
    with pytest.raises(CheckpointError, match="vitb.safetensors.*does not fit"):
        load_dinov2_weights(tiny(), path)
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth: cannot read"):
        load_dinov2_weights(tiny(), bad)


def test_build_tokenizer_needs_weights_unless_random(tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        build_tokenizer("dinov2-vits14", tiny=True)
    assert "fx download weights dinov2-vits14" in info.value.one_line()
    assert isinstance(build_tokenizer("dinov2-vits14", tiny=True, random_init=True), DinoV2)
