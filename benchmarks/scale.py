"""Benchmark `fx crop` over executors: items/s on 8 sample videos, local with 1 and 2 worker processes and Ray
with 1 and 2 CPUs, side by side, plus Ray's overhead per item.

    .venv/bin/python benchmarks/scale.py [--videos 8] [--seconds 4] [--repeats 2] [--shard-size 1] [--threads 1]

Every run crops the same videos into a fresh folder (no resume) with the dlib backend, in rounds over the four
configurations (the best of ``--repeats`` rounds is shown, every run listed), every process with one math thread
(``--threads``; Ray gives a 1-CPU task ``OMP_NUM_THREADS=1``, so the local runs get the same). Ray is measured
warm: a local cluster is started with N CPUs and one unmeasured run starts its worker processes (each imports fx
and loads the face models once, as a long run does); the cold figure (cluster start and first run) is printed
apart. Ray's overhead per item is measured twice: as (Ray 1 CPU - local 1 worker) wall time per video, and on a
job whose items do nothing (scheduling, checkpoints and result transfer alone). On a shared machine figures move
with the load: read the ratios.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def make_videos(n: int, seconds: float, d: Path) -> Path:
    from faceexpr_cli.samples import make_talking_head

    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = d / f"v{i}.mp4"
        if not path.exists():
            make_talking_head(path, seconds=seconds, width=320, height=256, seed=i)
    return d


def crop_once(videos: Path, out: Path, **kw) -> float:
    from faceexpr_cli.crop import CropOptions, crop_videos

    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    res = crop_videos([videos], out, CropOptions(backend="dlib"), resume=False, **kw)
    took = time.perf_counter() - t
    assert res.stats["failed"] == 0 and res.stats["clips"] == res.stats["inputs"], res.stats
    return took


@dataclass
class NoOp:
    """Items that do nothing: what is left is the executor's own cost."""

    root: str
    resources: object = field(default=None)

    def __post_init__(self):
        from faceexpr_cli.executors import Resources

        self.resources = Resources(num_cpus=1)

    def key(self, item):
        return f"i{item}"

    def run_item(self, item):
        return {"item": item}

    def failed(self, item, error):
        return {"item": item, "error": error}

    def checkpoint_root(self):
        return self.root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=1)
    ap.add_argument("--noop-items", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="math threads per process (0: the libraries' default)")
    args = ap.parse_args()
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)  # before torch, numpy and cv2 load; forked workers inherit it

    import ray

    from faceexpr_cli.console import setup_logging
    from faceexpr_cli.executors import ExecutorSpec, run_items
    from faceexpr_cli.face import get_backend

    setup_logging(-1)  # no progress bars or info lines in the figures' output
    work = Path(tempfile.mkdtemp(prefix="fx-scale-"))
    videos = make_videos(args.videos, args.seconds, work / "videos")
    n = args.videos
    get_backend("dlib").prepare()  # the local path loads its models once per process too
    crop_once(videos, work / "warm")  # decoders and models warm in this process
    runs: dict[str, list[float]] = {"local, 1 worker": [], "local, 2 workers": [], "ray, 1 CPU": [],
                                    "ray, 2 CPUs": []}
    cold: dict[int, list[float]] = {1: [], 2: []}
    noop: dict[int, list[float]] = {1: [], 2: []}
    # rounds over every configuration, so that a change in the machine's load hits all of them alike
    for _ in range(args.repeats):
        for workers in (1, 2):
            runs[f"local, {workers} worker{'s' if workers > 1 else ''}"].append(
                crop_once(videos, work / "out", workers=workers))
        for cpus in (1, 2):
            t = time.perf_counter()
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
            spec = ExecutorSpec("ray", shard_size=args.shard_size)
            crop_once(videos, work / "warm", executor=spec)  # starts the worker processes, loads their models
            cold[cpus].append(time.perf_counter() - t)
            runs[f"ray, {cpus} CPU{'s' if cpus > 1 else ''}"].append(crop_once(videos, work / "out", executor=spec))
            t = time.perf_counter()
            run_items(ExecutorSpec("ray", shard_size=1), NoOp(str(work / "noop")), list(range(args.noop_items)),
                      lambda *_: None)
            noop[cpus].append((time.perf_counter() - t) / args.noop_items)
            ray.shutdown()
    results = {name: min(walls) for name, walls in runs.items()}

    print(f"fx crop, {n} videos of {args.seconds:g} s at 320x256 (dlib, size 256), best of {args.repeats}; "
          f"Ray shard size {args.shard_size}, warm workers; {args.threads or 'default'} math thread(s) a process")
    print(f"{'executor':<18}{'wall s':>9}{'items/s':>10}{'vs local 1':>12}")
    base = results["local, 1 worker"]
    for name, wall in results.items():
        print(f"{name:<18}{wall:>9.2f}{n / wall:>10.3f}{base / wall:>11.2f}x")
    r1, r2, l2 = results["ray, 1 CPU"], results["ray, 2 CPUs"], results["local, 2 workers"]
    print(f"ray 2 CPUs / ray 1 CPU speed-up: {r1 / r2:.2f}x (target >= 1.7x)")
    print(f"ray 2 CPUs vs local 2 workers: {100 * (r2 / l2 - 1):+.1f}% wall time (target within 15%)")
    print(f"ray overhead per video (ray 1 CPU - local 1 worker): {1000 * (r1 - base) / n:+.0f} ms")
    for cpus in (1, 2):
        print(f"ray, {cpus} CPU(s): cold start + first run {min(cold[cpus]):.1f} s; no-op item "
              f"{1000 * min(noop[cpus]):.1f} ms each ({args.noop_items} items, 1 per task)")
    print("all runs (s): " + "; ".join(f"{k}: {', '.join(f'{w:.2f}' for w in v)}" for k, v in runs.items()))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
