"""Where fx keeps things: the weights cache and the shipped model cards and recipes."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def fx_home() -> Path:
    """The cache root: ``FX_HOME`` or the user's cache directory."""
    env = os.environ.get("FX_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("faceexpr"))


def weights_dir() -> Path:
    return fx_home() / "weights"


def _data_dir(name: str) -> Path:
    # An installed wheel carries models/ and recipes/ inside the package; a source checkout has them at the top.
    packaged = _PACKAGE / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / name


def cards_dir() -> Path:
    return Path(os.environ.get("FX_MODELS_DIR") or _data_dir("models"))


def recipes_dir() -> Path:
    return Path(os.environ.get("FX_RECIPES_DIR") or _data_dir("recipes"))
