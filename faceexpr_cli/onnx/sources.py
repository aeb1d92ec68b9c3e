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
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles with custom classes, truncated files
        raise CheckpointError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {str(exc)[:200]})",
                              "export a plain state dict (safetensors) or pass the original file") from exc


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


def run_models(run_dir: Path) -> dict[str, tuple[Path, Path]]:
    """model name -> (weights, card) in a run directory (its newest checkpoint folder when it has several)."""
    candidates = [run_dir]
    ckpts = run_dir / "checkpoints"
    if ckpts.is_dir():
        latest = ckpts / "latest"
        subdirs = sorted((p for p in ckpts.iterdir() if p.is_dir() and p.name != "latest"),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        candidates += ([latest] if latest.is_dir() else []) + subdirs[:1] + [ckpts]
    for folder in candidates:
        found = {}
        for card_file in sorted(folder.glob(f"*{CARD_SUFFIX}")):
            name = card_file.name[: -len(CARD_SUFFIX)]
            weights = folder / f"{name}.safetensors"
            if weights.is_file():
                found[name] = (weights, card_file)
        if found:
            return found
    return {}


def resolve_sources(target: str, card: str | None = None, model: str | None = None, all_models: bool = False,
                    tiny: bool = False, random_init: bool = False,
                    overrides: tuple[str, ...] = ()) -> tuple[list[ModelSource], str]:
    """The models to export for a command-line target, and a label for the report."""
    from faceexpr_cli.weights import find_weights

    path = Path(target).expanduser()
    if path.is_dir():
        if tiny:
            raise UsageError("--tiny builds random tiny models: it does not apply to a run directory")
        models = run_models(path)
        if not models:
            raise MissingFileError(path / f"<model>{CARD_SUFFIX}", "trained model (weights + card) in the run",
                                   "point at a run directory written by `fx train`, a checkpoint or a card")
        names = list(models)
        if model:
            if model not in models:
                from faceexpr_cli.errors import UnknownNameError

                raise UnknownNameError(f"model in {path}", model, names)
            names = [model]
        elif len(names) > 1 and not all_models:
            raise UsageError(f"{path} holds {len(names)} models ({', '.join(names)})",
                             "pass --all to export them all, or --model NAME")
        sources = [source_for(load_card(models[n][1], overrides), models[n][0], folder=n if len(names) > 1 else "")
                   for n in names]
        return order_by_dependency(sources), f"run {path}"
    if path.suffix in CHECKPOINT_SUFFIXES or (path.exists() and path.suffix not in (".yaml", ".yml")):
        if not path.is_file():
            raise MissingFileError(path, "checkpoint")
        sidecars = [path.with_name(path.name.split(".")[0] + CARD_SUFFIX), path.with_name("card.yaml")]
        card_ref = card or next((str(p) for p in sidecars if p.is_file()), None)
        if card_ref is None:
            raise UsageError(f"no card for checkpoint {path}", f"pass --card NAME or put {sidecars[0].name} beside it")
        return [source_for(load_card(card_ref, overrides), path)], f"checkpoint {path}"
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
