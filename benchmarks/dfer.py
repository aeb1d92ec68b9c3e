"""Benchmark: DFER clips per second, training and inference, for the tiny and the base models; inference in
PyTorch and in ONNX Runtime side by side (the baseline is PyTorch on the same device and inputs).

    .venv/bin/python benchmarks/dfer.py                          # CPU: dfer-tiny (64 px x 8) and ViT-B (160 px x 16)
    .venv/bin/python benchmarks/dfer.py --models tiny            # only the tiny model
    .venv/bin/python benchmarks/dfer.py --gpu                    # on a GPU: ViT-B/16 16 x 224 bf16 training clips/s

Models have random weights (timing does not need trained ones). "train" is one optimizer step (forward, loss,
backward, AdamW) on a batch; "infer" is a forward pass on a batch, no gradients; ONNX graphs are exported once with
the same machinery as `fx finetune-dfer export` (parity-checked) and timed with ONNX Runtime's CPU provider.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

MODELS = {  # name: (card, tiny, builder overrides, batch for training, batch for inference)
    "tiny": ("videomae-base", True, {"image_size": 64, "frames": 8, "dim": 64, "depth": 2, "heads": 4,
                                     "mlp_ratio": 2.0, "num_classes": 4}, 12, 12),
    "base": ("videomae-base", False, {"image_size": 160, "frames": 16, "num_classes": 7}, 2, 2),
    "mae-dfer": ("mae-dfer", False, {"num_classes": 7}, 2, 2),
}


def _timed(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def bench_model(name: str, repeats: int, device: str = "cpu", precision: str = "fp32",
                onnx: bool = True) -> dict:
    import numpy as np
    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card

    card_name, tiny, args, train_batch, infer_batch = MODELS[name]
    card = load_card(card_name)
    torch.manual_seed(0)
    model = build_model(card, tiny=tiny, **args).to(device)
    frames, size = model.frames, model.image_size
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(train_batch, frames, 3, size, size, device=device)
    y = torch.randint(0, model.num_classes, (train_batch,), device=device)
    amp = torch.bfloat16 if precision == "bf16" else None

    def train_step():
        model.train()
        with torch.autocast(device.split(":")[0], dtype=amp) if amp else torch.autocast("cpu", enabled=False):
            loss = torch.nn.functional.cross_entropy(model.outputs(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    xi = torch.rand(infer_batch, frames, 3, size, size, device=device)

    def infer():
        model.eval()
        with torch.inference_mode():
            model(xi)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    row = {"model": name, "input": f"{frames} x {size} px", "device": device, "precision": precision,
           "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)}
    row["train_clips_per_s"] = round(train_batch / _timed(train_step, repeats), 2)
    row["torch_infer_clips_per_s"] = round(infer_batch / _timed(infer, repeats), 2)
    if onnx and device == "cpu":
        from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models
        from faceexpr_cli.onnx.session import create_session

        resolved = card.model_copy(update={"preset": card.arguments(tiny=tiny) | args, "tiny": {},
                                           "input": card.input.model_copy(update={"size": size, "frames": frames})})
        with tempfile.TemporaryDirectory() as tmp:
            export_models([ModelSource(resolved, model=model.eval())], Path(tmp),
                          ExportOptions(simplify=False, sample_check=False, latency_runs=1))
            sess = create_session(Path(tmp) / "classifier.onnx")
            feed = {"video": xi.numpy().astype(np.float32)}
            row["onnx_infer_clips_per_s"] = round(infer_batch / _timed(lambda: sess.run(None, feed), repeats), 2)
        row["onnx_vs_torch"] = round(row["onnx_infer_clips_per_s"] / row["torch_infer_clips_per_s"], 2)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny", "base"], choices=sorted(MODELS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (ONNX Runtime uses its default)")
    ap.add_argument("--gpu", action="store_true", help="ViT-B/16 16 x 224 bf16 training on cuda instead")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    if a.gpu:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu: no CUDA device here")
        MODELS["base224"] = ("videomae-base", False, {"image_size": 224, "frames": 16, "num_classes": 7}, 16, 32)
        rows = [bench_model("base224", a.repeats, "cuda", "bf16", onnx=False)]
    else:
        rows = [bench_model(m, a.repeats) for m in a.models]
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    cols = list(rows[0])
    for r in rows[1:]:
        cols += [c for c in r if c not in cols]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "-")) for c in cols))


if __name__ == "__main__":
    main()
