"""Finding model weights on this machine: an explicit path, else the cache under ``FX_HOME``.

The cache layout is ``<FX_HOME>/weights/<card name>/<filename>`` for each weight source a card lists.
Nothing here downloads: a missing file raises ``WeightsNotFoundError`` whose hint names the
``fx download weights`` command and the exact place to put the file by hand.
"""

from __future__ import annotations

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
    raise WeightsNotFoundError(
        f"weights '{ws.name}' for '{card.name}' are not on this machine",
        f"run `fx download weights {card.name}` or put {ws.filename} at {path}",
    )
