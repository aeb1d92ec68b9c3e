from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_buffalo(tmp_path_factory):
    """A directory of tiny ONNX models with the buffalo_l contracts (see tiny_buffalo.py)."""
    from tiny_buffalo import build_tiny_buffalo

    return build_tiny_buffalo(tmp_path_factory.mktemp("buffalo") / "buffalo_l")
