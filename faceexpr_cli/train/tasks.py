"""What one training step computes, per kind of run. The runner owns everything else (data, optimizer, logging).

Every frame of every clip goes through each model as one batch of B*T images; only the loss functions see the
(B, T) structure again.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from faceexpr_cli.config.cards import ModelCard, load_card
from faceexpr_cli.train import losses as L


def model_args(spec, derived: dict[str, Any]) -> tuple[ModelCard, dict[str, Any]]:
    """Card + the builder arguments this run uses: preset (or tiny) < recipe args < values derived from the run."""
    card = load_card(spec.card)
    args = card.arguments(tiny=spec.tiny)
    args.update(spec.args)
    args.update({k: v for k, v in derived.items() if k in args})
    return card, args


def build(card: ModelCard, args: dict[str, Any]) -> nn.Module:
    from faceexpr_cli.builders import build_model

    return build_model(card, **args)


class JointModule(nn.Module):
    def __init__(self, expression: nn.Module, reconstruction: nn.Module):
        super().__init__()
        self.expression = expression
        self.reconstruction = reconstruction

    def forward(self, tokens, pos, rows):
        expr = self.expression(tokens, pos, rows)
        return expr, self.reconstruction(expr, rows, pos)


class PredictionModule(nn.Module):
    def __init__(self, expression: nn.Module, predictor: nn.Module):
        super().__init__()
        self.expression = expression
        self.predictor = predictor

    def forward(self, tokens, pos, rows, clips: int):
        expr = self.expression(tokens, pos, rows)
        seq = expr.reshape(clips, -1, expr.shape[-1])
        return seq, self.predictor(seq)


class JointTask:
    """Expression transformer + reconstruction, trained together (the seed's joint run)."""

    roles = ("expression", "reconstruction")
    frozen_roles: tuple[str, ...] = ()

    def __init__(self, recipe, tokenizer: nn.Module):
        self.recipe = recipe
        size = recipe.data.size
        base = {"image_size": size, "patch_size": tokenizer.patch_size, "token_dim": tokenizer.dim}
        self.cards: dict[str, ModelCard] = {}
        self.args: dict[str, dict[str, Any]] = {}
        self.cards["expression"], self.args["expression"] = model_args(recipe.expression, base)
        expr = build(self.cards["expression"], self.args["expression"])
        self.cards["reconstruction"], self.args["reconstruction"] = model_args(
            recipe.reconstruction, {**base, "expression_dim": expr.dim})
        recon = build(self.cards["reconstruction"], self.args["reconstruction"])
        if recipe.tie_subjects and expr.subjects is not None:
            if expr.subjects.weight.shape != recon.subjects.weight.shape:
                raise ValueError("tie_subjects needs the same max_subjects and dim in both models")
            recon.subjects = expr.subjects
        if recipe.tie_delta_pos:
            recon.delta_pos = expr.delta_pos
        self.models = {"expression": expr, "reconstruction": recon}
        self.module = JointModule(expr, recon)
        if recipe.trainer.freeze_expression_transformer:
            self.frozen_roles = ("expression",)
            expr.requires_grad_(False)

    def capacity(self) -> int:
        return min(m.max_subjects for m in self.models.values())

    def compute(self, module: nn.Module, tokens, pos, rows, images, clips: int, tokenizer, weights):
        expr, recon = module(tokens, pos, rows)
        seq = expr.reshape(clips, -1, expr.shape[-1])
        spec = self.recipe.loss
        rec = L.reconstruction_loss(recon, images)
        if spec.perceptual > 0:
            with torch.no_grad():
                target_tokens = tokens if tokens.shape[-1] == tokenizer.dim else tokenizer(images)[0]
            rec = rec + spec.perceptual * nn.functional.mse_loss(tokenizer(recon.float())[0], target_tokens)
        parts = {
            "reconstruction": rec,
            "temporal": L.temporal_loss(seq, spec.temporal.coherence, spec.temporal.contrast, spec.temporal.stride),
            "diversity": L.diversity_loss(seq, spec.diversity_stride),
        }
        return L.weighted_total(parts, weights), parts, {"expression": seq, "reconstruction": recon}


class PredictionTask:
    """Next-token prediction on the expression transformer's tokens (``fx train expression``)."""

    roles = ("expression", "predictor")

    def __init__(self, recipe, tokenizer: nn.Module):
        self.recipe = recipe
        base = {"image_size": recipe.data.size, "patch_size": tokenizer.patch_size, "token_dim": tokenizer.dim}
        self.cards: dict[str, ModelCard] = {}
        self.args: dict[str, dict[str, Any]] = {}
        self.cards["expression"], self.args["expression"] = model_args(recipe.expression, base)
        expr = build(self.cards["expression"], self.args["expression"])
        self.cards["predictor"], self.args["predictor"] = model_args(recipe.predictor, {"token_dim": expr.dim})
        pred = build(self.cards["predictor"], self.args["predictor"])
        if recipe.data.frames > pred.max_len:
            raise ValueError(f"data.frames {recipe.data.frames} is longer than the predictor's max_len {pred.max_len}")
        self.models = {"expression": expr, "predictor": pred}
        self.module = PredictionModule(expr, pred)
        self.frozen_roles = ("expression",) if recipe.trainer.freeze_expression_transformer else ()
        if self.frozen_roles:
            expr.requires_grad_(False)

    def capacity(self) -> int:
        return self.models["expression"].max_subjects

    def compute(self, module: nn.Module, tokens, pos, rows, images, clips: int, tokenizer, weights):
        seq, pred = module(tokens, pos, rows, clips)
        parts = {"prediction": L.prediction_loss(pred, seq.detach(), self.recipe.loss.prediction)}
        return L.weighted_total(parts, weights), parts, {"expression": seq, "predicted": pred}


TASKS = {"train-joint": JointTask, "train-expression": PredictionTask}
