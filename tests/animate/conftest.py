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


@pytest.fixture(scope="session")
def _onnx_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx_cache")


@pytest.fixture
def shared_onnx_cache(_onnx_cache_dir) -> Path:
    """``$FX_HOME/cache/onnx`` shared by the tests that use it: engines export each graph once per test session,
    as they do once per machine (every test otherwise gets an empty FX_HOME)."""
    from faceexpr_cli.onnx.cache import cache_root

    link = cache_root()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(_onnx_cache_dir, target_is_directory=True)
    return _onnx_cache_dir
