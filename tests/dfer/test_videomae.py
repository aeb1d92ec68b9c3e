"""The VideoMAE ViT against transformers' VideoMAEModel / VideoMAEForVideoClassification with the same random
weights, the original release's key layout, position interpolation and the head dropped on a shape mismatch."""

from __future__ import annotations

import pytest
import torch

from faceexpr_cli.builders import build_model
from faceexpr_cli.builders.videomae import convert_state_dict, detect_layout, load_videomae_weights
from faceexpr_cli.errors import CheckpointError
from faceexpr_cli.nn.videomae import IMAGENET_MEAN, IMAGENET_STD, sinusoid_table

transformers = pytest.importorskip("transformers")  # a dev dependency: present on CI


def _hf(num_labels=3, seed=1, layers=2):
    torch.manual_seed(seed)
    cfg = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                                      num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
                                      num_labels=num_labels, qkv_bias=True)
    model = transformers.VideoMAEForVideoClassification(cfg).eval()
    with torch.no_grad():  # biases are zero at init: make them count
        for name, p in model.named_parameters():
            if "bias" in name:
                p.normal_(0, 0.1)
    return model


def _ours(**kw):
    args = dict(image_size=32, frames=4, dim=32, depth=2, heads=2, mlp_ratio=2.0, num_classes=3) | kw
    return build_model("videomae-base", **args).eval()


def _norm(x):
    mean = torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    return (x - mean) / std


def test_same_outputs_as_transformers_with_the_same_random_weights():
    hf = _hf()
    ours = _ours()
    info = load_videomae_weights(ours, hf.state_dict())
    assert info["layout"] == "transformers" and info["head_loaded"]
    x = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref_tokens = hf.videomae(pixel_values=_norm(x)).last_hidden_state
        ref_logits = hf(pixel_values=_norm(x)).logits
        tokens = ours.features(x)
        logits, probs = ours(x)
    assert (tokens - ref_tokens).abs().max() < 1e-5
    assert (logits - ref_logits).abs().max() < 1e-5
    torch.testing.assert_close(probs, ref_logits.softmax(-1), atol=1e-6, rtol=1e-5)


def test_videomae_model_state_dict_loads_without_a_head():
    hf = _hf()
    ours = _ours()
    torch.nn.init.constant_(ours.head.weight, 0.5)
    info = load_videomae_weights(ours, hf.videomae.state_dict())  # VideoMAEModel: no fc_norm, no classifier
    assert not info["head_loaded"]
    x = torch.rand(1, 4, 3, 32, 32)
    with torch.no_grad():
        assert (ours.features(x) - hf.videomae(pixel_values=_norm(x)).last_hidden_state).abs().max() < 1e-5
    assert torch.all(ours.head.weight == 0.5)


def test_original_release_layout_under_module_with_encoder_prefix_and_decoder_keys():
    src = _ours()
    for p in src.parameters():
        torch.nn.init.normal_(p, std=0.05)
    state = {f"encoder.{k}": v for k, v in src.state_dict().items() if not k.startswith(("head", "fc_norm"))}
    state["decoder.blocks.0.norm1.weight"] = torch.ones(8)
    state["mask_token"] = torch.zeros(1, 1, 8)
    state["encoder_to_decoder.weight"] = torch.zeros(8, 32)
    assert detect_layout(state) == "videomae"
    assert "blocks.0.attn.qkv.weight" in convert_state_dict({"module": state})
    dst = _ours()
    load_videomae_weights(dst, {"module": state})
    x = torch.rand(1, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(dst.features(x), src.features(x), atol=1e-6)


def test_head_of_another_size_is_dropped_and_encoder_mismatch_is_refused():
    hf = _hf(num_labels=5)
    ours = _ours(num_classes=3)
    info = load_videomae_weights(ours, hf.state_dict())
    assert not info["head_loaded"] and info["fresh"] == ["head.weight", "head.bias"]  # fc_norm loaded
    with pytest.raises(CheckpointError, match="does not fit"):
        load_videomae_weights(_ours(depth=1), hf.state_dict())
    with pytest.raises(CheckpointError, match="head"):
        load_videomae_weights(_ours(), hf.state_dict(), drop_head_on_mismatch=False)


def test_sinusoid_table_and_position_interpolation():
    t = sinusoid_table(5, 6)
    import math

    assert abs(float(t[0, 3, 2]) - math.sin(3 / 10000 ** (2 / 6))) < 1e-6
    assert abs(float(t[0, 3, 3]) - math.cos(3 / 10000 ** (2 / 6))) < 1e-6
    model = _ours()
    assert model.positions(model.grid) is model.pos_table
    grid = (4, 2, 2)  # 8 frames instead of 4
    pos = model.positions(grid)
    assert pos.shape == (1, 16, 32)
    # along time the interpolated table lies between neighbouring rows of the original one
    logits, _ = model(torch.rand(1, 8, 3, 32, 32))
    assert logits.shape == (1, 3)
