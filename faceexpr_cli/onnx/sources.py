"""What ``fx export-onnx`` was pointed at: a run directory, a checkpoint file, or a model card.

- A **run directory** (``fx train joint``) holds, per model, ``<model>.safetensors`` next to its card
  ``<model>.card.yaml`` (searched in the directory, then in ``checkpoints/latest`` / the newest ``checkpoints/*``).
- A **checkpoint** (``.safetensors``, ``.pt``, ``.pth``, ``.pth.tar``) takes its card from ``--card``, else from a
  ``<stem>.card.yaml`` or ``card.yaml`` beside it.
- A **card** (name or YAML path) takes its weights from the cache (``fx download weights``), or random ones with
  ``--random-init`` / ``--tiny``.
Weights go in through the model's own ``load_weights(path)`` when it has one (formats such as the official DINOv2
release), else through a strict ``load_state_dict`` whose failure names the keys that do not fit.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from faceexpr_cli.config.cards import ModelCard, load_card
from faceexpr_cli.errors import CheckpointError, MissingFileError, UsageError
from faceexpr_cli.onnx.export import ModelSource

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".tar", ".ckpt", ".bin")
CARD_SUFFIX = ".card.yaml"


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a checkpoint file; anything unreadable (truncated, fake, another format) is one line."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            import torch

            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles with custom classes, truncated files, not a checkpoint at all
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {first[:200]})",
                              "export a plain state dict (safetensors) or pass the original file") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    return state


def load_weights(model: Any, path: Path, card: ModelCard) -> None:
    """Put the weights at ``path`` into a built model, strictly."""
    hook = getattr(model, "load_weights", None)
    if callable(hook):
        hook(path)
        return
    state = read_state_dict(path)
    if hasattr(model, "load_parts") and isinstance(state, dict) and any(
            isinstance(v, dict) for v in state.values()):
        loaded = model.load_parts(state)  # checkpoints that keep one state dict per sub-network (FOMM)
        if not loaded:
            raise CheckpointError(f"{path}: no part of card '{card.name}' in the checkpoint (keys: {sorted(state)[:6]})")
        return
    for key in ("state_dict", "model", "module"):
        if isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", sorted(shapes))):
            if keys:
                parts.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
        raise CheckpointError(f"{path} does not fit card '{card.name}': {'; '.join(parts)}",
                              "is this checkpoint from another model or card? pass the matching --card")
    model.load_state_dict(state, strict=True)


def source_for(card: ModelCard, weights: Path | None, folder: str = "") -> ModelSource:
    loader = None
    if weights is not None:
        loader = partial(_load_into, path=weights, card=card)
    return ModelSource(card=card, weights=weights, load=loader, folder=folder)


def _load_into(model: Any, path: Path, card: ModelCard) -> None:
    load_weights(model, path, card)


def resolve_sources(target: str, card: str | None = None, models: list[str] | None = None, all_models: bool = False,
                    tiny: bool = False, random_init: bool = False,
                    overrides: tuple[str, ...] = ()) -> tuple[list[ModelSource], str]:
    """The models to export for a command-line target, and a label for the report."""
    from faceexpr_cli.weights import find_weights

    path = Path(target).expanduser()
    if path.is_dir():
        if tiny:
            raise UsageError("--tiny builds random tiny models: it does not apply to a run directory")
        from faceexpr_cli.onnx.runs import run_sources

        return run_sources(path, models=models, all_models=all_models), f"run {path}"
    if path.suffix in CHECKPOINT_SUFFIXES or (path.exists() and path.suffix not in (".yaml", ".yml")):
        if not path.is_file():
            raise MissingFileError(path, "checkpoint")
        sidecars = [path.with_name(path.name.split(".")[0] + CARD_SUFFIX), path.with_name("card.yaml")]
        card_ref = card or next((str(p) for p in sidecars if p.is_file()), None)
        the_card = load_card(card_ref, overrides) if card_ref else embedded_card(path)
        if the_card is None:
            raise UsageError(f"no card for checkpoint {path}", f"pass --card NAME or put {sidecars[0].name} beside it")
        src = source_for(the_card, path)
        src.derive_shapes = differs_from_shipped(the_card)
        return [src], f"checkpoint {path}"
    the_card = load_card(card or target, overrides)
    if tiny or random_init:
        return [source_for(the_card, None)], f"card {the_card.name} ({'tiny, ' if tiny else ''}random init)"
    try:
        weights = find_weights(the_card)
    except Exception as exc:
        hint = getattr(exc, "hint", None)
        from faceexpr_cli.errors import WeightsNotFoundError

        raise WeightsNotFoundError(str(exc), (hint + "; " if hint else "")
                                   + "or pass --random-init to export untrained weights") from exc
    return [source_for(the_card, weights)], f"card {the_card.name}"


def embedded_card(path: Path) -> ModelCard | None:
    """The card a ``.safetensors`` model file carries in its metadata (``fx_card``, written by `fx train`)."""
    if path.suffix != ".safetensors":
        return None
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # not a safetensors file after all
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(exc)[:200]})") from exc
    if "fx_card" not in meta:
        return None
    return card_from_file(lambda: json.loads(meta["fx_card"]), str(path))


def card_from_file(read: Any, source: str) -> ModelCard:
    """The card ``read()`` returns (a dict from JSON/YAML inside a file), validated, its file names checked.

    A card that is not JSON, not a mapping or not a valid card is the file's fault: ``CheckpointError`` (exit 1).
    """
    from faceexpr_cli.config.cards import card_from_dict
    from faceexpr_cli.errors import ConfigError

    try:
        data = read()
    except ValueError as exc:  # JSONDecodeError
        raise CheckpointError(f"{source}: its model card is not valid JSON ({str(exc)[:120]})") from None
    except ConfigError as exc:  # read_yaml's one line for a YAML file that does not parse
        raise CheckpointError(exc.message, exc.hint) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: its model card is a {type(data).__name__}, not a mapping")
    try:
        return card_from_dict(data, source)
    except ConfigError as exc:
        raise CheckpointError(exc.message, exc.hint) from None


def differs_from_shipped(card: ModelCard) -> bool:
    """A card resolved with other builder arguments than the shipped card of that name (its shapes may be stale)."""
    from faceexpr_cli.config.cards import list_cards

    if card.name not in list_cards():
        return False
    return load_card(card.name).arguments() != card.arguments()


def order_by_dependency(sources: list[ModelSource]) -> list[ModelSource]:
    """Models whose parts consume names another model's parts produce go after it (tokenizer before expression)."""
    def names(src: ModelSource, attr: str) -> set[str]:
        parts = src.card.onnx.parts if src.card.onnx else []
        return {s.name for p in parts for s in getattr(p, attr)}

    pending, ordered = list(sources), []
    while pending:
        def waits(src: ModelSource) -> bool:
            needs = names(src, "inputs") - names(src, "outputs")
            return any(needs & names(o, "outputs") for o in pending if o is not src)

        pick = next((s for s in pending if not waits(s)), pending[0])
        ordered.append(pick)
        pending.remove(pick)
    return ordered
