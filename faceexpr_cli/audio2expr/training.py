"""`fx train audio2expr`: setup -> targets -> basis -> train -> save, linear like `fx train joint`'s runner.

It shares that runner's parts: the run directory and its lock, checkpoints (``train.checkpoint``: one safetensors
file per model with its card, ``trainer.pt``, ``latest``), exact resume (the batch of step k and the RNG are
drawn from (seed, k, rank)), the combined schedule (learning rate and loss weights), ``scalars.csv`` +
TensorBoard (``train.monitor``) and DDP under torchrun (``train.distributed``). What differs is the data: each
clip's targets are measured once and cached, the PCA basis is fitted on the training set before the first step
(``RUN/expression_basis.npz``, and inside the weights), and a step draws windows of consecutive frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceexpr_cli.audio2expr import shapes as S
from faceexpr_cli.audio2expr.clips import ClipTargets, load_clips
from faceexpr_cli.audio2expr.mel import MelSpec
from faceexpr_cli.console import log
from faceexpr_cli.errors import CheckpointError, ConfigError, UsageError
from faceexpr_cli.runlock import ensure_out_dir, output_lock
from faceexpr_cli.train import checkpoint as C
from faceexpr_cli.train import distributed as D

ROLE = "audio2expr"
BASIS_FILE = "expression_basis.npz"
NO_SUBJECTS = '{"subjects": []}'


@dataclass
class Audio2ExprResult:
    run_dir: Path
    steps: int
    checkpoint: Path | None
    clips: int
    rows: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Prepared:
    """A clip as the model sees it: mel windows, coefficient targets, raw offsets, blink, reference."""

    windows: np.ndarray  # (T, bands, window)
    coeffs: np.ndarray  # (T, K)
    offsets: np.ndarray  # (T, 68, 2)
    blink: np.ndarray  # (T,)
    reference: np.ndarray  # (K,)


def prepare(clip: ClipTargets, basis: S.ExpressionBasis, spec: MelSpec = MelSpec()) -> Prepared:
    offsets = clip.offsets
    coeffs = basis.project(offsets)
    return Prepared(clip.windows(spec), coeffs, offsets.astype(np.float32), clip.blink, coeffs[0])


def step_rng(seed: int, step: int, rank: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, step, rank]))


def draw_batch(clips: list[Prepared], frames: int, count: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    picks = rng.integers(0, len(clips), count)
    out: dict[str, list[np.ndarray]] = {"mel": [], "coeffs": [], "offsets": [], "blink": [], "reference": []}
    for i in picks:
        c = clips[int(i)]
        start = int(rng.integers(0, len(c.coeffs) - frames + 1))
        sl = slice(start, start + frames)
        out["mel"].append(c.windows[sl])
        out["coeffs"].append(c.coeffs[sl])
        out["offsets"].append(c.offsets[sl])
        out["blink"].append(c.blink[sl])
        out["reference"].append(c.reference)
    return {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}


def losses(model, batch: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    """expression (L1 or L2 on the coefficients), lip (L2 on the decoded mouth points, in normalised face units)
    and velocity (L1 on frame-to-frame change of the coefficients)."""
    pred, offsets = model(batch["mel"], batch["reference"], batch["blink"])
    target = batch["coeffs"]
    dist = torch.nn.functional.l1_loss if kind == "l1" else torch.nn.functional.mse_loss
    mouth = torch.as_tensor(S.MOUTH)
    return {
        "expression": dist(pred, target),
        "lip": torch.nn.functional.mse_loss(offsets[:, :, mouth], batch["offsets"][:, :, mouth]),
        "velocity": torch.nn.functional.l1_loss(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1]),
    }


def run(recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None) -> Audio2ExprResult:
    run_dir = ensure_out_dir(run_dir, "--out")
    info = D.setup(device or recipe.trainer.device)
    try:
        if not info.main:
            return _run(recipe, run_dir, info, resume)
        with output_lock(run_dir, "fx train audio2expr", "--out"):
            return _run(recipe, run_dir, info, resume)
    finally:
        D.teardown(info)


def _basis(run_dir: Path, clips: list[ClipTargets], dim: int, reuse: bool) -> S.ExpressionBasis:
    path = run_dir / BASIS_FILE
    if reuse and path.is_file():
        return S.ExpressionBasis.load(path)
    offsets = np.concatenate([c.offsets[c.found].reshape(int(c.found.sum()), -1) for c in clips])
    return S.ExpressionBasis.fit(offsets, dim)


def _run(recipe, run_dir: Path, info: D.DistInfo, resume: bool) -> Audio2ExprResult:
    from faceexpr_cli.config.recipes import dump_recipe
    from faceexpr_cli.train.monitor import Monitor
    from faceexpr_cli.train.schedule import CombinedSchedule
    from faceexpr_cli.train.tasks import build, model_args

    t, data = recipe.trainer, recipe.data
    if resume:
        ckpt, state = C.pick_resume(run_dir, (ROLE,))
    else:
        ckpt, state = None, None
        if C.latest_checkpoint(run_dir) is not None:
            raise UsageError(f"{run_dir} already holds a run", "pass --resume to continue it, or choose another --out")
    if t.threads:
        torch.set_num_threads(t.threads)
    if data.path is None and data.features is None:
        raise ConfigError("the recipe has no data.path", "add data.path=CLIPS (an fx crop / fx clip output) or "
                                                         "data.features=DIR (fx extract-feats --features landmarks)")
    if data.features is not None:
        from faceexpr_cli.audio2expr.clips import clips_from_features

        clips = clips_from_features(data.features, min_frames=data.frames)
    else:
        cache = Path(data.cache) if data.cache else run_dir / "targets"
        if info.main:  # rank 0 measures and caches; the other ranks then read the cache
            clips = load_clips(data.path, cache, face_backend=data.face_backend, detect_every=data.detect_every,
                               min_frames=data.frames)
        D.barrier(info)
        if not info.main:
            clips = load_clips(data.path, cache, face_backend=data.face_backend, detect_every=data.detect_every,
                               min_frames=data.frames)
    card, args = model_args(recipe.model, {})
    torch.manual_seed(t.seed)
    model = build(card, args)
    basis = _basis(run_dir, clips, model.expression_dim, reuse=ckpt is not None)
    model.set_basis(basis.mean, basis.components)
    resolved = C.resolved_card(card, args)
    if recipe.model.init and ckpt is None:
        C.load_model(C.resolve_model_file(recipe.model.init, ROLE), model, resolved, ROLE)
        model.set_basis(basis.mean, basis.components)  # this run's basis, not the initial run's
    prepared = [prepare(c, basis) for c in clips]
    log.info("audio2expr: %d clip(s), %d frames, basis %d components (%.1f%% of the variance in the first)",
             len(clips), sum(len(c) for c in clips), basis.dim,
             100 * float(basis.variance[0] / max(basis.variance.sum(), 1e-12)))
    schedule = CombinedSchedule.from_spec(recipe.schedule, t.max_steps)
    model.to(info.device)
    opt = torch.optim.AdamW(model.parameters(), lr=schedule.lr_at(0), weight_decay=t.weight_decay)
    start = 0
    if ckpt is not None:
        C.load_model(ckpt / f"{ROLE}.safetensors", model, resolved, ROLE)
        try:
            opt.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            start = int(state["step"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{ckpt / 'trainer.pt'} does not fit this run ({C.short_error(exc)})",
                                  "resume with the run's own recipe (leave out --recipe)") from None
        log.info("resuming %s at step %d", ckpt, start)
    step_model = model
    if info.active:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    recipe_text = dump_recipe(recipe)
    if info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(recipe_text)
        basis.save(run_dir / BASIS_FILE)
    monitor = Monitor(run_dir, info.main, t.tensorboard, t.max_steps, start)
    result = Audio2ExprResult(run_dir, start, ckpt, len(clips), monitor.rows)
    try:
        for k in range(start, t.max_steps):
            step = k + 1
            rng = step_rng(t.seed, k, info.rank)
            torch.manual_seed(int(rng.integers(2**31)))
            lr, weights = schedule.apply(opt, k)
            batch = {n: v.to(info.device) for n, v in draw_batch(prepared, data.frames, data.batch_clips, rng).items()}
            model.train()
            parts = losses(step_model, batch, recipe.loss.kind)
            total = sum(weights.get(n, 1.0) * v for n, v in parts.items())
            value = float(total.detach())
            if D.any_flag(info, not math.isfinite(value)):
                from faceexpr_cli.train.runner import TrainingDivergedError

                raise TrainingDivergedError(step, result.checkpoint)
            opt.zero_grad(set_to_none=True)
            total.backward()
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            opt.step()
            monitor.count_frames(data.batch_clips * data.frames * info.world)
            if step % t.log_every == 0 or step in (start + 1, t.max_steps):
                monitor.log(step, {"loss": value, "lr": lr, **{f"loss_{n}": float(v.detach()) for n, v in parts.items()}})
            else:
                monitor.advance(step)
            result.steps = step
            if (t.save_every and step % t.save_every == 0) or step == t.max_steps:
                if info.main:
                    state = {"optimizer": opt.state_dict(), "schedule": schedule.state_dict(), "step": step,
                             "rng": C.rng_state()}
                    result.checkpoint = C.save_checkpoint(run_dir, step, {ROLE: (model, resolved)}, state, recipe_text,
                                                          NO_SUBJECTS, t.keep_checkpoints,
                                                          {"kind": recipe.kind, "loss": value, "clips": len(clips)})
                D.barrier(info)
    finally:
        monitor.close()
    return result


def run_summary(result: Audio2ExprResult) -> dict[str, Any]:
    rows = result.rows
    return {"run": str(result.run_dir), "steps": result.steps, "checkpoint": str(result.checkpoint),
            "clips": result.clips, "first": rows[0] if rows else {}, "last": rows[-1] if rows else {}}
