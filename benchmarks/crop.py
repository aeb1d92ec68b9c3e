"""Benchmark `fx crop` on a 60 s 640x360 talking-head video, one worker, pinned to one CPU core.

Prints the real-time factor (seconds of video per second of wall time) of the default settings and, side by
side in the same run, a naive baseline in the seed's style: every frame fetched with its own seek, the
detector (plus 68 landmarks) run on every full frame, each crop resized and encoded.
The baseline is measured on ``--naive-frames`` frames spread over the video and extrapolated (running it on all
1500 frames would take many minutes); the per-frame figure it extrapolates from is printed too.

    .venv/bin/python benchmarks/crop.py [--seconds 60] [--cores 1] [--naive-frames 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def pin(cores: int) -> str:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(cores)
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(allowed[:cores]))  # ffmpeg children inherit it
        return f"pinned to CPU {allowed[:cores]}"
    return "not pinned (no sched_setaffinity here)"


def make_video(seconds: float, workdir: Path) -> Path:
    from faceexpr_cli.samples import make_talking_head

    path = workdir / f"talking_head_{int(seconds)}s_640x360.mp4"
    if not path.exists():
        t = time.perf_counter()
        make_talking_head(path, seconds=seconds, width=640, height=360, face_fraction=0.35, seed=3)
        print(f"made {path.name} in {time.perf_counter() - t:.1f} s (not timed below)")
    return path


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the ffmpeg encoders)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_default(video: Path, out: Path) -> tuple[float, float, dict]:
    from faceexpr_cli.crop import CropOptions, crop_videos
    from faceexpr_cli.face import get_backend

    get_backend("dlib").prepare()  # model loading is a one-off per process: not part of the per-video rate
    t, c = time.perf_counter(), cpu_seconds()
    res = crop_videos([video], out, CropOptions(), resume=False)
    return time.perf_counter() - t, cpu_seconds() - c, res.stats


def run_naive(video: Path, out: Path, n: int) -> tuple[float, float, int]:
    """The seed's way, on ``n`` frames spread over the video: seek, decode one frame, detect, crop, encode."""
    import numpy as np

    from faceexpr_cli.crop.geometry import crop_square, square_around
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import VideoWriter, iter_frames, probe

    info = probe(video)
    backend = get_backend("dlib").prepare()
    idx = np.linspace(0, info.frame_count - 1, n).round().astype(int)
    t, c = time.perf_counter(), cpu_seconds()
    with VideoWriter(out / "naive.mp4", info.fps, preset="superfast") as w:
        for i in idx:
            frame = next(iter(iter_frames(video, start=i / info.fps, max_frames=1)))  # one seek per frame
            faces = backend.analyze(frame.image, landmarks=True)
            box = square_around(faces[0].bbox, 0.3) if faces else np.array([0, 0, 256, 256], np.float32)
            w.write(crop_square(frame.image, box, 256))
    return time.perf_counter() - t, cpu_seconds() - c, len(idx)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--naive-frames", type=int, default=100)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fx-bench-crop")
    args = ap.parse_args()
    where = pin(args.cores)
    args.workdir.mkdir(parents=True, exist_ok=True)
    video = make_video(args.seconds, args.workdir)

    from faceexpr_cli.media import probe

    info = probe(video)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    wall, cpu, stats = run_default(video, args.workdir / "out")
    naive_wall, naive_cpu, naive_n = run_naive(video, args.workdir, args.naive_frames)
    scale = info.frame_count / naive_n
    dur, n = info.duration, info.frame_count
    print(f"\nfx crop benchmark - {video.name}: {info.width}x{info.height}, {info.fps:g} fps, {dur:.1f} s, "
          f"{n} frames; {where}; load average before: {load:.1f}; python {sys.version.split()[0]}")
    print("CPU = this process + its ffmpeg children: what the wall time would be on one idle core.")
    print(f"{'':24}{'wall s':>9}{'CPU s':>9}{'ms/frame':>10}{'x real time':>13}{'x RT (CPU)':>12}")
    print(f"{'fx crop (defaults)':24}{wall:9.2f}{cpu:9.2f}{1000 * wall / n:10.2f}{dur / wall:13.2f}"
          f"{dur / cpu:12.2f}")
    nw, nc = naive_wall * scale, naive_cpu * scale
    print(f"{'naive (seek per frame)':24}{nw:9.2f}{nc:9.2f}{1000 * nw / n:10.2f}{dur / nw:13.2f}{dur / nc:12.2f}"
          f"   (measured on {naive_n} frames spread over the video, extrapolated)")
    print(f"speed-up over naive: {nw / wall:.1f}x wall, {nc / cpu:.1f}x CPU; clips written: {stats['clips']}; "
          "targets: >= 5x real time and >= 10x naive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
