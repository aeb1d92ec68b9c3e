"""The fine-tuning run, linear: setup -> train -> evaluate -> save -> cleanup.

::

    RUN/recipe.yaml  labels.json  scalars.csv  tb/
    RUN/checkpoints/step_N/   classifier.safetensors (+ .card.yaml), trainer.pt, recipe.yaml, meta.json
    RUN/best/                 the checkpoint with the best test WAR (or UAR), with its metrics.json
    RUN/eval/step_N.json      every evaluation; RUN/metrics.json, confusion.png, predictions.csv: the final one

Run directories, checkpoints, the progress line, ``scalars.csv`` and TensorBoard are those of ``fx train joint``
(``faceexpr_cli.train``). Exact resume: the batch of step k is drawn from (seed, k), dropout is re-seeded per step,
the learning rate is a pure function of the step.
"""

from __future__ import annotations

import json
import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceexpr_cli.config.recipes import dump_recipe
from faceexpr_cli.console import log
from faceexpr_cli.dfer import losses as L
from faceexpr_cli.dfer.annotations import read_annotations
from faceexpr_cli.dfer.clips import ClipReader
from faceexpr_cli.dfer.evaluate import evaluate, torch_runner, write_report
from faceexpr_cli.dfer.labels import load_label_map, write_label_map
from faceexpr_cli.dfer.models import ROLE, build, classifier_card, init_from
from faceexpr_cli.dfer.sampling import Sampling, to_tensor
from faceexpr_cli.errors import CheckpointError, ConfigError, DataError, UsageError
from faceexpr_cli.runlock import ensure_out_dir, output_lock
from faceexpr_cli.train import checkpoint as C
from faceexpr_cli.train.monitor import Monitor
from faceexpr_cli.train.runner import TrainingDivergedError, _precision, _step_seed

NO_SUBJECTS = json.dumps({"subjects": []})  # the checkpoint format keeps a subject table; clips here have none


@dataclass
class FinetuneResult:
    run_dir: Path
    steps: int
    checkpoint: Path | None
    best: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    rows: list[dict[str, float]] = field(default_factory=list)


def cosine_lr(step: int, base: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warmup from 0, then cosine from ``base`` to ``min_lr`` at ``total`` (MAE-DFER's schedule)."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(module, weight_decay: float, layer_decay: float) -> list[dict[str, Any]]:
    """AdamW groups with layer-wise lr decay: scale = decay^(depth + 1 - layer); no decay on norms and biases."""
    depth = getattr(module, "depth", 0)
    layer_id = getattr(module, "layer_id", lambda name: depth + 1)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        decay = p.ndim > 1 and not name.endswith(("q_bias", "v_bias", "lg_region_tokens"))
        lid = layer_id(name)
        g = groups.setdefault((lid, decay), {"params": [], "weight_decay": weight_decay if decay else 0.0,
                                             "lr_scale": layer_decay ** (depth + 1 - lid), "layer": lid})
        g["params"].append(p)
    return [groups[k] for k in sorted(groups)]


class Batches:
    """Training batches drawn from (seed, step), decoded one step ahead in a thread."""

    def __init__(self, ann, reader: ClipReader, sampling: Sampling, batch: int, seed: int, balanced: bool,
                 classes: int, workers: int):
        self.ann, self.reader, self.sampling, self.batch, self.seed = ann, reader, sampling, batch, seed
        self.weights = L.balanced_weights(ann.labels(), classes) if balanced else None
        self.pool = ThreadPoolExecutor(max(workers, 1))
        self.ahead: dict[int, Any] = {}

    def _make(self, step: int):
        rng = np.random.default_rng([self.seed, step, 17])
        picks = rng.choice(len(self.ann.entries), size=self.batch, replace=self.weights is not None
                           or self.batch > len(self.ann.entries), p=self.weights)
        entries = [self.ann.entries[i] for i in picks]
        clips = [self.sampling.train_clip(self.reader.frames(e.path), rng) for e in entries]
        labels = torch.tensor([e.label for e in entries])
        reg = torch.tensor([e.targets for e in entries], dtype=torch.float32) if entries[0].targets else None
        return to_tensor(clips), labels, reg, np.random.default_rng([self.seed, step, 23])

    def get(self, step: int):
        fut = self.ahead.pop(step, None) or self.pool.submit(self._make, step)
        self.ahead[step + 1] = self.pool.submit(self._make, step + 1)
        return fut.result()

    def close(self) -> None:
        for f in self.ahead.values():
            f.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _device(spec: str) -> torch.device:
    from faceexpr_cli.devices import check_device

    return torch.device(check_device(spec))


def run(recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None) -> FinetuneResult:
    run_dir = ensure_out_dir(run_dir, "--out")
    with output_lock(run_dir, "fx finetune-dfer train", "--out"):
        return _run(recipe, run_dir, resume, device)


def _setup(recipe, run_dir: Path, resume: bool):
    if resume:
        ckpt, state = C.pick_resume(run_dir, (ROLE,))
    elif C.latest_checkpoint(run_dir) is not None:
        raise UsageError(f"{run_dir} already holds a run", "pass --resume to continue it, or choose another --out")
    else:
        ckpt, state = None, None
    d = recipe.data
    if not d.train or not d.test:
        raise ConfigError("the run needs training and test annotations", "pass --train FILE --test FILE")
    classes = load_label_map(d.labels)
    train = read_annotations(d.train, classes)
    test = read_annotations(d.test, classes)
    n_reg = recipe.loss.num_regression
    if n_reg and len(train.regression) != n_reg:
        raise DataError(f"{d.train}: loss.num_regression={n_reg} but the file has regression columns "
                        f"{train.regression or 'none'}", "a CSV/Parquet with e.g. path,label,pitch,yaw")
    return ckpt, state, classes, train, test


def _run(recipe, run_dir: Path, resume: bool, device_spec: str | None) -> FinetuneResult:
    t, d, lo, o = recipe.trainer, recipe.data, recipe.loss, recipe.optim
    ckpt, state, classes, train, test = _setup(recipe, run_dir, resume)
    if t.threads:
        torch.set_num_threads(t.threads)
    device = _device(device_spec or t.device)
    card, args = classifier_card(recipe.model, classes, lo.num_regression, d)
    torch.manual_seed(t.seed)
    module = build(card, args)
    if getattr(module, "extractor_weights", None) == "cache" and ckpt is None:
        _load_extractor(module)
    if recipe.model.init and ckpt is None:
        info = init_from(module, recipe.model.init)
        log.info("started from %s (%s layout, head %s)", info["file"], info["layout"],
                 "loaded" if info["head_loaded"] else "fresh")
    module.to(device)
    groups = param_groups(module, o.weight_decay, o.layer_decay)
    opt = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas))
    start, best = 0, None
    if ckpt is not None:
        C.load_model(ckpt / f"{ROLE}.safetensors", module, card, ROLE)
        try:
            opt.load_state_dict(state["optimizer"])
            start = int(state["step"])
            best = state.get("best")
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{ckpt / 'trainer.pt'} does not fit this run ({C.short_error(exc)})",
                                  "resume with the run's own recipe (leave out --recipe)") from None
        log.info("resuming %s at step %d", ckpt, start)
    amp = _precision(t.precision, device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    reader = ClipReader(d.size, d.cache_clips)
    sampling = Sampling(d.size, d.frames, d.stride, d.test_temporal_views, d.test_spatial_views, d.min_scale, d.flip)
    recipe_text = dump_recipe(recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.yaml").write_text(recipe_text)
    write_label_map(run_dir / "labels.json", classes, d.labels)
    monitor = Monitor(run_dir, True, t.tensorboard, t.max_steps, start)
    batches = Batches(train, reader, sampling, d.batch_clips, t.seed, d.balanced, len(classes), d.workers)
    result = FinetuneResult(run_dir, start, ckpt, best, rows=monitor.rows)
    last_good = ckpt
    try:
        for k in range(start, t.max_steps):
            step = k + 1
            torch.manual_seed(_step_seed(t.seed, k, 0))
            lr = cosine_lr(k, o.lr, o.min_lr, o.warmup_steps, t.max_steps)
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"]
            video, labels, reg, mix_rng = batches.get(k)
            video, labels = video.to(device), labels.to(device)
            reg = reg.to(device) if reg is not None else None
            targets = L.soft_targets(labels, len(classes), lo.label_smoothing)
            video, targets, reg = L.mix(video, targets, reg, mix_rng, lo.mixup, lo.cutmix, lo.mix_prob)
            module.train()
            with torch.autocast(device.type, dtype=amp) if amp else torch.autocast("cpu", enabled=False):
                outputs = module.outputs(video)
            total, parts = L.combined_loss(outputs, targets, reg, len(classes), lo.alpha)
            value = float(total.detach())
            if not math.isfinite(value):
                raise TrainingDivergedError(step, last_good)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.unscale_(opt)
            else:
                total.backward()
            if o.grad_clip:
                torch.nn.utils.clip_grad_norm_(module.parameters(), o.grad_clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            monitor.count_frames(video.shape[0] * video.shape[1])
            if step % t.log_every == 0 or step in (start + 1, t.max_steps):
                monitor.log(step, {"loss": value, "lr": lr, **{f"loss_{n}": float(v.detach()) for n, v in parts.items()}})
            else:
                monitor.advance(step)
            result.steps = step
            final = step == t.max_steps
            if (t.eval_every and step % t.eval_every == 0) or final:
                metrics, probs = evaluate(test, classes, reader, sampling, torch_runner(module.eval(), str(device)))
                metrics["step"] = step
                _write_eval(run_dir, step, metrics, monitor)
                score = metrics[t.best_by]
                if best is None or score > best["score"]:
                    best = {"step": step, "score": score, "by": t.best_by, "uar": metrics["uar"],
                            "war": metrics["war"]}
                    _save_best(run_dir, module, card, metrics, step)
                result.best = best
                if final:
                    result.final = metrics
                    write_report(run_dir, test, metrics, probs, classes)
            if (t.save_every and step % t.save_every == 0) or final:
                trainer_state = {"optimizer": opt.state_dict(), "step": step, "rng": C.rng_state(), "best": best,
                                 "schedule": {"step": step}}
                last_good = C.save_checkpoint(run_dir, step, {ROLE: (module, card)}, trainer_state, recipe_text,
                                              NO_SUBJECTS, t.keep_checkpoints,
                                              {"kind": recipe.kind, "loss": value, "best": best})
                result.checkpoint = last_good
    finally:
        monitor.close()
        batches.close()
    return result


def _load_extractor(module) -> None:
    """A frozen per-frame model's published weights (dfer-tokens-emotion), from the weights cache."""
    from faceexpr_cli.weights import find_weights

    module.extractor.load_weights(find_weights("emotion-minixception"))
    log.info("per-frame features: emotion-minixception with its published weights")


def _write_eval(run_dir: Path, step: int, metrics: dict, monitor: Monitor) -> None:
    (run_dir / "eval").mkdir(exist_ok=True)
    (run_dir / "eval" / f"step_{step:06d}.json").write_text(json.dumps(metrics, indent=1))
    log.info("step %d: test UAR %.4f WAR %.4f (%d clips)", step, metrics["uar"], metrics["war"], metrics["clips"])
    if monitor.tb is not None:
        monitor.tb.add_scalar("test/uar", metrics["uar"], step)
        monitor.tb.add_scalar("test/war", metrics["war"], step)


def _save_best(run_dir: Path, module, card, metrics: dict, step: int) -> None:
    tmp = run_dir / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    C.save_model(tmp / f"{ROLE}.safetensors", module, card, ROLE, step)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
    final = run_dir / "best"
    old = run_dir / ".best.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
