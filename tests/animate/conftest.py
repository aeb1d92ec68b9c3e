from __future__ import annotations

from pathlib import Path

import pytest

FOMM_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fomm"


@pytest.fixture(scope="session")
def portrait_png(tmp_path_factory) -> Path:
    """The astronaut portrait (public domain) as a PNG source image."""
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import load_portrait

    image, _ = load_portrait("astronaut")
    return write_image(tmp_path_factory.mktemp("src") / "astronaut.png", image)


@pytest.fixture(scope="session")
def tiny_fomm_args() -> list[str]:
    """CLI arguments for the fomm engine with the parity fixture: original FOMM YAML + original-layout checkpoint."""
    return ["--engine", "fomm", "--config", str(FOMM_FIXTURES / "tiny_config.yaml"),
            "--checkpoint", str(FOMM_FIXTURES / "tiny_checkpoint.pth")]


@pytest.fixture(scope="session")
def face_backend():
    from faceexpr_cli.face import get_backend

    return get_backend("dlib")
