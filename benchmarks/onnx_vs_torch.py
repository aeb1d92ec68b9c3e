"""Benchmark ONNX Runtime against eager PyTorch on CPU, per model part, at the seed's sizes.

    .venv/bin/python benchmarks/onnx_vs_torch.py [--rounds 6] [--threads N] [--opsets 18 23] [--reconstruction]

Parts: DINOv2 ViT-S/14 tokenizer at 518x518 (1369 patch tokens) and the expression transformer (dim 384, 4
layers, 4 heads, ff 768) on those tokens; ``--reconstruction`` adds the reconstruction model. Weights are random
(none can be downloaded here), which does not change the work done. Each graph is exported with `fx export-onnx`'s
code path (so it is parity-checked against PyTorch before it is timed) at each ``--opsets`` version: 18 writes
attention as MatMul/Softmax, 23 as the ONNX ``Attention`` op.

Figures: latency at batch 1 (ms) and throughput at batch 8 (frames/s), with eager and ORT runs interleaved round
by round so that load on a shared machine hits both alike; medians and bests over ``--rounds`` are printed, and
the "tokenizer + expression" row is the per-frame path. Both engines use the same thread count.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PARTS = [("dinov2-vits14", "tokenizer"), ("expression-transformer", "expression")]


def export(card_names: list[str], out: Path, opset: int) -> dict[str, Path]:
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models

    sources = []
    for name in card_names:
        card = load_card(name)
        card = card.model_copy(update={"onnx": card.onnx.model_copy(update={"opset": opset})})
        sources.append(ModelSource(card, folder=name))
    opts = ExportOptions(opset=opset, sample_check=False, latency_runs=1)
    report = export_models(sources, out, opts)  # raises if any graph misses the card's tolerance
    return {m["card"]: out / m["folder"] / p["file"] for m in report["models"] for p in m["parts"]}


def interleaved(fns: dict[str, callable], rounds: int) -> dict[str, list[float]]:
    """Run each function once per round, in turn, so that background load spreads evenly; seconds per call.

    A short pause before each call lets the previous engine's worker threads stop spinning (ORT and OpenMP both
    spin after a parallel region), so that one engine's idle threads are not timed as the other's slowness.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up (allocations, ORT's first-run planning)
    for _ in range(rounds):
        for key, fn in fns.items():
            time.sleep(0.05)
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=0, help="threads for both engines (0: the cores we may use)")
    ap.add_argument("--opsets", type=int, nargs="+", default=[18, 23])
    ap.add_argument("--reconstruction", action="store_true", help="also time the reconstruction model")
    ap.add_argument("--out", type=Path, default=None, help="keep the graphs here (re-used when present)")
    args = ap.parse_args()

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.onnx.session import SessionConfig, create_session, default_threads

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    parts = PARTS + ([("reconstruction", "reconstruction")] if args.reconstruction else [])
    cards = [c for c, _ in parts]
    tmp = args.out or Path(tempfile.mkdtemp(prefix="fx-onnx-bench-"))
    t0 = time.perf_counter()
    graphs = {}
    for opset in args.opsets:
        folder = tmp / f"opset{opset}"
        done = {c: folder / c / f"{p}.onnx" for c, p in parts}
        graphs[opset] = done if all(p.is_file() for p in done.values()) else export(cards, folder, opset)
    print(f"exported and parity-checked {len(cards)} graphs x {len(args.opsets)} opsets in "
          f"{time.perf_counter() - t0:.0f} s ({tmp})")

    torch.manual_seed(0)
    models = {c: build_model(c).eval() for c in cards}
    cfg = SessionConfig(device="cpu", intra_op_threads=threads)
    sessions = {(c, o): create_session(graphs[o][c], cfg) for o in graphs for c in cards}
    rows = []
    for batch in (1, 8):
        with torch.inference_mode():
            images = torch.rand(batch, 3, 518, 518)
            tokens, pos = models["dinov2-vits14"](images)
            expr = models["expression-transformer"](tokens, pos, torch.zeros(batch, dtype=torch.long))
        feeds = {
            "dinov2-vits14": (images,),
            "expression-transformer": (tokens, pos, torch.zeros(batch, dtype=torch.long)),
            "reconstruction": (expr, torch.zeros(batch, dtype=torch.long), pos),
        }
        for card in cards:
            inputs = feeds[card]
            sess_inputs = {o: dict(zip([i.name for i in sessions[(card, o)].get_inputs()],
                                       [t.numpy() for t in inputs], strict=True)) for o in graphs}
            fns = {"eager": lambda card=card, inputs=inputs: models[card](*inputs)}
            for o in graphs:
                fns[f"ort{o}"] = lambda s=sessions[(card, o)], f=sess_inputs[o]: s.run(None, f)
            with torch.inference_mode():
                times = interleaved(fns, args.rounds)
            rows.append({"card": card, "batch": batch, **{k: v for k, v in times.items()}})
            print(f"  timed {card} batch {batch}", flush=True)
    report(rows, list(graphs), threads, args.rounds)


def report(rows: list[dict], opsets: list[int], threads: int, rounds: int) -> None:
    engines = ["eager"] + [f"ort{o}" for o in opsets]
    print(f"\nCPU, {threads} thread(s), {rounds} interleaved rounds; median (best) per call. Machine shared: "
          "compare columns within a row, not across runs.\n")
    head = f"{'part':<24}{'batch':>6}" + "".join(f"{e:>22}" for e in engines) + "".join(
        f"{'x ' + e:>14}" for e in engines[1:])
    print(head)
    print("-" * len(head))

    def line(name: str, batch: int, per: dict[str, list[float]]) -> None:
        cells, ratio = [], []
        for e in engines:
            med, best = statistics.median(per[e]), min(per[e])
            if batch == 1:
                cells.append(f"{med * 1000:>10.1f} ({best * 1000:>6.1f}) ms")
            else:
                cells.append(f"{batch / med:>9.2f} ({batch / best:>6.2f}) f/s")
        for e in engines[1:]:
            ratio.append(f"{statistics.median(per['eager']) / statistics.median(per[e]):>13.2f}x")
        print(f"{name:<24}{batch:>6}" + "".join(f"{c:>22}" for c in cells) + "".join(ratio))

    for batch in (1, 8):
        sel = [r for r in rows if r["batch"] == batch]
        for r in sel:
            line(r["card"], batch, r)
        path = [r for r in sel if r["card"] in ("dinov2-vits14", "expression-transformer")]
        if len(path) == 2:  # per frame: the two calls in sequence, round by round
            both = {e: [a + b for a, b in zip(path[0][e], path[1][e], strict=True)] for e in engines}
            line("tokenizer + expression", batch, both)
    print("\nTarget: ORT >= 1.3x eager on the tokenizer + expression path (the 'x' columns: eager / ORT, medians).")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
