"""MAE-DFER's LGI-Former: regions group the right tokens, released-checkpoint layouts load, a region token sees
only its own region in the local step."""

from __future__ import annotations

import torch

from faceexpr_cli.builders import build_model
from faceexpr_cli.builders.videomae import load_videomae_weights


def _tiny(**kw):
    return build_model("mae-dfer", tiny=True, **kw).eval()


def test_regions_hold_the_tokens_of_one_t_h_w_box():
    m = _tiny(region_size=[1, 1, 2])  # grid (2, 2, 2) -> 8 tokens, regions of 2 along w
    assert m.regions == (2, 2, 1)
    tokens = torch.arange(8, dtype=torch.float32).reshape(1, 8, 1)  # token index = t * 4 + h * 2 + w
    grouped = m._regions(tokens.expand(1, 8, 1)).reshape(4, 2)
    assert grouped.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    m2 = _tiny(region_size=[2, 1, 1])
    assert m2._regions(tokens).reshape(4, 2).tolist() == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_mae_dfer_checkpoint_layouts_load_and_drop_the_decoder_and_head():
    src = _tiny()
    for p in src.parameters():
        torch.nn.init.normal_(p, std=0.05)
    enc = {k: v for k, v in src.state_dict().items() if not k.startswith(("head.", "fc_norm."))}
    pretrain = {"model": {**{f"encoder.{k}": v for k, v in enc.items()},
                          "decoder.blocks.0.mlp.fc1.weight": torch.zeros(4, 4), "mask_token": torch.zeros(1, 1, 32),
                          "encoder_to_decoder.weight": torch.zeros(16, 32)}}
    finetuned = {"module": {f"backbone.{k}": v for k, v in src.state_dict().items()}}
    x = torch.rand(1, 4, 3, 32, 32)
    a = _tiny(num_classes=11)
    info = load_videomae_weights(a, pretrain)
    assert not info["head_loaded"] and "fc_norm.weight" in info["fresh"]
    b = _tiny()
    assert load_videomae_weights(b, finetuned)["head_loaded"]
    with torch.no_grad():
        assert torch.equal(b(x)[0], src(x)[0])
    for k, v in enc.items():  # every encoder tensor of the pretraining checkpoint landed in a
        assert torch.equal(a.state_dict()[k], v), k


def test_local_step_keeps_regions_apart_until_the_global_step():
    m = _tiny()
    block = m.blocks[0]
    x = torch.randn(2 * 2, 3, 32)  # batch 2, 2 regions, region token + 2 local tokens
    y = block.first_attn(block.first_attn_norm0(x))
    x2 = x.clone()
    x2[1] += torch.randn(3, 32)  # change region 1 of clip 0 (not a constant shift, which LayerNorm removes)
    y2 = block.first_attn(block.first_attn_norm0(x2))
    assert torch.allclose(y[0], y2[0]) and torch.allclose(y[2:], y2[2:]) and not torch.allclose(y[1], y2[1])
    full = block(x, 2)
    full2 = block(x2, 2)
    assert not torch.allclose(full[0], full2[0])  # the global and cross steps carry region 1 into region 0
    assert torch.allclose(full[2:], full2[2:])  # never into the other clip
