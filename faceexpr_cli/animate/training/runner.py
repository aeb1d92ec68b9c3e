"""`fx train animator`: set up, train, save, clean up - in that order, nothing hidden.

Checkpoints are the original's layout (``<epoch:08d>-checkpoint.pth.tar`` holding kp_detector, generator,
discriminator, the three Adam states and the epoch) plus our ``card``, so the original demo loads them and ``fx
animate --engine fomm --checkpoint`` does too. DDP under torchrun (gloo on CPU, NCCL on GPUs, BatchNorm synced on
GPUs); rank 0 alone logs and writes.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceexpr_cli.animate.checkpoints import load_fomm_checkpoint, save_fomm_checkpoint
from faceexpr_cli.animate.training.data import PairDataset, find_videos
from faceexpr_cli.animate.training.losses import DiscriminatorLoss, GeneratorLoss
from faceexpr_cli.console import log
from faceexpr_cli.errors import CheckpointError, DataError
from faceexpr_cli.runlock import ensure_out_dir, output_lock
from faceexpr_cli.train.checkpoint import short_error

CKPT_GLOB = "*-checkpoint.pth.tar"


def _vgg(cfg) -> torch.nn.Module | None:
    if not sum(cfg.train.loss_weights.perceptual):
        return None
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.weights import find_weights

    vgg = build_model("vgg19-imagenet").eval()
    if cfg.train.vgg.random_init:
        log.warning("VGG19 with random weights (train.vgg.random_init): for tests and smoke runs only")
        return vgg
    path = find_weights("vgg19-imagenet", explicit=cfg.train.vgg.weights)
    hint = "pass torchvision's vgg19-dcbb9e9d.pth as train.vgg.weights, or run `fx download weights vgg19-imagenet`"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged, foreign or pickled-object file: torch raises many kinds
        raise CheckpointError(f"VGG19 weights {path} are unreadable ({short_error(exc)})", hint) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"VGG19 weights {path} hold a {type(state).__name__}, not a state dict", hint)
    try:
        vgg.load_imagenet(state)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"VGG19 weights {path} do not fit VGG19 ({short_error(exc)})", hint) from None
    return vgg


def _sample_data(run_dir: Path) -> Path:
    """Two sample talking heads (two identities), square with a large face, built once per run folder."""
    from faceexpr_cli.samples import make_talking_head

    folder = run_dir / "sample-data"
    for i, name in enumerate(("astronaut", "grace_hopper")):
        path = folder / f"{name}.mp4"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            make_talking_head(path, portraits=(name,), seconds=2.0, width=128, height=128, face_fraction=0.55,
                              seed=i, audio=False)
    return folder


def _dataset(cfg, run_dir: Path) -> PairDataset:
    d = cfg.data
    if not d.path:
        raise DataError("the recipe has no data.path", "add data.path=FOLDER (or data.path=sample)")
    root = _sample_data(run_dir) if d.path == "sample" else Path(d.path)
    items = find_videos(root, d.id_from)
    log.info("animator data: %d videos, %d identities", len(items), len({i.identity for i in items}))
    return PairDataset(items, d.frame_size, id_sampling=d.id_sampling, repeats=d.num_repeats, cache=d.cache_frames,
                       max_frames=d.max_frames, augmentation=d.augmentation, seed=cfg.train.seed)


def _latest(run_dir: Path) -> tuple[Path | None, dict[str, Any] | None]:
    """The newest checkpoint that reads, and its contents; an unreadable newest one falls back to the one before
    it with a warning naming both, and when none reads, one CheckpointError names the newest."""
    from faceexpr_cli.animate.checkpoints import read_checkpoint

    found = sorted(run_dir.glob(CKPT_GLOB))[::-1]
    failed: list[tuple[Path, CheckpointError]] = []
    for path in found:
        try:
            data = read_checkpoint(path)
        except CheckpointError as exc:
            failed.append((path, exc))
            continue
        for bad, exc in failed:
            log.warning("checkpoint %s is unreadable (%s); resuming from the previous one, %s",
                        bad.name, exc.one_line(), path.name)
        return path, data
    if failed:
        more = f"; the {len(failed) - 1} older checkpoint(s) are unreadable too" if len(failed) > 1 else ""
        raise CheckpointError(f"cannot resume {run_dir}: {failed[0][1].message}{more}",
                              "restore the checkpoint from a copy, or start a new run (model.init=... seeds it)")
    return None, None


def train(cfg, run_dir: str | Path, resume: bool = False, device: str | None = None) -> dict[str, Any] | None:
    from faceexpr_cli.train import distributed as dist

    run_dir = ensure_out_dir(run_dir, "--out")  # every rank: a file in the way is a usage error, before any work
    info = dist.setup(device or cfg.train.device)
    if not info.main:
        return _train(cfg, run_dir, resume, info)
    with output_lock(run_dir, "fx train animator", "--out"):  # rank 0 holds the run folder
        return _train(cfg, run_dir, resume, info)


def _train(cfg, run_dir: Path, resume: bool, info) -> dict[str, Any] | None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.builders.fomm import card_for_config
    from faceexpr_cli.config.recipes import dump_recipe
    from faceexpr_cli.train import distributed as dist
    from faceexpr_cli.train.monitor import Monitor

    t = cfg.train
    torch.manual_seed(t.seed + info.rank)
    random.seed(t.seed + info.rank)
    np.random.seed(t.seed + info.rank)

    # -- set up ----------------------------------------------------------------------------------------------
    card = card_for_config(cfg.model.config, base=cfg.model.card)
    # The card this run trains: the tiny arguments (if asked) become its preset, so the checkpoint's card
    # rebuilds exactly this model.
    args = card.arguments(tiny=cfg.model.tiny)
    args.pop("with_discriminator", None)
    card = card.model_copy(update={"preset": args, "tiny": {}})
    model = build_model(card, with_discriminator=True)
    if cfg.model.init:
        load_fomm_checkpoint(model, cfg.model.init, card.name)
    if info.active and info.device.type == "cuda":
        for name in ("kp_detector", "generator"):
            setattr(model, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(getattr(model, name)))
    model.to(info.device).train()
    vgg = _vgg(cfg)
    if vgg is not None:
        vgg.to(info.device)
    opt = {
        "generator": torch.optim.Adam(model.generator.parameters(), lr=t.lr_generator, betas=tuple(t.betas)),
        "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=t.lr_discriminator,
                                          betas=tuple(t.betas)),
        "kp_detector": torch.optim.Adam(model.kp_detector.parameters(), lr=t.lr_kp_detector, betas=tuple(t.betas)),
    }
    start_epoch, step = 0, 0
    latest, data = _latest(run_dir) if resume else (None, None)
    if latest is not None:
        load_fomm_checkpoint(model, latest, card.name, parts=("kp_detector", "generator", "discriminator"),
                             data=data)
        for name, o in opt.items():
            if f"optimizer_{name}" in data:
                o.load_state_dict(data[f"optimizer_{name}"])
        start_epoch, step = int(data["epoch"]) + 1, int(data.get("step", 0))
        log.info("resumed from %s (epoch %d, step %d)", latest.name, start_epoch, step)
    scheds = {n: torch.optim.lr_scheduler.MultiStepLR(o, t.epoch_milestones, gamma=0.1) for n, o in opt.items()}
    with warnings.catch_warnings():  # fast-forwarding the schedule on resume, before any optimizer step
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(start_epoch):
            for s in scheds.values():
                s.step()

    if cfg.data.path == "sample" and info.main:
        _sample_data(run_dir)  # built once, by rank 0, before any rank lists the files
    dist.barrier(info)
    dataset = _dataset(cfg, run_dir)
    sampler = torch.utils.data.DistributedSampler(dataset, info.world, info.rank, seed=t.seed) if info.active \
        else None
    gen_loss = GeneratorLoss(model, vgg, t).to(info.device)
    disc_loss = DiscriminatorLoss(model, t).to(info.device)
    gen_step, disc_step = gen_loss, disc_loss
    if info.active:
        ids = [info.device.index] if info.device.type == "cuda" else None
        gen_step = DDP(gen_loss, device_ids=ids, find_unused_parameters=True)
        disc_step = DDP(disc_loss, device_ids=ids)
    use_gan = bool(t.loss_weights.generator_gan)
    steps_per_epoch = max(1, len(dataset) // (t.batch_size * info.world))
    total = min(t.max_steps or 10**12, t.num_epochs * steps_per_epoch)
    if info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(dump_recipe(cfg))
        (run_dir / "card.yaml").write_text(__import__("yaml").safe_dump(card.model_dump(mode="json"), sort_keys=False))
    monitor = Monitor(run_dir, info.main, t.tensorboard, total, step)

    # -- train -----------------------------------------------------------------------------------------------
    checkpoint: Path | None = latest
    epoch = start_epoch - 1
    window: list[dict[str, float]] = []
    try:
        for epoch in range(start_epoch, t.num_epochs):
            if step >= total:
                break
            dataset.set_epoch(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(dataset, batch_size=t.batch_size, shuffle=sampler is None,
                                                 sampler=sampler, num_workers=cfg.data.workers, drop_last=True)
            for batch in loader:
                source = batch["source"].to(info.device, non_blocking=True)
                driving = batch["driving"].to(info.device, non_blocking=True)
                model.discriminator.requires_grad_(False)
                losses, generated = gen_step(source, driving)
                model.discriminator.requires_grad_(True)
                sum(losses.values()).backward()
                opt["generator"].step()
                opt["kp_detector"].step()
                opt["generator"].zero_grad(set_to_none=True)
                opt["kp_detector"].zero_grad(set_to_none=True)
                if use_gan:
                    opt["discriminator"].zero_grad(set_to_none=True)
                    d = disc_step(driving, generated["prediction"], generated["kp_driving"])
                    sum(d.values()).backward()
                    opt["discriminator"].step()
                    opt["discriminator"].zero_grad(set_to_none=True)
                    losses.update(d)
                step += 1
                monitor.count_frames(source.shape[0] * info.world)
                window.append({f"loss_{k}": float(v.detach()) for k, v in losses.items()})
                if step % t.log_every == 0 or step == total:
                    row = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                    row["loss_total"] = sum(v for k, v in row.items() if k != "loss_disc_gan")
                    row["lr"] = opt["generator"].param_groups[0]["lr"]
                    monitor.log(step, row)
                    window = []
                else:
                    monitor.advance(step)
                if step >= total:
                    break
            for s in scheds.values():
                s.step()
            if info.main and ((epoch + 1) % t.checkpoint_freq == 0 or step >= total or epoch == t.num_epochs - 1):
                checkpoint = _save(run_dir, model, epoch, step, opt, card)
            dist.barrier(info)
    finally:
        monitor.close()
        dist.teardown(info)

    # -- report ----------------------------------------------------------------------------------------------
    if not info.main:
        return None
    rows = monitor.rows
    keys = [k for k in (rows[0] if rows else {}) if k.startswith("loss_")]
    return {"run": str(run_dir), "steps": step, "epochs": epoch + 1, "checkpoint": str(checkpoint),
            "first": {k: rows[0][k] for k in keys}, "last": {k: rows[-1][k] for k in keys}}


def _save(run_dir: Path, model, epoch: int, step: int, opt: dict, card) -> Path:
    # SyncBatchNorm (DDP on GPUs) keeps BatchNorm's state_dict keys, so the file stays in the original layout.
    path = run_dir / f"{epoch:08d}-checkpoint.pth.tar"
    return save_fomm_checkpoint(path, model, epoch, opt, card=card.model_dump(mode="json"), extra={"step": step})
