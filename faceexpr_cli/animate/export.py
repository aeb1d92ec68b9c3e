"""ONNX export and ONNX Runtime sessions for the animation engines' graphs.

Each exported file carries its model card (JSON in the ``fx.card`` metadata entry), so a consumer knows the input
contract without guessing. Exports made on the fly for ``--backend onnx`` are cached under
``$FX_HOME/cache/animate/<key>/`` keyed by the card, the checkpoint's hash and the input size.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.paths import fx_home

OPSET = 18


def export_module(module, args: Sequence[Any], path: str | Path, input_names: list[str], output_names: list[str],
                  dynamic: dict[str, dict[int, str]] | None = None, card=None, dynamo: bool = False) -> Path:
    """Export ``module(*args)``; ``dynamic`` maps tensor names to {axis: dim name}. Written atomically.

    The TorchScript-based exporter is the default: it takes about a second where the dynamo exporter takes ten or
    more for the same graph, and both give the same opset-18 operators here (GridSample, Conv, Resize).
    """
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part.onnx")
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # Shape checks become constants in the trace (sizes are fixed by the card) and constant folding notes
        # are harmless; keep the user's terminal clean.
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {n: {a: torch.export.Dim(d) for a, d in axes.items()} for n, axes in (dynamic or {}).items()}
            shapes = tuple(dims.get(n) for n in input_names)
            torch.onnx.export(module, tuple(args), str(tmp), input_names=input_names, output_names=output_names,
                              dynamic_shapes=shapes, opset_version=OPSET, dynamo=True, external_data=False)
        else:
            torch.onnx.export(module, tuple(args), str(tmp), input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic or {}, opset_version=OPSET, dynamo=False)
    model = onnx.load(str(tmp))
    if card is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "fx.card", card.model_dump_json()
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path


def card_of(path: str | Path) -> dict[str, Any] | None:
    """The model card an exported file carries, or None."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for entry in model.metadata_props:
        if entry.key == "fx.card":
            return json.loads(entry.value)
    return None


class OnnxRunner:
    """One ONNX Runtime session (from fx's one session factory, which checks the providers it really got) with
    named inputs; ``__call__`` takes arrays in input order."""

    def __init__(self, path: str | Path, device: str = "cpu", threads: int = 0):
        from faceexpr_cli.onnx.session import create_session

        self.session = create_session(path, device=device, intra_op_threads=threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        feed = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self.input_names, arrays, strict=True)}
        return self.session.run(None, feed)


def cache_dir(*parts: str) -> Path:
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return fx_home() / "cache" / "animate" / key


def state_hash(module) -> str:
    """A short hash of a module's weights, so cached exports follow the checkpoint that was loaded."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cached_export(path: Path, make) -> Path:
    """Run ``make(path)`` unless ``path`` already exists (the export is keyed by its directory name)."""
    if not path.exists():
        log.info("exporting %s to ONNX", path.name)
        make(path)
    return path
