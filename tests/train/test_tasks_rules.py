"""What each kind of run builds from its recipe (argument precedence, ties, freezing, capacity, refusals) and what one
step's compute returns, with the tiny cards on CPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from faceexpr_cli.config.recipes import load_recipe
from faceexpr_cli.train import losses as L
from faceexpr_cli.train import tasks as T


def tokenizer(recipe):
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card

    card = load_card(recipe.tokenizer.card)
    args = card.arguments(tiny=True) | recipe.tokenizer.args | {"image_size": recipe.data.size}
    torch.manual_seed(0)
    return build_model(card, **args).eval()


def joint(*overrides: str):
    recipe = load_recipe("joint-tiny", ["data.path=x", *overrides])
    tok = tokenizer(recipe)
    torch.manual_seed(0)
    return T.JointTask(recipe, tok), tok


def test_model_args_precedence():
    spec = SimpleNamespace(card="expression-transformer", tiny=True, args={"dim": 48, "layers": 2})
    card, args = T.model_args(spec, {"image_size": 56, "token_dim": 64, "not_an_arg": 1})
    assert card.name == "expression-transformer"
    assert args["dim"] == 48 and args["layers"] == 2  # recipe args over the tiny preset
    assert args["heads"] == 2 and args["max_subjects"] == 8 and args["ff_dim"] == 64  # tiny over the preset
    assert args["image_size"] == 56 and args["token_dim"] == 64 and "not_an_arg" not in args  # derived, if an arg
    _, full = T.model_args(SimpleNamespace(card="expression-transformer", tiny=False, args={}), {})
    assert full["max_subjects"] == 501 and full["layers"] == 4
    _, over = T.model_args(SimpleNamespace(card="expression-transformer", tiny=False, args={"image_size": 28}),
                           {"image_size": 56})
    assert over["image_size"] == 56  # the run's derived value wins over the recipe


def test_joint_task_derives_sizes_and_ties_the_shared_parts():
    task, tok = joint()
    assert task.roles == ("expression", "reconstruction") and task.frozen_roles == ()
    expr_args, rec_args = task.args["expression"], task.args["reconstruction"]
    assert (expr_args["image_size"], expr_args["patch_size"], expr_args["token_dim"]) == (56, tok.patch_size, tok.dim)
    assert rec_args["expression_dim"] == task.models["expression"].dim == 64
    assert rec_args["image_size"] == 56 and rec_args["token_dim"] == tok.dim
    expr, rec = task.models["expression"], task.models["reconstruction"]
    assert rec.subjects is expr.subjects and rec.delta_pos is expr.delta_pos
    assert task.module.expression is expr and task.module.reconstruction is rec
    assert all(p.requires_grad for p in task.module.parameters())
    assert task.capacity() == 8
    assert task.cards["reconstruction"].name == "reconstruction"


def test_joint_task_untied_capacity_and_frozen_transformer():
    task, _ = joint("tie_subjects=false", "tie_delta_pos=false", "expression.args.max_subjects=5",
                    "trainer.freeze_expression_transformer=true")
    expr, rec = task.models["expression"], task.models["reconstruction"]
    assert rec.subjects is not expr.subjects and rec.delta_pos is not expr.delta_pos
    assert task.capacity() == 5  # the smaller of the two tables
    assert task.frozen_roles == ("expression",)
    assert not any(p.requires_grad for p in expr.parameters()) and all(p.requires_grad for p in rec.parameters())
    with pytest.raises(ValueError, match="tie_subjects needs the same max_subjects and dim in both models"):
        joint("expression.args.max_subjects=5")


def _inputs(task, tok, clips=2, frames=6, seed=1):
    torch.manual_seed(seed)
    images = torch.rand(clips * frames, 3, 56, 56)
    with torch.no_grad():
        tokens = tok(images)[0]
        pos = tok.positional(56 // tok.patch_size, 56 // tok.patch_size)
    rows = torch.tensor([0, 1]).repeat_interleave(frames)[: clips * frames]
    return tokens, pos, rows, images


def test_joint_compute_parts_and_weighted_total():
    task, tok = joint()
    tokens, pos, rows, images = _inputs(task, tok)
    task.module.eval()
    weights = {"reconstruction": 2.0, "temporal": 0.5, "diversity": 0.25}
    total, parts, outs = task.compute(task.module, tokens, pos, rows, images, 2, tok, weights)
    assert set(parts) == {"reconstruction", "temporal", "diversity"}
    seq, recon = outs["expression"], outs["reconstruction"]
    assert seq.shape == (2, 6, 64) and recon.shape == images.shape
    assert parts["reconstruction"].item() == pytest.approx(L.reconstruction_loss(recon, images).item(), rel=1e-6)
    assert parts["temporal"].item() == pytest.approx(L.temporal_loss(seq, 0.7, 0.3, 5).item(), rel=1e-6)
    assert parts["diversity"].item() == pytest.approx(L.diversity_loss(seq, 5).item(), rel=1e-6)
    want = 2.0 * parts["reconstruction"] + 0.5 * parts["temporal"] + 0.25 * parts["diversity"]
    assert total.item() == pytest.approx(want.item(), rel=1e-6)
    # the recipe's loss settings reach the losses
    task.recipe = load_recipe("joint-tiny", ["data.path=x", "loss.temporal.coherence=0.0",
                                             "loss.temporal.contrast=1.0", "loss.temporal.stride=2",
                                             "loss.diversity_stride=3"])
    _, parts, outs = task.compute(task.module, tokens, pos, rows, images, 2, tok, weights)
    seq = outs["expression"]
    assert parts["temporal"].item() == pytest.approx(L.temporal_loss(seq, 0.0, 1.0, 2).item(), rel=1e-6)
    assert parts["diversity"].item() == pytest.approx(L.diversity_loss(seq, 3).item(), rel=1e-6)


def test_joint_compute_adds_the_perceptual_term():
    task, tok = joint()
    tokens, pos, rows, images = _inputs(task, tok)
    task.module.eval()
    w = {"reconstruction": 1.0}
    _, plain, outs = task.compute(task.module, tokens, pos, rows, images, 2, tok, w)
    task.recipe = load_recipe("joint-tiny", ["data.path=x", "loss.perceptual=0.5"])
    _, parts, _ = task.compute(task.module, tokens, pos, rows, images, 2, tok, w)
    with torch.no_grad():
        feat = torch.nn.functional.mse_loss(tok(outs["reconstruction"])[0], tokens).item()
    assert feat > 0
    assert parts["reconstruction"].item() == pytest.approx(plain["reconstruction"].item() + 0.5 * feat, rel=1e-5)


def test_prediction_task_frames_limit_freezing_and_compute():
    recipe = load_recipe("expression-tiny", ["data.path=x", "data.frames=32"])  # max_len 32: exactly fits
    tok = tokenizer(recipe)
    task = T.PredictionTask(recipe, tok)
    assert task.roles == ("expression", "predictor") and task.frozen_roles == ("expression",)
    assert task.args["predictor"]["token_dim"] == task.models["expression"].dim == 64
    assert not any(p.requires_grad for p in task.models["expression"].parameters())
    assert all(p.requires_grad for p in task.models["predictor"].parameters())
    assert task.capacity() == 8
    with pytest.raises(ValueError, match="data.frames 33 is longer than the predictor's max_len 32"):
        T.PredictionTask(load_recipe("expression-tiny", ["data.path=x", "data.frames=33"]), tok)
    free = T.PredictionTask(load_recipe("expression-tiny", ["data.path=x",
                                                            "trainer.freeze_expression_transformer=false"]), tok)
    assert free.frozen_roles == () and all(p.requires_grad for p in free.models["expression"].parameters())
    tokens, pos, rows, images = _inputs(task, tok, frames=4)
    task.module.eval()
    total, parts, outs = task.compute(task.module, tokens, pos, rows, images, 2, tok, {"prediction": 3.0})
    seq, pred = outs["expression"], outs["predicted"]
    assert seq.shape == pred.shape == (2, 4, 64)
    assert parts["prediction"].item() == pytest.approx(L.prediction_loss(pred, seq, "mse").item(), rel=1e-6)
    assert total.item() == pytest.approx(3.0 * parts["prediction"].item(), rel=1e-6)
    task.recipe = load_recipe("expression-tiny", ["data.path=x", "loss.prediction=cosine"])
    _, parts, _ = task.compute(task.module, tokens, pos, rows, images, 2, tok, {"prediction": 1.0})
    assert parts["prediction"].item() == pytest.approx(L.prediction_loss(pred, seq, "cosine").item(), rel=1e-5)


def test_tasks_table():
    assert {"train-joint": T.JointTask, "train-expression": T.PredictionTask} == T.TASKS
