"""`fx train videomae`: self-supervised pretraining on unlabelled face clips, linear like every fx run.

::

    RUN/recipe.yaml  scalars.csv  tb/
    RUN/checkpoints/step_N/pretrainer.safetensors (+ .card.yaml), trainer.pt, recipe.yaml, meta.json

Each step: ``batch_clips`` clips (frames ``stride`` apart from a random start, a random crop and flip), a tube
mask per clip (``mask_ratio`` of the patches hidden in every time step), the encoder on the visible tokens, the
decoder's appearance and motion predictions on the hidden ones, MSE. Batches, masks and dropout follow from
(seed, step), so a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from faceexpr_cli.config.recipes import dump_recipe
from faceexpr_cli.console import log
from faceexpr_cli.dfer.annotations import VIDEO_SUFFIXES, Annotations, Entry, read_annotations
from faceexpr_cli.dfer.clips import ClipReader, shard_clips
from faceexpr_cli.dfer.finetune import NO_SUBJECTS, Batches, FinetuneResult, cosine_lr
from faceexpr_cli.dfer.sampling import Sampling
from faceexpr_cli.errors import CheckpointError, ConfigError, DataError, UsageError
from faceexpr_cli.runlock import ensure_out_dir, output_lock
from faceexpr_cli.train import checkpoint as C
from faceexpr_cli.train.monitor import Monitor
from faceexpr_cli.train.runner import TrainingDivergedError, _precision, _step_seed

ROLE = "pretrainer"


def unlabelled_clips(path: str | Path) -> Annotations:
    """An ``fx clip`` dataset folder (its shards), a folder of videos (e.g. ``fx crop`` output), or an annotation
    file."""
    path = Path(path)
    if path.is_file():
        return read_annotations(path, [str(i) for i in range(100_000)])  # MAE-DFER pretraining labels are dummies
    if not path.is_dir():
        raise ConfigError(f"data.path {path} does not exist", "a folder of face clips or an annotation file")
    clips = shard_clips(path)  # an `fx clip` dataset: its shards' samples
    if not clips:  # else every video under it (an `fx crop` folder, a folder of mp4s)
        clips = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise DataError(f"{path}: no videos ({', '.join(VIDEO_SUFFIXES)}) and no fx clip shards inside")
    return Annotations(path, "folder", [Entry(p, 0, i + 1) for i, p in enumerate(clips)])


def run(recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None) -> FinetuneResult:
    run_dir = ensure_out_dir(run_dir, "--out")
    with output_lock(run_dir, "fx train videomae", "--out"):
        return _run(recipe, run_dir, resume, device)


def _run(recipe, run_dir: Path, resume: bool, device_spec: str | None) -> FinetuneResult:
    from faceexpr_cli.builders import BUILDERS
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.devices import check_device
    from faceexpr_cli.nn.videomae_mae import mae_loss, tube_mask

    t, d, o = recipe.trainer, recipe.data, recipe.optim
    if resume:
        ckpt, state = C.pick_resume(run_dir, (ROLE,))
    elif C.latest_checkpoint(run_dir) is not None:
        raise UsageError(f"{run_dir} already holds a run", "pass --resume to continue it, or choose another --out")
    else:
        ckpt, state = None, None
    if not d.path:
        raise ConfigError("the recipe has no data.path", "add data.path=CLIPS (a folder of face clips)")
    clips = unlabelled_clips(d.path)
    if t.threads:
        torch.set_num_threads(t.threads)
    device = torch.device(check_device(device_spec or t.device))
    base = load_card(recipe.model.card)
    args = base.arguments(tiny=recipe.model.tiny) | dict(recipe.model.args)
    args |= {"image_size": d.size, "frames": d.frames, "decoder_dim": recipe.decoder.dim,
             "decoder_depth": recipe.decoder.depth, "decoder_heads": recipe.decoder.heads}
    card = C.resolved_card(base, args)
    torch.manual_seed(t.seed)
    model = BUILDERS.get(base.builder)(**args)
    if recipe.model.init and ckpt is None:
        from faceexpr_cli.builders.videomae import load_videomae_weights

        load_videomae_weights(model.encoder, recipe.model.init)
    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "mask_token" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 or "mask_token" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=o.lr, betas=tuple(o.betas))
    start = 0
    if ckpt is not None:
        C.load_model(ckpt / f"{ROLE}.safetensors", model, card, ROLE)
        try:
            opt.load_state_dict(state["optimizer"])
            start = int(state["step"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{ckpt / 'trainer.pt'} does not fit this run ({C.short_error(exc)})") from None
        log.info("resuming %s at step %d", ckpt, start)
    amp = _precision(t.precision, device)
    reader = ClipReader(d.size, d.cache_clips)
    sampling = Sampling(d.size, d.frames, d.stride, min_scale=0.8, flip=True)
    batches = Batches(clips, reader, sampling, d.batch_clips, t.seed, False, 1, d.workers)
    recipe_text = dump_recipe(recipe)
    (run_dir / "recipe.yaml").write_text(recipe_text)
    monitor = Monitor(run_dir, True, t.tensorboard, t.max_steps, start)
    result = FinetuneResult(run_dir, start, ckpt, rows=monitor.rows)
    grid = model.encoder.grid
    last_good = ckpt
    try:
        for k in range(start, t.max_steps):
            step = k + 1
            torch.manual_seed(_step_seed(t.seed, k, 0))
            lr = cosine_lr(k, o.lr, o.min_lr, o.warmup_steps, t.max_steps)
            for g in opt.param_groups:
                g["lr"] = lr
            video, _, _, _ = batches.get(k)
            video = video.to(device)
            gen = torch.Generator().manual_seed(_step_seed(t.seed, k, 1))
            hidden = tube_mask(video.shape[0], grid, recipe.mask_ratio, gen, device)
            model.train()
            with torch.autocast(device.type, dtype=amp) if amp else torch.autocast("cpu", enabled=False):
                total, parts = mae_loss(model, video, hidden, recipe.motion_weight)
            value = float(total.detach())
            if not math.isfinite(value):
                raise TrainingDivergedError(step, last_good)
            opt.zero_grad(set_to_none=True)
            total.backward()
            if o.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
            opt.step()
            monitor.count_frames(video.shape[0] * video.shape[1])
            if step % t.log_every == 0 or step in (start + 1, t.max_steps):
                monitor.log(step, {"loss": value, "lr": lr,
                                   **{f"loss_{n}": float(v.detach()) for n, v in parts.items()}})
            else:
                monitor.advance(step)
            result.steps = step
            if (t.save_every and step % t.save_every == 0) or step == t.max_steps:
                trainer_state = {"optimizer": opt.state_dict(), "step": step, "rng": C.rng_state(),
                                 "schedule": {"step": step}}
                last_good = C.save_checkpoint(run_dir, step, {ROLE: (model, card)}, trainer_state, recipe_text,
                                              NO_SUBJECTS, t.keep_checkpoints, {"kind": recipe.kind, "loss": value})
                result.checkpoint = last_good
    finally:
        monitor.close()
        batches.close()
    result.final = {"loss": float(np.mean([r["loss"] for r in monitor.rows[-3:]])) if monitor.rows else None}
    return result
