"""LivePortrait checkpoints as released: find the five files in a folder and load them strictly into the model.

``--checkpoint`` takes the release's ``liveportrait/`` folder (``base_models/*.pth`` and
``retargeting_models/stitching_retargeting_module.pth``) or a flat folder holding the same file names. Every file is
read with ``weights_only=True``; a DDP ``module.`` prefix (as the original loader strips) is removed; anything else
that does not fit is one line naming the file and the mismatching keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceexpr_cli.errors import CheckpointError, MissingFileError

BASE_FILES = ("appearance_feature_extractor.pth", "motion_extractor.pth", "warping_module.pth",
              "spade_generator.pth")
RETARGETING_FILE = "stitching_retargeting_module.pth"


def release_files(folder: str | Path) -> dict[str, Path]:
    """File name -> path for the five released files under ``folder`` (release layout or flat)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise MissingFileError(folder, "LivePortrait checkpoint folder",
                               "pass the release's liveportrait/ folder or a folder with its five .pth files")
    found: dict[str, Path] = {}
    for name in (*BASE_FILES, RETARGETING_FILE):
        sub = "retargeting_models" if name == RETARGETING_FILE else "base_models"
        for cand in (folder / sub / name, folder / name, folder / "liveportrait" / sub / name):
            if cand.is_file():
                found[name] = cand
                break
    missing = [n for n in BASE_FILES if n not in found]
    if missing:
        raise MissingFileError(folder / missing[0], "LivePortrait weights",
                               f"{folder} lacks {', '.join(missing)} (looked in base_models/ and the folder itself)")
    return found


def read_state(path: Path) -> dict[str, Any]:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot be read as a torch state dict ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160] if str(exc) else ''})",
                              "pass the released LivePortrait .pth files") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: holds a {type(data).__name__}, not a state dict")
    return data


def _strip_ddp(state: dict[str, Any]) -> dict[str, Any]:
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def load_strict(module, state: dict[str, Any], where: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error: missing, unexpected and mis-shaped keys."""
    import torch

    state = _strip_ddp(state)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
            if keys:
                more = f" (+{len(keys) - 4} more)" if len(keys) > 4 else ""
                parts.append(f"{label}: {', '.join(keys[:4])}{more}")
        raise CheckpointError(f"{where} does not fit the model: {'; '.join(parts)}",
                              "check --config / the card preset against the file (e.g. the release preset needs "
                              "the released files)")
    module.load_state_dict(state, strict=True)


def load_liveportrait(model, folder: str | Path) -> dict[str, str]:
    """Load every part of ``model`` (an ``nn.liveportrait.LivePortrait``) from ``folder``; returns file -> path.
    Without the retargeting file the model keeps stitching and retargeting off (the caller is told)."""
    from faceexpr_cli.nn.liveportrait import PARTS, RETARGETING

    files = release_files(folder)
    for part, stem in PARTS.items():
        path = files[f"{stem}.pth"]
        load_strict(getattr(model, part), read_state(path), str(path))
    if RETARGETING_FILE in files and model.has_retargeting:
        path = files[RETARGETING_FILE]
        data = read_state(path)
        absent = [k for k in RETARGETING.values() if k not in data]
        if absent:
            raise CheckpointError(f"{path}: lacks {', '.join(absent)} (has {', '.join(map(str, data))})",
                                  "pass the released stitching_retargeting_module.pth")
        for attr, key in RETARGETING.items():
            load_strict(getattr(model, attr).net, data[key], f"{path}[{key}]")
    elif model.has_retargeting:
        model.has_retargeting = False
    return {k: str(v) for k, v in files.items()}


PIN = ".fx-first-sha256"  # next to a cached file: its sha256 when fx first used it


def pin_first_use(paths: list[Path]) -> None:
    """Upstream publishes no sha256 for these files: record each cached file's digest the first time it is used and
    refuse it afterwards if it changed (a damaged or swapped file), with the way to fetch it again."""
    import hashlib

    from faceexpr_cli.errors import WeightsNotFoundError
    from faceexpr_cli.weights import stamp_verified, verified

    for path in paths:
        pin = path.with_name(path.name + PIN)
        if pin.is_file():
            if not verified(path, pin.read_text().strip()):
                raise WeightsNotFoundError(f"cached weights {path} changed since their first use (sha256 differs)",
                                           "run `fx download weights liveportrait --force` to fetch them again")
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(4 << 20):
                digest.update(block)
        try:
            pin.write_text(digest.hexdigest())
            stamp_verified(path, digest.hexdigest())
        except OSError:  # a read-only cache: nothing to pin
            pass
