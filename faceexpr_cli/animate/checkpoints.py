"""FOMM checkpoints in the original layout: read, check against a model (with a readable summary), write; and the
frame size an original FOMM YAML gives (``dataset_params.frame_shape``), which the model was trained at.

The layout is the original ``Logger.save_cpk``'s: ``{kp_detector, generator, discriminator, optimizer_generator,
optimizer_discriminator, optimizer_kp_detector, epoch}``; our files add ``card`` (the model card as a dict), which
the original loaders ignore because they read keys by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceexpr_cli.errors import CheckpointError, ConfigError, MissingFileError
from faceexpr_cli.safety import plain_name

REQUIRED = ("kp_detector", "generator")


def config_frame_size(config: str | Path | None) -> int | None:
    """The square frame size of an original FOMM YAML (``dataset_params.frame_shape``: ``[256, 256, 3]`` for
    vox-256), or None for a card, a YAML without it, or no config at all."""
    from faceexpr_cli.builders.fomm import is_original_config
    from faceexpr_cli.config.yaml_io import read_yaml

    path = Path(config) if config is not None else None
    if path is None or path.suffix not in (".yaml", ".yml") or not path.is_file():
        return None
    data = read_yaml(path)
    if not is_original_config(data):
        return None
    shape = (data.get("dataset_params") or {}).get("frame_shape")
    if shape is None:
        return None
    if (not isinstance(shape, list) or len(shape) not in (2, 3)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise ConfigError(f"{path}: dataset_params.frame_shape {shape!r} is not [height, width, channels]",
                          "write it as the original does, e.g. [256, 256, 3]")
    if shape[0] != shape[1]:
        raise ConfigError(f"{path}: dataset_params.frame_shape {shape!r} is not square",
                          "FOMM works on square frames; pass --size N to choose one")
    return int(shape[0])


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict with ``weights_only=True`` (no code runs from the file)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles that need code, truncated files, not a torch file at all
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160]})", "pass a .pth/.pth.tar saved by FOMM or fx") from exc
    if not isinstance(data, dict) or not all(k in data for k in REQUIRED):
        keys = ", ".join(sorted(map(str, data))[:8]) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: not a FOMM checkpoint (needs {' and '.join(REQUIRED)}; has {keys})")
    _check_part_names(data.get("card"), str(path))
    return data


def _check_part_names(card: Any, source: str) -> None:
    """The carried card's ONNX part names become ``<part>.onnx`` in the export cache: refuse any that is not a
    plain file name (``../x``, ``/abs/x``) when the file is read, before anything is built or exported."""
    onnx = card.get("onnx") if isinstance(card, dict) else None
    parts = onnx.get("parts") if isinstance(onnx, dict) else None
    for part in parts if isinstance(parts, list) else []:
        plain_name(part.get("name") if isinstance(part, dict) else part, "ONNX part name",
                   source=f"the card carried by {source}")


def _strip_prefix(state: dict[str, Any]) -> dict[str, Any]:
    """Drop a DataParallel ``module.`` prefix if every key has it (original checkpoints have none)."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def mismatch_summary(module, state: dict[str, Any], limit: int = 3) -> str | None:
    """One line on how ``state`` does not fit ``module`` (missing, unexpected, wrong shapes), or None if it fits."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {list(state[k].shape)} vs {list(own[k].shape)}" for k in own
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if items:
            more = f", +{len(items) - limit} more" if len(items) > limit else ""
            parts.append(f"{len(items)} {label} ({'; '.join(items[:limit])}{more})")
    return "; ".join(parts) or None


def load_fomm_checkpoint(model, path: str | Path, card_name: str = "", parts=REQUIRED,
                         data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Strictly load each of ``parts`` into ``model``; a mismatch raises CheckpointError with a summary.

    ``data`` is the already-read checkpoint (``read_checkpoint``), to avoid reading a large file twice.
    """
    data = read_checkpoint(path) if data is None else data
    for part in parts:
        if part not in data:
            raise CheckpointError(f"{path}: has no '{part}' state dict")
        module = getattr(model, part, None)
        if module is None:
            continue
        state = _strip_prefix(data[part])
        problem = mismatch_summary(module, state)
        if problem:
            raise CheckpointError(f"{path}: {part} does not fit {card_name or 'the model'}: {problem}",
                                  "pass the checkpoint's own config with --config (an original FOMM YAML or a card)")
        module.load_state_dict(state, strict=True)
    return data


def card_in(data: dict[str, Any], source: str = "checkpoint card"):
    """The model card a checkpoint written by fx carries (None for original checkpoints); its part names are
    checked (``card_from_dict``), and a card that does not validate is the checkpoint's fault (exit 1)."""
    card = data.get("card")
    if not isinstance(card, dict):
        return None
    from faceexpr_cli.config.cards import card_from_dict
    from faceexpr_cli.errors import ConfigError

    try:
        return card_from_dict(card, source)
    except ConfigError as exc:
        raise CheckpointError(exc.message, exc.hint) from None


def save_fomm_checkpoint(path: str | Path, model, epoch: int, optimizers: dict[str, Any] | None = None,
                         card: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write the original layout (+ ``card``) atomically; returns the path."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {name: module.state_dict() for name, module in model.parts().items()}
    for name, opt in (optimizers or {}).items():
        data[f"optimizer_{name}"] = opt.state_dict()
    data["epoch"] = int(epoch)
    if card is not None:
        data["card"] = card
    data.update(extra or {})
    tmp = path.with_name(f".{path.name}.part")
    torch.save(data, tmp)
    tmp.replace(path)
    return path
