"""A run whose recipe names the published DINOv2 tokenizer (no tokenizer.safetensors in its checkpoint): the
tokenizer's card gets the run's arguments (tiny, then the recipe's own), the weights come from where the recipe
says, and loading them reproduces transformers' outputs recorded for those weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from faceexpr_cli.builders import build_model
from faceexpr_cli.onnx import runs

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "expr" / "fixtures"


def _yaml_card() -> dict:
    return yaml.safe_load((ROOT / "models" / "dinov2-vits14.yaml").read_text(encoding="utf-8"))


def test_the_recipes_arguments_go_over_the_tiny_ones_and_the_weights_load(tmp_path):
    args = {"image_size": 56, "dim": 32, "depth": 2, "heads": 2, "mlp_ratio": 4.0}  # the fixture's shape
    src = runs._published_tokenizer({"tiny": True, "args": args, "weights": str(FIX / "dinov2_hf_tiny.safetensors")})
    raw = _yaml_card()
    assert src.card.preset == raw["preset"] | raw["tiny"] | args and src.card.tiny == {}
    assert src.weights == FIX / "dinov2_hf_tiny.safetensors" and src.folder == "tokenizer" and src.derive_shapes
    model = build_model(src.card)
    src.load(model)
    ref = np.load(FIX / "dinov2_hf_tiny_out.npz")
    ramp = torch.linspace(0, 1, 2 * 3 * 56 * 56).reshape(2, 3, 56, 56).flip(-1)
    with torch.no_grad():
        tokens, _ = model(ramp)
    np.testing.assert_allclose(tokens.numpy(), ref["tokens_56"], atol=1e-5)


def test_without_tiny_or_arguments_the_card_keeps_its_preset(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"")  # only its path is used until the model loads
    raw = _yaml_card()
    tiny = runs._published_tokenizer({"tiny": True, "weights": str(weights)})
    assert tiny.card.preset == raw["preset"] | raw["tiny"]  # depth 1, mlp ratio 1: the shrunk inside
    full = runs._published_tokenizer({"weights": str(weights)})
    assert full.card.preset == raw["preset"] and full.card.name == "dinov2-vits14"
