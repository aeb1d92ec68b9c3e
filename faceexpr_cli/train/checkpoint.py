"""Run directories and checkpoints.

::

    RUN/recipe.yaml  subjects.json  scalars.csv  tb/  eval/
    RUN/checkpoints/step_000200/
        expression.safetensors  expression.card.yaml     one file per model; the card (with the actual
        reconstruction.safetensors  reconstruction.card.yaml   builder arguments as preset) is also in the
                                                         safetensors metadata, so a lone file knows its model
        tokenizer.safetensors   (only for a random-init tokenizer; published weights are referenced)
        trainer.pt              optimizer, schedule, step, RNG states (and the fp16 grad scaler)
        recipe.yaml  subjects.json  meta.json
    RUN/checkpoints/latest      the name of the newest complete checkpoint

A checkpoint directory is written under a temporary name and renamed when complete. Each model file can be
loaded alone into another run (``init: path``): its card must name the same model as the run's card.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from faceexpr_cli.config.cards import ModelCard, card_from_dict
from faceexpr_cli.console import log
from faceexpr_cli.errors import CheckpointError, MissingFileError
from faceexpr_cli.safety import is_plain_name

CKPT_DIR = "checkpoints"


def resolved_card(card: ModelCard, args: dict[str, Any]) -> ModelCard:
    """The card as this run built it: preset = the actual builder arguments."""
    return card.model_copy(update={"preset": dict(args), "tiny": {}})


def card_yaml(card: ModelCard) -> str:
    return yaml.safe_dump(card.model_dump(mode="json", exclude_none=True), sort_keys=False)


def save_model(path: Path, module: torch.nn.Module, card: ModelCard, role: str, step: int) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    meta = {"fx_card": json.dumps(card.model_dump(mode="json")), "fx_role": role, "fx_step": str(step)}
    save_file(state, str(path), metadata=meta)
    path.with_name(f"{role}.card.yaml").write_text(card_yaml(card))


def read_model_file(path: Path) -> tuple[dict[str, torch.Tensor], ModelCard | None, str | None]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    card = card_from_dict(json.loads(meta["fx_card"]), str(path)) if "fx_card" in meta else None
    return state, card, meta.get("fx_role")


def load_model(path: str | Path, module: torch.nn.Module, card: ModelCard, role: str) -> None:
    """Load one model file into ``module``; a file made for another card or other sizes is refused by name."""
    path = Path(path)
    state, found, found_role = read_model_file(path)
    if found is not None and (found.name != card.name or found.builder != card.builder):
        raise CheckpointError(
            f"{path} holds a '{found_role or found.builder}' model of card '{found.name}', but this run's {role} "
            f"model uses card '{card.name}'", f"pass a {card.name} checkpoint for {role}")
    if found is not None:
        diff = {k: (found.preset.get(k), v) for k, v in card.preset.items() if found.preset.get(k, v) != v}
        if diff:
            detail = ", ".join(f"{k} {a} vs {b}" for k, (a, b) in list(diff.items())[:3])
            raise CheckpointError(f"{path}: card '{found.name}' was built with other arguments than this run's "
                                  f"{role} model ({detail})", "use the same model args as the checkpoint")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0:2]
        raise CheckpointError(f"{path} does not fit the {role} model ({' '.join(first)[:200]})") from exc


def checkpoint_root(run_dir: Path) -> Path:
    return Path(run_dir) / CKPT_DIR


def short_error(exc: BaseException) -> str:
    """The first line of an exception's text, cut short: library errors can run to a page."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _complete(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("step_*") if p.is_dir() and (p / "meta.json").exists())


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    root = checkpoint_root(Path(run_dir))
    pointer = root / "latest"
    if pointer.is_file():
        name = pointer.read_bytes()[:256].decode("utf-8", "replace").strip()
        if is_plain_name(name) and (root / name).is_dir():
            return root / name
    done = _complete(root)
    return done[-1] if done else None


def resume_candidates(run_dir: str | Path) -> list[Path]:
    """The run's complete checkpoints, newest first (the one ``latest`` names leads)."""
    done = _complete(checkpoint_root(Path(run_dir)))[::-1]
    latest = latest_checkpoint(run_dir)
    if latest is not None:
        done = [latest, *(p for p in done if p != latest)]
    return done


def check_resumable(ckpt: Path, roles: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The trainer state of ``ckpt`` once its model files, subject table and trainer.pt all read; else
    CheckpointError saying which file is unreadable."""
    from safetensors import safe_open

    state = load_trainer_state(ckpt)
    for role in roles:
        path = ckpt / f"{role}.safetensors"
        if not path.is_file():
            raise CheckpointError(f"{path} is missing")
        try:
            with safe_open(str(path), framework="pt") as f:
                f.metadata()
        except Exception as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file ({short_error(exc)})") from None
    try:
        json.loads((ckpt / "subjects.json").read_text(encoding="utf-8"))["subjects"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{ckpt / 'subjects.json'} is unreadable ({short_error(exc)})") from None
    return state


def pick_resume(run_dir: str | Path, roles: tuple[str, ...] | list[str]) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of ``run_dir`` that reads, and its trainer state.

    An unreadable newest checkpoint (a crash while copying, a full disk, a damaged file) falls back to the one
    before it with a warning naming both; when none reads, one CheckpointError names the newest and why."""
    found = resume_candidates(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir}: nothing to resume (no checkpoint inside)", "drop --resume to start a run")
    failed: list[tuple[Path, CheckpointError]] = []
    for ckpt in found:
        try:
            state = check_resumable(ckpt, roles)
        except CheckpointError as exc:
            failed.append((ckpt, exc))
            continue
        for bad, exc in failed:
            log.warning("checkpoint %s is unreadable (%s); resuming from the previous one, %s",
                        bad.name, exc.one_line(), ckpt.name)
        return ckpt, state
    exc, more = failed[0][1], len(failed) - 1
    older = f"; the {more} older checkpoint(s) are unreadable too" if more else ""
    raise CheckpointError(f"cannot resume {run_dir}: {exc.message}{older}",
                          "restore the checkpoint from a copy, or start a new run (model weights can seed it "
                          "with expression.init=...)")


def resolve_model_file(spec: str | Path, role: str) -> Path:
    """A run dir, a checkpoint dir or a ``.safetensors`` file -> the model file for ``role``."""
    path = Path(spec)
    if not path.exists():
        raise MissingFileError(path, f"{role} checkpoint")
    if path.is_file():
        return path
    ckpt = path if (path / "meta.json").exists() else latest_checkpoint(path)
    if ckpt is None:
        raise CheckpointError(f"{path}: no checkpoint inside", "pass a run directory made by `fx train`")
    file = ckpt / f"{role}.safetensors"
    if not file.exists():
        have = sorted(p.stem for p in ckpt.glob("*.safetensors"))
        raise CheckpointError(f"{ckpt} has no {role} model (it has: {', '.join(have) or 'none'})")
    return file


def save_checkpoint(run_dir: Path, step: int, models: dict[str, tuple[torch.nn.Module, ModelCard]],
                    trainer_state: dict[str, Any], recipe_text: str, subjects_json: str, keep: int,
                    extra: dict[str, Any] | None = None) -> Path:
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".step_{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for role, (module, card) in models.items():
        save_model(tmp / f"{role}.safetensors", module, card, role, step)
    torch.save(trainer_state, tmp / "trainer.pt")
    (tmp / "recipe.yaml").write_text(recipe_text)
    (tmp / "subjects.json").write_text(subjects_json)
    meta = {"step": step, "models": {r: c.name for r, (_, c) in models.items()}, "time": time.time(), **(extra or {})}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    (root / ".latest.tmp").write_text(final.name)
    (root / ".latest.tmp").replace(root / "latest")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_trainer_state(ckpt: Path) -> dict[str, Any]:
    path = ckpt / "trainer.pt"
    if not path.exists():
        raise CheckpointError(f"{ckpt}: trainer.pt is missing, cannot resume", "start a new run with init: instead")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a damaged file
        raise CheckpointError(f"{path} is unreadable ({short_error(exc)})") from None
    missing = [k for k in ("optimizer", "schedule", "step") if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path} is not an fx trainer state (no {', '.join(missing)})")
    return state


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
