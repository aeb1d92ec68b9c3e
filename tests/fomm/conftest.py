from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fomm"


@pytest.fixture(scope="session")
def fomm_fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny FOMM from the fixture's own config, with the fixture checkpoint loaded strictly, in eval mode."""
    import torch
    import yaml

    from faceexpr_cli.nn.fomm import FirstOrderModel

    params = yaml.safe_load((FIXTURES / "tiny_config.yaml").read_text())["model_params"]
    model = FirstOrderModel(**params)
    ckpt = torch.load(FIXTURES / "tiny_checkpoint.pth", weights_only=True)
    assert model.load_parts(ckpt) == ["kp_detector", "generator"]
    return model.eval()


@pytest.fixture(scope="session")
def tiny_case():
    import torch

    return torch.load(FIXTURES / "tiny_case.pt", weights_only=True)
