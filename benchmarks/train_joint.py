"""Benchmark: frames per second of one `fx train joint` step, batched vs the seed's frame-at-a-time loop, and with
the token cache; peak memory of each.

    .venv/bin/python benchmarks/train_joint.py                 # CPU: 224 px (16 x 16 tokens), 2 clips x 30 frames
    .venv/bin/python benchmarks/train_joint.py --size 518 --device cuda --precision bf16

Models are the seed's sizes (joint-518 recipe: ViT-S/14 tokenizer, expression transformer 4 layers, reconstruction
2 + 2 layers) with random weights (timing does not need the published ones). Each variant runs in its own process
so that its peak memory (RSS on CPU, allocated memory on CUDA) is its own.

  batched    every frame of every clip through each model as one batch (what the runner does)
  seed-loop  the seed's loop: tokenizer per clip, then expression transformer and reconstruction one frame at a time
  cached     batched, with the tokenizer's tokens read from the fp16 cache instead of running the ViT
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def step_fn(variant: str, size: int, clips: int, frames: int, device: str, precision: str):
    import contextlib

    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train import losses as L
    from faceexpr_cli.train.tasks import JointTask

    dev = torch.device(device)
    recipe = load_recipe("joint-518", [f"data.size={size}", f"data.frames={frames}", f"data.batch_clips={clips}",
                                       "data.path=unused"])
    torch.manual_seed(0)
    tok = build_model(load_card("dinov2-vits14")).to(dev).eval()
    task = JointTask(recipe, tok)
    module = task.module.to(dev).train()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.01)
    grid = size // 14
    with torch.no_grad():
        pos = tok.positional(grid, grid)
    images = torch.rand(clips * frames, 3, size, size, device=dev)
    rows = torch.arange(clips, device=dev).repeat_interleave(frames)
    weights = {"reconstruction": 0.2, "temporal": 0.3, "diversity": 0.2}
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    cache = None
    if variant == "cached":
        with torch.no_grad():
            cache = torch.cat([tok(images[i:i + 16])[0] for i in range(0, len(images), 16)]).half().cpu()

    def step() -> None:
        ctx = torch.autocast(dev.type, dtype=amp) if amp else contextlib.nullcontext()
        with ctx:
            if variant == "seed-loop":
                exprs, recons = [], []
                for b in range(clips):
                    sl = slice(b * frames, (b + 1) * frames)
                    with torch.no_grad():
                        tokens = tok(images[sl])[0]
                    for t in range(frames):
                        e = task.models["expression"](tokens[t:t + 1], pos, rows[sl][t:t + 1])
                        exprs.append(e)
                        recons.append(task.models["reconstruction"](e, rows[sl][t:t + 1], pos))
                seq = torch.cat(exprs).reshape(clips, frames, -1)
                parts = {"reconstruction": L.reconstruction_loss(torch.cat(recons), images),
                         "temporal": L.temporal_loss(seq), "diversity": L.diversity_loss(seq)}
                total = L.weighted_total(parts, weights)
            else:
                if cache is not None:
                    tokens = cache.to(dev, non_blocking=True).float()
                else:
                    with torch.no_grad():
                        tokens = tok(images)[0]
                total, _, _ = task.compute(module, tokens, pos, rows, images, clips, tok, weights)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    return step


def child(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    step = step_fn(args.variant, args.size, args.clips, args.frames, args.device, args.precision)
    step()  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - t) / args.steps
    peak = (torch.cuda.max_memory_allocated() if args.device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(json.dumps({"variant": args.variant, "step_s": seconds, "fps": args.clips * args.frames / seconds,
                      "peak_mb": peak / 2**20}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--clips", type=int, default=2)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        child(args)
        return
    results = {}
    for variant in ("seed-loop", "batched", "cached"):
        cmd = [sys.executable, __file__, "--variant", variant] + [
            f"--{k}={v}" for k, v in vars(args).items() if k != "variant"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results[variant] = json.loads(out)
    base = results["seed-loop"]["fps"]
    print(f"fx train joint step: {args.clips} clips x {args.frames} frames at {args.size} px, ViT-S/14 + seed-size "
          f"expression/reconstruction, {args.device} {args.precision}")
    print(f"{'variant':<10} {'s/step':>8} {'frames/s':>9} {'vs seed':>8} {'peak MB':>8}")
    for name, r in results.items():
        print(f"{name:<10} {r['step_s']:>8.2f} {r['fps']:>9.1f} {r['fps'] / base:>7.2f}x {r['peak_mb']:>8.0f}")
    print(f"cache vs batched: {results['cached']['fps'] / results['batched']['fps']:.2f}x")


if __name__ == "__main__":
    main()
