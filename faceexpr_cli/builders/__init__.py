"""Model builders, registered by the name that model cards give in ``builder:``.

Each module in this package registers one or more builders with ``@BUILDERS.register("name")``; a builder takes
the card's preset (or tiny) arguments as keyword arguments and returns an ``nn.Module``. Modules here may import
torch; they are loaded only when a model is built.
"""

from __future__ import annotations

from typing import Any

from faceexpr_cli.config.cards import ModelCard, load_card
from faceexpr_cli.registry import Registry

BUILDERS: Registry = Registry("model builder", discover="faceexpr_cli.builders")


def build_model(card: ModelCard | str, tiny: bool = False, **overrides: Any):
    """Build the model a card describes (random init; loading weights is the caller's step)."""
    if not isinstance(card, ModelCard):
        card = load_card(card)
    builder = BUILDERS.get(card.builder)
    args = card.arguments(tiny=tiny)
    args.update(overrides)
    return builder(**args)
