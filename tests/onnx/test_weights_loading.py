"""`TorchPredictor.load` by card name with a weights file: the checkpoint's wrappers (state_dict / model /
module, a DDP ``module.`` prefix) come off and every weight lands, checked value by value."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "module", None])
def test_a_named_card_loads_its_weights_through_any_wrapper(toy_cards, tmp_path, wrapper):
    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx.predictor import TorchPredictor

    torch.manual_seed(1)
    trained = build_model(load_card("toy-tokenizer"), tiny=True)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p))  # far from any fresh initialisation
    state = {f"module.{k}": v for k, v in trained.state_dict().items()}
    path = tmp_path / "w.pt"
    torch.save({wrapper: state, "step": 7} if wrapper else state, path)
    torch.manual_seed(2)
    pred = TorchPredictor.load("toy-tokenizer", tiny=True, weights=path)
    assert pred.card.name == "toy-tokenizer"
    # the predictor wraps the model for its part (the card's part runs the whole model: keys under "inner.")
    got = {k.removeprefix("inner."): v for k, v in pred.module.state_dict().items()}
    want = trained.state_dict()
    assert set(got) == set(want)
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)
