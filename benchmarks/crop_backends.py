"""`fx crop` real-time factor per face backend, side by side in one run: dlib, auto (torch runtime), auto (its default, ONNX).

    .venv/bin/python benchmarks/crop_backends.py [--seconds 60] [--cores 1] [--rounds 1]

The video is benchmarks/crop.py's 60 s 640x360 talking head (made once in the work folder). Each set-up crops it
with fx crop's defaults and only ``backend`` / ``backend_options`` changed, one worker, the process pinned to
``--cores`` CPUs with torch on as many threads (the mediapipe torch graphs run ~10x slower on two threads of two
busy cores). Models load (and the ONNX graphs export) before the clock starts. Set-ups run interleaved round by
round, so load on a shared machine hits them alike; each row shows the best round. The MediaPipe files come from
the pytest cache or pip into ``FX_HOME`` (a temporary one), as benchmarks/face_recall.py does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FX_HOME", str(Path(tempfile.gettempdir()) / "fx-bench-home"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from crop import cpu_seconds, make_video, pin  # noqa: E402
from face_recall import _weights  # noqa: E402

SETUPS = {  # row -> (backend, options)
    "dlib": ("dlib", {}),
    "auto (runtime=torch)": ("auto", {"runtime": "torch"}),
    "auto (default: onnx)": ("auto", {}),
}


def run(video: Path, out: Path, backend: str, options: dict) -> tuple[float, float, dict]:
    import shutil

    from faceexpr_cli.crop import CropOptions, crop_videos
    from faceexpr_cli.face import get_backend

    get_backend(backend, **options).prepare()  # one-off per process (and the ONNX export): not timed
    shutil.rmtree(out, ignore_errors=True)
    t, c = time.perf_counter(), cpu_seconds()
    res = crop_videos([video], out, CropOptions(backend=backend, backend_options=options), resume=False)
    return time.perf_counter() - t, cpu_seconds() - c, res.stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fx-bench-crop")
    args = ap.parse_args()
    where = pin(args.cores)
    import torch

    torch.set_num_threads(args.cores)
    _weights()
    args.workdir.mkdir(parents=True, exist_ok=True)
    video = make_video(args.seconds, args.workdir)

    from faceexpr_cli.media import probe

    info = probe(video)
    load = os.getloadavg()[0]
    best: dict[str, tuple[float, float, dict]] = {}
    for _ in range(args.rounds):
        for row, (backend, options) in SETUPS.items():
            r = run(video, args.workdir / f"out-{backend}-{len(options)}", backend, options)
            if row not in best or r[0] < best[row][0]:
                best[row] = r
    dur, n = info.duration, info.frame_count
    print(f"\nfx crop per face backend - {video.name}: {info.width}x{info.height}, {info.fps:g} fps, {dur:.1f} s, "
          f"{n} frames; {where}; torch threads {torch.get_num_threads()}; load average before: {load:.1f}; "
          f"best of {args.rounds} round(s)")
    print(f"{'':22}{'wall s':>9}{'CPU s':>9}{'ms/frame':>10}{'x real time':>13}{'x RT (CPU)':>12}{'clips':>7}"
          f"{'clip s':>8}")
    for row, (wall, cpu, stats) in best.items():
        print(f"{row:22}{wall:9.2f}{cpu:9.2f}{1000 * wall / n:10.2f}{dur / wall:13.2f}{dur / cpu:12.2f}"
              f"{stats['clips']:>7}{stats['clip_seconds']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
