"""The classifier of a fine-tuning run: built from its card, started from pretrained weights, found again in a run.

A run saves ``classifier.safetensors`` whose card (in the file's metadata and beside it) has the actual builder
arguments as preset, the class names under ``labels``, and the sampling a clip needs under ``input`` (frames and
size) plus ``sampling`` (stride, views), so ``eval`` and ``predict`` need nothing but the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceexpr_cli.config.cards import ModelCard, load_card
from faceexpr_cli.errors import CheckpointError, MissingFileError
from faceexpr_cli.train import checkpoint as C

ROLE = "classifier"


@dataclass
class Classifier:
    module: Any
    card: ModelCard
    classes: list[str]
    sampling: dict[str, Any]
    source: Path


def classifier_card(spec, classes: list[str], num_regression: int, data) -> tuple[ModelCard, dict[str, Any]]:
    """The card as this run builds it: preset = builder arguments (+ labels), input = the run's clip contract."""
    card = load_card(spec.card)
    args = card.arguments(tiny=spec.tiny) | dict(spec.args)
    args["num_classes"] = len(classes) + num_regression
    args["image_size"], args["frames"] = data.size, data.frames
    args["labels"] = list(classes)
    if num_regression:
        args["num_regression"] = num_regression
    sampling = {"stride": data.stride, "temporal_views": data.test_temporal_views,
                "spatial_views": data.test_spatial_views}
    args["sampling"] = sampling
    contract = card.input.model_copy(update={"size": data.size, "frames": data.frames}) if card.input else None
    resolved = card.model_copy(update={"preset": args, "tiny": {}, "input": contract})
    return resolved, args


def builder_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in ("labels", "sampling")}


def build(card: ModelCard, args: dict[str, Any]):
    from faceexpr_cli.builders import BUILDERS

    return BUILDERS.get(card.builder)(**builder_args(args))


def pretrained_file(spec: str | Path) -> Path:
    """A checkpoint file, or the model file of an fx run (fine-tuning: best, then latest; pretraining: encoder)."""
    path = Path(spec)
    if not path.exists():
        raise MissingFileError(path, "pretrained weights (model.init)")
    if path.is_file():
        return path
    for cand in (path / "best" / f"{ROLE}.safetensors", path / f"{ROLE}.safetensors",
                 path / "pretrainer.safetensors"):
        if cand.is_file():
            return cand
    ckpt = latest = C.latest_checkpoint(path)
    if latest is not None:
        for role in (ROLE, "pretrainer"):
            if (ckpt / f"{role}.safetensors").is_file():
                return ckpt / f"{role}.safetensors"
    raise CheckpointError(f"{path}: no {ROLE}.safetensors or pretrainer.safetensors inside",
                          "pass a checkpoint file or a run made by fx finetune-dfer / fx train videomae")


def init_from(module, spec: str | Path) -> dict[str, Any]:
    """Start ``module`` from pretrained weights of any supported layout; a head of another size starts fresh."""
    from faceexpr_cli.builders.videomae import load_videomae_weights

    path = pretrained_file(spec)
    if path.suffix == ".safetensors":
        state, _, _ = C.read_model_file(path)
        return load_videomae_weights(module, state) | {"file": str(path)}
    return load_videomae_weights(module, path) | {"file": str(path)}


def model_file(source: str | Path) -> Path:
    """``--model``: a run (its best checkpoint, else its latest), a checkpoint folder or a ``.safetensors``."""
    path = Path(source)
    if not path.exists():
        raise MissingFileError(path, "model (a fine-tuning run or classifier.safetensors)")
    if path.is_file():
        return path
    for cand in (path / "best" / f"{ROLE}.safetensors", path / f"{ROLE}.safetensors"):
        if cand.is_file():
            return cand
    return C.resolve_model_file(path, ROLE)


def load_classifier(source: str | Path, device: str = "cpu") -> Classifier:
    path = model_file(source)
    state, card, _ = C.read_model_file(path)
    if card is None or "labels" not in card.preset:
        raise CheckpointError(f"{path}: not a classifier saved by fx finetune-dfer (no card with labels inside)")
    module = build(card, card.preset)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit its own card ({C.short_error(exc)})") from None
    module.to(device).eval()
    return Classifier(module, card, list(card.preset["labels"]), dict(card.preset.get("sampling") or {}), path)
