"""Exports made on the fly, cached: commands with ``--backend onnx`` export through the same exporter once.

A command such as ``fx animate --backend onnx`` holds a model built from a card with weights loaded from wherever
it reads them. ``cached_export`` exports it with ``export_models`` (parity against PyTorch within the card's
tolerance, card stamped into each graph, atomic writes) into ``$FX_HOME/cache/onnx/<card>-<key>/``, where the key
covers everything that changes the graphs:

- the card as exported (its sidecar YAML, tiny arguments folded in);
- the weights: a hash of the built module's state dict, or of the weights file's bytes;
- the export options that shape the graph (opset, dynamic batch, fp16, simplification, parts, shape derivation);
- the torch version (its exporter writes the graph) and this cache's format version.

The export is written to a temporary folder beside the cache entry and renamed into place when every part has
passed, so a crash or a parity failure never leaves an entry that looks complete, and two processes exporting the
same key at once both end with one good entry. ``cached_predictors`` then opens each part through the session
factory, which refuses a silent CPU fall-back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from faceexpr_cli.console import log
from faceexpr_cli.errors import UsageError
from faceexpr_cli.onnx.export import (
    ExportOptions,
    ModelSource,
    ParityError,
    card_yaml,
    export_models,
    failure_line,
)
from faceexpr_cli.onnx.staging import FAILED_REPORT
from faceexpr_cli.safety import plain_name

CACHE_FORMAT = 1


def cache_root() -> Path:
    from faceexpr_cli.paths import fx_home

    return fx_home() / "cache" / "onnx"


def state_fingerprint(module: Any) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes, bytes), so the key follows the weights loaded."""
    import torch

    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():  # raw bytes, whatever the dtype (bfloat16 has no numpy type)
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_fingerprint(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(source: ModelSource, opts: ExportOptions) -> str:
    """The hex key of a source's graphs under ``opts``; it needs weights to key on (a module or a file)."""
    import torch

    if source.model is not None:
        weights = "state:" + state_fingerprint(source.model)
    elif source.weights is not None:
        weights = "file:" + file_fingerprint(source.weights)
    else:
        raise UsageError(f"card '{source.card.name}': a cached export needs the weights it is keyed by",
                         "pass ModelSource(model=...) or ModelSource(weights=...)")
    parts = {
        "format": CACHE_FORMAT, "torch": torch.__version__, "card": card_yaml(source.card, opts.tiny),
        "weights": weights, "opset": opts.opset, "dynamic_batch": opts.dynamic_batch, "fp16": opts.fp16,
        "simplify": opts.simplify, "optimize": opts.optimize, "batch": opts.batch, "parts": opts.parts,
        "derive_shapes": source.derive_shapes, "tiny": opts.tiny,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def is_complete(folder: Path) -> bool:
    """An entry whose report says every part passed and whose graph files are all there."""
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not report.get("ok") or not report.get("models"):
        return False
    for m in report["models"]:
        for p in m.get("parts", []):
            base = folder / m.get("folder", ".")
            files = [p.get("file")] + ([p["external_data"]] if p.get("external_data") else [])
            if not all(f and (base / f).is_file() for f in files):
                return False
    return True


def cached_export(source: ModelSource, opts: ExportOptions | None = None, root: str | Path | None = None) -> Path:
    """The export folder for ``source`` (graphs, ``card.yaml``, ``report.json``), exporting only on a cache miss.

    A part that fails its checks raises ``ParityError`` naming card, part, check and output; its report is kept
    as ``<entry>.failed.json`` beside the cache entry.
    """
    opts = opts or ExportOptions(latency_runs=1)
    root = Path(root) if root is not None else cache_root()
    source = replace(source, folder="")
    final = root / plain_name(f"{_slug(source.card.name)}-{cache_key(source, opts)}", "cache entry",
                              source=f"card '{source.card.name}'")
    if is_complete(final):
        log.debug("ONNX graphs of %s from the cache: %s", source.card.name, final)
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    try:
        log.info("exporting %s to ONNX once (checked against PyTorch, cached in %s)", source.card.name, final)
        report = export_models([source], tmp, opts, source_label=f"cache {final.name}", raise_on_failure=False)
        if not report["ok"]:
            failed = root / f"{final.name}.failed.json"
            shutil.copyfile(tmp / FAILED_REPORT, tmp / ".failed.json")
            os.replace(tmp / ".failed.json", failed)
            raise ParityError(failure_line(report), f"see {failed}")
        if final.exists() and not is_complete(final):
            shutil.rmtree(final, ignore_errors=True)  # a broken entry (files deleted by hand): replace it
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(final):  # not another process that finished the same export first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def cached_predictors(source: ModelSource, config: Any = None, opts: ExportOptions | None = None,
                      root: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """``{part: OnnxPredictor}`` for ``source``'s graphs (exported on a cache miss) on ``config``'s device.

    The device is checked before exporting, so ``cuda`` on a build without CUDA fails at once, not after the export.
    """
    from faceexpr_cli.onnx.predictor import load_predictors
    from faceexpr_cli.onnx.session import SessionConfig, ensure_available

    config = config or SessionConfig()
    ensure_available(config)
    folder = cached_export(source, opts, root)
    return load_predictors(folder, config), folder


def _slug(name: str) -> str:
    """A card name as the start of a cache folder name (card names may hold '@', '/', or start with '.')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip(".")[:60] or "model"
