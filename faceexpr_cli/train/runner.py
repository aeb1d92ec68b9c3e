"""The training runner, linear: setup -> train -> evaluate -> save -> cleanup. Shared by every kind of run.

Exact resume: the batch of step k is drawn from (seed, k, rank), and the torch RNG (dropout) is re-seeded from
(seed, k, rank) at every step, so a resumed run repeats the uninterrupted run's steps bit for bit once the
weights, optimizer and schedule step are restored. This holds under DDP too, without gathering RNG states.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceexpr_cli.config.recipes import dump_recipe
from faceexpr_cli.console import log
from faceexpr_cli.errors import CheckpointError, ConfigError, FxError, UsageError
from faceexpr_cli.runlock import ensure_out_dir, output_lock
from faceexpr_cli.train import checkpoint as C
from faceexpr_cli.train import distributed as D
from faceexpr_cli.train.data import BatchStream, SubjectTable, make_sample_clips, open_source
from faceexpr_cli.train.monitor import Monitor
from faceexpr_cli.train.schedule import CombinedSchedule
from faceexpr_cli.train.subjects import check_subjects
from faceexpr_cli.train.tasks import TASKS


class TrainingDivergedError(FxError):
    """The loss stopped being a finite number; the message names the step and the last good checkpoint."""

    def __init__(self, step: int, last_good: Path | None):
        where = f"last good checkpoint: {last_good}" if last_good else "no checkpoint was written yet"
        super().__init__(f"loss is not finite at step {step} ({where})",
                         "lower the learning rate or use fp32, then resume from that checkpoint")
        self.step, self.last_good = step, last_good


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    checkpoint: Path | None
    rows: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    cache: dict[str, int] = field(default_factory=dict)


def run(recipe, run_dir: str | Path, *, resume: bool = False, cache_tokens: str | Path | None = None,
        device: str | None = None) -> RunResult:
    run_dir = ensure_out_dir(run_dir, "--out")  # every rank: a file in the way is a usage error, before any work
    if cache_tokens:
        ensure_out_dir(cache_tokens, "--cache-tokens")
    info = D.setup(device or recipe.trainer.device)
    try:
        if not info.main:
            return _run(recipe, run_dir, info, resume, cache_tokens)
        with output_lock(run_dir, "fx train", "--out"):  # rank 0 holds the run folder: one run per folder
            return _run(recipe, run_dir, info, resume, cache_tokens)
    finally:
        D.teardown(info)


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


def _tokenizer(recipe, run_dir: Path, info: D.DistInfo, resumed: bool):
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.builders.expression import load_dinov2_weights
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.weights import find_weights

    spec = recipe.tokenizer
    card = load_card(spec.card)
    args = card.arguments(tiny=spec.tiny) | spec.args
    if spec.random_init:
        args["image_size"] = recipe.data.size
    torch.manual_seed(recipe.trainer.seed)
    tok = build_model(card, **args)
    saved = run_dir / "tokenizer.safetensors"
    if spec.random_init:
        if resumed and saved.exists():
            C.load_model(saved, tok, C.resolved_card(card, args), "tokenizer")
        elif info.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            C.save_model(saved, tok, C.resolved_card(card, args), "tokenizer", 0)
        log.warning("tokenizer: random weights (tokenizer.random_init=true) - for tests and smoke runs only")
    else:
        load_dinov2_weights(tok, find_weights(card, source=spec.source, explicit=spec.weights))
    tok.requires_grad_(False).eval()
    return tok, card, args


def _subjects(recipe, source, task, ckpt: Path | None) -> SubjectTable:
    cap = task.capacity()
    init = recipe.expression.init
    from_file = None
    if ckpt is not None:
        from_file = ckpt / "subjects.json"
    elif recipe.data.subjects:
        from_file = Path(recipe.data.subjects)
    elif init:
        for cand in (Path(init) / "subjects.json", Path(init).parent / "subjects.json"):
            if cand.is_file():
                from_file = cand
                break
        else:
            latest = C.latest_checkpoint(init) if Path(init).is_dir() else None
            from_file = latest / "subjects.json" if latest else None
    if from_file is None:
        return SubjectTable(source.subjects(), cap)
    table = SubjectTable.load(from_file, cap)
    for name in source.subjects():
        table.row(name)  # a subject of this dataset missing from the saved table is an error, not a new row
    return table


def _setup_run_dir(run_dir: Path, resume: bool, roles) -> tuple[Path | None, dict[str, Any] | None]:
    """The checkpoint to resume from and its trainer state (the newest that reads), or (None, None)."""
    if resume:
        return C.pick_resume(run_dir, roles)
    if C.latest_checkpoint(run_dir) is not None:
        raise UsageError(f"{run_dir} already holds a run", "pass --resume to continue it, or choose another --out")
    return None, None


def _precision(spec: str, device: torch.device):
    if device.type != "cuda" or spec == "fp32":
        return None
    if spec in ("auto", "bf16"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16


def _run(recipe, run_dir: Path, info: D.DistInfo, resume: bool, cache_tokens) -> RunResult:
    t, data = recipe.trainer, recipe.data
    ckpt, state = _setup_run_dir(run_dir, resume, TASKS[recipe.kind].roles)
    if t.threads:
        torch.set_num_threads(t.threads)
    if data.path is None:
        raise ConfigError("the recipe has no data.path", "add data.path=FOLDER (or data.path=sample)")
    path = data.path
    if path == "sample":
        path = run_dir / "sample_clips"
        if info.main:
            make_sample_clips(path, size=data.size)
        D.barrier(info)
    tokenizer, tok_card, tok_args = _tokenizer(recipe, run_dir, info, ckpt is not None)
    if data.size % tokenizer.patch_size:
        raise ConfigError(f"data.size {data.size} is not a multiple of the patch size {tokenizer.patch_size}")
    source = open_source(path, data.size, data.frames, data.fps, data.cache_clips, data.subject_from)
    torch.manual_seed(t.seed)
    task = TASKS[recipe.kind](recipe, tokenizer)
    subjects = _subjects(recipe, source, task, ckpt)
    if info.main:
        check_subjects(source.subjects(), data.subject_from)
    cards = {r: C.resolved_card(task.cards[r], task.args[r]) for r in task.roles}
    for role in task.roles:
        spec = getattr(recipe, role)
        if spec.init and ckpt is None:
            C.load_model(C.resolve_model_file(spec.init, role), task.models[role], cards[role], role)
    schedule = CombinedSchedule.from_spec(recipe.schedule, t.max_steps)
    module = task.module.to(info.device)
    tokenizer.to(info.device)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=schedule.lr_at(0), weight_decay=recipe.optim.weight_decay,
                            betas=tuple(recipe.optim.betas))
    start = 0
    if ckpt is not None:
        for role in task.roles:
            C.load_model(ckpt / f"{role}.safetensors", task.models[role], cards[role], role)
        try:
            opt.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            start = int(state["step"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{ckpt / 'trainer.pt'} does not fit this run ({C.short_error(exc)})",
                                  "resume with the run's own recipe (leave out --recipe)") from None
        log.info("resuming %s at step %d", ckpt, start)
    amp = _precision(t.precision, info.device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    model = module
    if info.active:
        model = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    cache = None
    if cache_tokens:
        if source.streaming:
            log.warning("--cache-tokens needs a clip folder; shards are tokenized on the fly")
        else:
            from faceexpr_cli.train.token_cache import TokenCache, tokenizer_fingerprint

            fp = tokenizer_fingerprint(tokenizer, tok_card.name, tok_args, data.size, data.fps)
            grid = data.size // tokenizer.patch_size
            cache = TokenCache(cache_tokens, fp, tokenizer, info.device, tokens=(grid * grid, tokenizer.dim))
    with torch.no_grad():
        pos = tokenizer.positional(data.size // tokenizer.patch_size, data.size // tokenizer.patch_size)
    recipe_text = dump_recipe(recipe)
    if info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(recipe_text)
        (run_dir / "subjects.json").write_text(subjects.to_json())
    monitor = Monitor(run_dir, info.main, t.tensorboard, t.max_steps, start)
    if source.streaming:
        batches = source.stream(data.batch_clips, t.seed, info.rank, info.world, start)
        stream = None
    else:
        stream = BatchStream(source, data.batch_clips, data.frames, t.seed, info.rank, start, data.workers)
        batches = iter(stream)
    result = RunResult(run_dir, start, ckpt, monitor.rows)
    last_good, batch = ckpt, None
    try:
        for k in range(start, t.max_steps):
            step = k + 1
            torch.manual_seed(_step_seed(t.seed, k, info.rank))
            lr, weights = schedule.apply(opt, k)
            batch = next(batches)
            b, frames = batch.frames.shape[:2]
            images = torch.from_numpy(batch.frames).to(info.device).flatten(0, 1).permute(0, 3, 1, 2).float() / 255
            rows = torch.tensor([subjects.row(s) for s in batch.subjects], device=info.device)
            rows = rows.repeat_interleave(frames)
            autocast = torch.autocast("cuda", dtype=amp) if amp else contextlib.nullcontext()
            with autocast:
                with torch.no_grad():
                    tokens = (cache.batch_tokens(source, batch, frames) if cache is not None
                              else tokenizer(images)[0])
                module.train()
                for role in task.frozen_roles:
                    task.models[role].eval()
                total, parts, _ = task.compute(model, tokens, pos, rows, images, b, tokenizer, weights)
            value = float(total.detach())
            if D.any_flag(info, not math.isfinite(value)):
                raise TrainingDivergedError(step, last_good)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.unscale_(opt)
            else:
                total.backward()
            if recipe.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, recipe.optim.grad_clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            monitor.count_frames(b * frames * info.world)
            if step % t.log_every == 0 or step in (start + 1, t.max_steps):
                scalars = {"loss": value, "lr": lr, **{f"loss_{n}": float(v.detach()) for n, v in parts.items()},
                           **{f"w_{n}": w for n, w in weights.items()}}
                monitor.log(step, scalars)
            else:
                monitor.advance(step)
            result.steps = step
            if info.main and ((t.eval_every and step % t.eval_every == 0) or step == t.max_steps):
                from faceexpr_cli.train.evaluate import evaluate

                result.evals.append(evaluate(task, tokenizer, pos, source, batch, subjects, run_dir, step,
                                             info.device, t.eval_frames))
                monitor.log_eval(step, result.evals[-1])
            if (t.save_every and step % t.save_every == 0) or step == t.max_steps:
                if info.main:
                    state = {"optimizer": opt.state_dict(), "schedule": schedule.state_dict(), "step": step,
                             "rng": C.rng_state(), "scaler": scaler.state_dict() if scaler else {}}
                    models = {r: (task.models[r], cards[r]) for r in task.roles}
                    last_good = C.save_checkpoint(run_dir, step, models, state, recipe_text, subjects.to_json(),
                                                  t.keep_checkpoints, {"kind": recipe.kind, "loss": value})
                    result.checkpoint = last_good
                D.barrier(info)
    finally:
        monitor.close()
        if stream is not None:
            stream.close()
    if cache is not None:
        result.cache = {"hits": cache.hits, "misses": cache.misses, "rebuilt": cache.rebuilt}
    return result
