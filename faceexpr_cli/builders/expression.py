"""Builders for the expression models, and loading the DINOv2 tokenizer's published weights.

Builders only construct (random init); ``build_tokenizer`` is the one place that turns a card into a *pretrained*
tokenizer: it finds the weights (explicit path, else the cache), maps either published key layout, and refuses to
hand out a random tokenizer unless ``random_init=True`` was asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceexpr_cli.builders import BUILDERS
from faceexpr_cli.config.cards import ModelCard, load_card
from faceexpr_cli.errors import CheckpointError


@BUILDERS.register("dinov2")
def build_dinov2(**kwargs: Any):
    from faceexpr_cli.nn.dinov2 import DinoV2

    return DinoV2(**kwargs)


@BUILDERS.register("expression_transformer")
def build_expression_transformer(**kwargs: Any):
    from faceexpr_cli.nn.expression import ExpressionTransformer

    return ExpressionTransformer(**kwargs)


@BUILDERS.register("expression_reconstruction")
def build_reconstruction(**kwargs: Any):
    from faceexpr_cli.nn.reconstruction import ReconstructionModel

    return ReconstructionModel(**kwargs)


@BUILDERS.register("expression_predictor")
def build_predictor(**kwargs: Any):
    from faceexpr_cli.nn.predictor import ExpressionPredictor

    return ExpressionPredictor(**kwargs)


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors from a ``.safetensors``, ``.pth``/``.pt``/``.bin`` file or a transformers model directory."""
    import torch

    path = Path(path)
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).exists():
                return read_state_dict(path / name)
        raise CheckpointError(f"{path}: no model.safetensors or pytorch_model.bin inside")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: name it, do not show a pickle traceback
        raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from exc
    for wrapper in ("model", "state_dict", "teacher"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def load_dinov2_weights(model, path: str | Path) -> str:
    """Load a research-release or transformers DINOv2 checkpoint into ``model``; returns the layout found."""
    from faceexpr_cli.nn.dinov2 import convert_dinov2_state_dict, detect_layout

    raw = read_state_dict(path)
    layout = detect_layout(raw)
    try:
        state = convert_dinov2_state_dict(raw)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if missing or extra or shapes:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                  else f"shape {shapes[0]}")
        raise CheckpointError(f"{path}: {layout} DINOv2 checkpoint does not fit this tokenizer ({detail})",
                              "check the card: ViT-S/14 is dim 384 depth 12, ViT-B/14 dim 768 depth 12")
    model.load_state_dict(state, strict=True)
    return layout


def build_tokenizer(card: ModelCard | str = "dinov2-vits14", *, weights: str | Path | None = None,
                    source: str | None = None, random_init: bool = False, tiny: bool = False,
                    **overrides: Any):
    """The frozen DINOv2 tokenizer with published weights (or random weights, only when asked)."""
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.weights import find_weights

    card = card if isinstance(card, ModelCard) else load_card(card)
    model = build_model(card, tiny=tiny, **overrides)
    if not random_init:
        load_dinov2_weights(model, find_weights(card, source=source, explicit=weights))
    return model
