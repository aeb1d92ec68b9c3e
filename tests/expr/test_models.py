"""Expression transformer, reconstruction model and predictor: shapes, batching, causality, cards."""

from __future__ import annotations

import pytest
import torch

from faceexpr_cli.builders import build_model
from faceexpr_cli.config.cards import load_card
from faceexpr_cli.nn.expression import ExpressionTransformer
from faceexpr_cli.nn.predictor import ExpressionPredictor
from faceexpr_cli.nn.reconstruction import ReconstructionModel

CARDS = ["dinov2-vits14", "dinov2-vitb14", "expression-transformer", "expression-transformer-invariant",
         "reconstruction", "expression-predictor"]


def small_expr(**kw) -> ExpressionTransformer:
    torch.manual_seed(0)
    return ExpressionTransformer(**({"dim": 32, "heads": 2, "layers": 2, "ff_dim": 64, "max_subjects": 4,
                                     "image_size": 56, "token_dim": 48, "dropout": 0.0} | kw)).eval()


def test_expression_tokens_are_unit_vectors_per_image():
    model = small_expr()
    tokens, pos, ids = torch.randn(5, 16, 48), torch.randn(1, 16, 48), torch.tensor([0, 1, 2, 3, 0])
    with torch.no_grad():
        out = model(tokens, pos, ids)
        one = model(tokens[2:3], pos, ids[2:3])
    assert out.shape == (5, 32)
    assert torch.allclose(out.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert torch.allclose(out[2:3], one, atol=1e-5)  # a batch is the same as one image at a time
    assert not torch.allclose(model(tokens[:1], pos, ids[1:2]), model(tokens[:1], pos, ids[:1]))  # uses the subject
    with pytest.raises(ValueError, match="needs subject_ids"):
        model(tokens, pos)


def test_subject_invariant_variant_has_no_subject_input():
    model = small_expr(subject_invariant=True)
    assert model.subjects is None
    assert model(torch.randn(2, 16, 48), torch.randn(1, 16, 48)).shape == (2, 32)


def test_reconstruction_image_range_and_size():
    torch.manual_seed(0)
    model = ReconstructionModel(dim=32, heads=2, cross_layers=1, self_layers=1, ff_dim=64, max_subjects=4,
                                image_size=56, token_dim=48, expression_dim=24, decoder_channels=[16, 8],
                                dropout=0.0).eval()
    with torch.no_grad():
        img = model(torch.randn(3, 24), torch.tensor([0, 1, 3]), torch.randn(1, 16, 48))
    assert img.shape == (3, 3, 56, 56)
    assert img.min() >= 0 and img.max() <= 1
    with pytest.raises(ValueError, match="multiply to the patch size 14"):
        ReconstructionModel(image_size=56, upsample=[2, 2], decoder_channels=[8, 8])


def test_predictor_is_causal():
    torch.manual_seed(0)
    model = ExpressionPredictor(token_dim=16, dim=16, heads=2, layers=2, ff_dim=32, max_len=12, dropout=0.0).eval()
    x = torch.randn(2, 8, 16)
    y = x.clone()
    y[:, 5:] = torch.randn(2, 3, 16)  # change the future only
    with torch.no_grad():
        a, b = model(x), model(y)
    assert a.shape == (2, 8, 16)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-5)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("name", CARDS)
def test_card_tiny_model_matches_its_onnx_spec(name):
    """The tiny model takes the card's ONNX inputs and gives outputs of the declared shapes (batch 2)."""
    card = load_card(name)
    model = build_model(card, tiny=True).eval()
    part = card.onnx.parts[0]
    dims = {"batch": 2, "frames": 5}
    inputs = []
    for spec in part.inputs:
        shape = [dims[d] if isinstance(d, str) else d for d in spec.shape]
        inputs.append(torch.randint(0, 4, shape) if spec.dtype == "int64" else torch.rand(shape))
    with torch.no_grad():
        out = model(*inputs)
    out = out if isinstance(out, tuple) else (out,)
    assert [list(o.shape) for o in out] == [[dims[d] if isinstance(d, str) else d for d in s.shape]
                                            for s in part.outputs]
    assert card.outputs == [s.name for s in part.outputs]
