"""Training runs as export sources: the models of a run's newest checkpoint, and the tokenizer that fed them.

The run layout and the model-file format belong to ``faceexpr_cli.train.checkpoint`` (one ``<role>.safetensors``
per model with its resolved card in the file's metadata and beside it as ``<role>.card.yaml``); this module only
reads them through that module's functions. The frozen tokenizer is in the run only when it was random
(``tokenizer.safetensors``); otherwise the run's recipe names its card and published weights.

A run's cards carry the builder arguments the run used (e.g. ``dim: 64`` at 56 px) but the shipped ONNX shapes,
so run models are exported with ``derive_shapes`` and at the run's frame size (``data.size``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from faceexpr_cli.config.cards import ModelCard
from faceexpr_cli.config.yaml_io import read_yaml
from faceexpr_cli.errors import CheckpointError, ConfigError, MissingFileError, UnknownNameError
from faceexpr_cli.onnx.export import ModelSource
from faceexpr_cli.safety import plain_name

TOKENIZER = "tokenizer"


def checkpoint_dir(run_dir: Path) -> Path:
    """The checkpoint to export: the folder itself if it is one, else the run's newest complete checkpoint."""
    from faceexpr_cli.train.checkpoint import latest_checkpoint

    if (run_dir / "meta.json").is_file():
        return run_dir
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise MissingFileError(run_dir / "checkpoints", "checkpoint in the run",
                               "point at a run directory written by `fx train`, a checkpoint or a card")
    return ckpt


def _model_file(path: Path, role: str) -> ModelSource:
    from faceexpr_cli.onnx.sources import card_from_file
    from faceexpr_cli.train.checkpoint import read_model_file

    plain_name(role, "model name", source=str(path.parent))
    try:
        _, card, _ = read_model_file(path)
    except (ValueError, ConfigError) as exc:  # an fx_card that is not JSON, or not a valid card
        message = exc.message if isinstance(exc, ConfigError) else f"{path}: its model card is not valid JSON"
        raise CheckpointError(message, "re-save the model with `fx train`, or pass a checkpoint and --card") from None
    sidecar = path.with_name(f"{role}.card.yaml")
    if card is None and sidecar.is_file():
        card = card_from_file(lambda: read_yaml(sidecar), str(sidecar))
    if card is None:
        raise CheckpointError(f"{path}: carries no card and has no {sidecar.name} beside it")
    return ModelSource(card=card, weights=path, load=partial(_load_model, path=path, card=card, role=role),
                       folder=role, derive_shapes=True)


def _load_model(model: Any, path: Path, card: ModelCard, role: str) -> None:
    from faceexpr_cli.train.checkpoint import load_model

    load_model(path, model, card, role)


def _recipe(run_dir: Path, ckpt: Path) -> dict[str, Any]:
    for path in (ckpt / "recipe.yaml", run_dir / "recipe.yaml"):
        if path.is_file():
            return read_yaml(path)
    return {}


def _published_tokenizer(spec: dict[str, Any]) -> ModelSource:
    """The recipe's tokenizer: its card with the run's arguments, and the published weights from the cache."""
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.weights import find_weights

    base = load_card(spec.get("card", "dinov2-vits14"))
    args = base.arguments(tiny=bool(spec.get("tiny"))) | dict(spec.get("args") or {})
    card = base.model_copy(update={"preset": args, "tiny": {}})
    weights = find_weights(card, source=spec.get("source"), explicit=spec.get("weights"))

    def load(model: Any) -> None:
        from faceexpr_cli.builders.expression import load_dinov2_weights

        load_dinov2_weights(model, weights)

    return ModelSource(card=card, weights=weights, load=load, folder=TOKENIZER, derive_shapes=True)


def run_sources(run_dir: Path, models: list[str] | None = None, all_models: bool = False) -> list[ModelSource]:
    """The run's models to export (and, unexported, the ones that feed them), in dependency order."""
    from faceexpr_cli.onnx.sources import order_by_dependency

    ckpt = checkpoint_dir(run_dir)
    found: dict[str, ModelSource] = {}
    for path in sorted(ckpt.glob("*.safetensors")):
        found[path.stem] = _model_file(path, path.stem)
    recipe = _recipe(run_dir, ckpt)
    if TOKENIZER not in found:
        for where in (run_dir, ckpt):
            if (where / f"{TOKENIZER}.safetensors").is_file():
                found[TOKENIZER] = _model_file(where / f"{TOKENIZER}.safetensors", TOKENIZER)
                break
        else:
            if isinstance(recipe.get(TOKENIZER), dict):
                found[TOKENIZER] = _published_tokenizer(recipe[TOKENIZER])
    found = {role: src for role, src in found.items() if src.card.onnx and src.card.onnx.parts}
    if not found:
        raise CheckpointError(f"{ckpt}: no model with an onnx section in this checkpoint")
    size = (recipe.get("data") or {}).get("size")
    for src in found.values():
        if size and src.card.input is not None:
            src.card = src.card.model_copy(update={"input": src.card.input.model_copy(update={"size": int(size)})})
    wanted = _choose(found, models, all_models, run_dir)
    for role, src in found.items():
        src.export = role in wanted
        if len(wanted) == 1:
            src.folder = ""
    return [s for s in order_by_dependency(list(found.values())) if s.export or _feeds(s, found, wanted)]


def _choose(found: dict[str, ModelSource], models: list[str] | None, all_models: bool, run_dir: Path) -> set[str]:
    exportable = sorted(found)
    if models:
        hits = set()
        for model in models:  # a role (expression) or a card name (expression-transformer)
            match = [r for r in found if model in (r, found[r].card.name)]
            if not match:
                raise UnknownNameError(f"model in {run_dir}", model, exportable)
            hits.update(match)
        return hits
    return set(exportable)  # every model of the run unless --model picks (``all_models`` is the default)


def _feeds(src: ModelSource, found: dict[str, ModelSource], wanted: set[str]) -> bool:
    """Whether an unexported model produces a name that a wanted model takes as input."""
    outs = {s.name for p in src.card.onnx.parts for s in p.outputs}
    needs = {s.name for r in wanted for p in found[r].card.onnx.parts for s in p.inputs}
    return bool(outs & needs)
