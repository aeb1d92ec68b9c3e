"""Benchmark `fx live`: sustained fps and capture-to-shown latency at 640x480, on one and two cores.

    .venv/bin/python benchmarks/live.py [--seconds 8] [--cores 1 2] [--modes face tokens-tiny tokens-518 animate swap]

The source is a 640x480, 25 fps talking-head file played at its own pace (as a camera delivers frames), so the
loop can show at most 25 fps and drops what it cannot keep up with; latency runs from the capture thread having a
frame to its result being published (served page frame encoded, recorded, token line written). Each
configuration runs in its own process pinned to N cores (``sched_setaffinity``; torch and ONNX Runtime then use
N threads). Modes:
- ``face``: the face follower alone (dlib detection every 5 frames, 68 points carried between);
- ``tokens-tiny``: + expression tokens from the tiny joint recipe's run (56 px), torch and onnx;
- ``tokens-518``: + tokens from the seed's full-size models (DINOv2 ViT-S/14 at 518 px + expression transformer,
  random weights: none can be downloaded here, which does not change the work), onnx;
- ``animate``: the landmarks engine animating a 512x512 portrait (torch warp);
- ``swap``: the `fx swap` landmarks engine putting Grace Hopper's face on the driver (torch).
Every run also serves the page (``--serve`` on a free port) so JPEG encoding is in the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _child(spec: dict) -> None:
    cores = int(spec["cores"])
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    os.environ["OMP_NUM_THREADS"] = str(cores)
    import torch

    torch.set_num_threads(cores)
    from faceexpr_cli.live.loop import LiveOptions, run_live
    from faceexpr_cli.live.process import LiveModels

    models = LiveModels(model=spec.get("model"), backend=spec.get("backend"), animate=spec.get("animate"),
                        swap=spec.get("swap"), emotion="off", face_backend="dlib")
    res = run_live(LiveOptions(source=spec["video"], models=models, serve="127.0.0.1:0"))
    print(json.dumps(res.to_dict()))


def _prepare(work: Path, seconds: float) -> dict[str, str]:
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.media import write_image
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models
    from faceexpr_cli.onnx.runs import run_sources
    from faceexpr_cli.samples import make_talking_head
    from faceexpr_cli.samples.portraits import load_portrait
    from faceexpr_cli.train.data import make_sample_clips
    from faceexpr_cli.train.runner import run

    video = make_talking_head(work / "talk640.mp4", seconds=seconds, width=640, height=480).path
    clips = make_sample_clips(work / "clips", seconds=0.4, size=56, clips_per_subject=1)
    run(load_recipe("joint-tiny", [f"data.path={clips}", "data.workers=0", "trainer.tensorboard=false",
                                   "trainer.max_steps=1", "trainer.save_every=1", "trainer.eval_every=0"]),
        work / "tiny-run")
    opts = ExportOptions(latency_runs=1, simplify=False, sample_check=False)
    export_models(run_sources(work / "tiny-run", models=["tokenizer", "expression"]), work / "tiny-onnx", opts,
                  source_label=f"run {work / 'tiny-run'}")
    export_models([ModelSource(load_card("dinov2-vits14"), folder="tokenizer"),
                   ModelSource(load_card("expression-transformer"), folder="expression")], work / "full-onnx", opts)
    image, _ = load_portrait("grace_hopper")
    write_image(work / "portrait.png", image)
    return {"video": str(video), "tiny-run": str(work / "tiny-run"), "tiny-onnx": str(work / "tiny-onnx"),
            "full-onnx": str(work / "full-onnx"), "portrait": str(work / "portrait.png")}


def _configs(paths: dict[str, str], modes: list[str]) -> list[tuple[str, dict]]:
    table = {
        "face": [("face only", {})],
        "tokens-tiny": [("tokens tiny, torch", {"model": paths["tiny-run"], "backend": "torch"}),
                        ("tokens tiny, onnx", {"model": paths["tiny-onnx"], "backend": "onnx"})],
        "tokens-518": [("tokens ViT-S/14 518, onnx", {"model": paths["full-onnx"], "backend": "onnx"})],
        "animate": [("animate landmarks, torch", {"animate": paths["portrait"]})],
        "swap": [("swap landmarks, torch", {"swap": paths["portrait"]})],
    }
    return [row for m in modes for row in table[m]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--modes", nargs="+", default=["face", "tokens-tiny", "tokens-518", "animate", "swap"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return
    with tempfile.TemporaryDirectory(prefix="fx-live-bench-") as tmp:
        paths = _prepare(Path(tmp), args.seconds)
        print(f"source: 640x480, 25 fps, {args.seconds:g} s at its own pace; cores available: "
              f"{len(os.sched_getaffinity(0))}", flush=True)
        print(f"{'configuration':32s} {'cores':>5s} {'fps':>6s} {'median ms':>10s} {'p95 ms':>8s} "
              f"{'dropped':>8s} {'frames':>7s}", flush=True)
        for name, extra in _configs(paths, args.modes):
            for cores in args.cores:
                spec = {"video": paths["video"], "cores": cores, **extra}
                out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                     text=True, check=False)
                if out.returncode:
                    print(f"{name:32s} {cores:5d} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{name:32s} {cores:5d} {r['fps']:6.1f} {r['latency_ms']:10.1f} {r['latency_p95_ms']:8.1f} "
                      f"{r['dropped']:8d} {r['frames']:7d}", flush=True)


if __name__ == "__main__":
    main()
