"""The LivePortrait parity case (tests/fixtures/liveportrait, README there) loaded once per module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "liveportrait"


def read_rgb(name: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(FIXTURE / name).convert("RGB"))


def as_batch(image: np.ndarray):
    import torch

    return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


@pytest.fixture(scope="module")
def case() -> dict:
    return json.loads((FIXTURE / "case.json").read_text())


@pytest.fixture(scope="module")
def reference():
    def load(name: str) -> np.ndarray:
        return np.load(FIXTURE / f"{name}.npy", allow_pickle=False)

    return load


@pytest.fixture(scope="module")
def tiny_model():
    """The fixture's models.yaml built through the builder, its checkpoints loaded strictly."""
    import torch

    from faceexpr_cli.animate.liveportrait_weights import load_liveportrait
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.builders.liveportrait import card_for_config

    torch.manual_seed(0)
    card = card_for_config(FIXTURE / "models.yaml", size=64)
    model = build_model(card).eval()
    load_liveportrait(model, FIXTURE / "checkpoints")
    return model
