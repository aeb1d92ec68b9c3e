"""Demo: `fx extract-feats` on the sample video with the export step's ONNX graphs and with the trained run (Torch).

Shows the product path of the expression model: face trajectory -> square crops -> tokens, both backends
agreeing within the card's tolerance, and what ``--smooth`` does to a trajectory of tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

from faceexpr_cli.demo.framework import DemoContext, demo_step


def _run_dir(ctx: DemoContext, export: Path) -> Path:
    """The run the export came from: the train step's, else the one report.json names."""
    if "train_run" in ctx.state:
        return Path(ctx.state["train_run"])
    source = str(json.loads((export / "report.json").read_text(encoding="utf-8")).get("source", ""))
    if not source.startswith("run "):
        from faceexpr_cli.errors import DataError

        raise DataError(f"{export}/report.json does not name the run it was exported from ({source!r})")
    return Path(source[4:])


def _plot(path: Path, times, onnx_raw, torch_tokens, smoothed, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from faceexpr_cli.train.evaluate import pca_2d

    both = np.concatenate([onnx_raw, torch_tokens, smoothed]).astype(np.float64)
    proj, var = pca_2d(both)
    n = len(onnx_raw)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharex=True)
    for k, ax in enumerate(axes):
        ax.plot(times, proj[:n, k], color="tab:blue", lw=1.2, label="onnx")
        ax.plot(times, proj[n:2 * n, k], color="tab:orange", lw=1.0, ls="--", label="torch")
        ax.plot(times, proj[2 * n:, k], color="black", lw=1.8, alpha=0.7, label="onnx --smooth")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"PC{k + 1} ({var[k]:.0%})")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


@demo_step("extract", "fx extract-feats: expression tokens per face trajectory, ONNX vs Torch", order=65,
           needs=("sample_video", "onnx_export"))
def extract_feats(ctx: DemoContext) -> None:
    import numpy as np

    from faceexpr_cli.extract import ExpressionModel, ExtractOptions, extract_features, read_features

    video = Path(ctx.state["sample_video"])
    export = Path(ctx.state["onnx_export"])
    run_dir = _run_dir(ctx, export)
    results, arrays = {}, {}
    for backend, model, opts in (("onnx", export, ExtractOptions(smooth=True)),
                                 ("torch", run_dir, ExtractOptions())):
        out = ctx.path(f"extract/{backend}/.keep").parent
        res = extract_features([video], ExpressionModel.load(model, backend), out, opts, resume=False)
        results[backend] = res
        arrays[backend] = read_features(out / res.rows[0]["npz"])
    o, t = arrays["onnx"], arrays["torch"]
    same_frames = bool(np.array_equal(o["frame_ind"], t["frame_ind"]))
    diff = float(np.abs(o["tokens_raw"] - t["tokens"]).max()) if same_frames else float("inf")
    atol = ExpressionModel.load(export, "onnx").atol
    sel = o["traj"] == 0
    plot = _plot(ctx.path("extract/tokens.png"), o["time"][sel], o["tokens_raw"][sel], t["tokens"][sel],
                 o["tokens"][sel], f"{video.name}, trajectory 0: expression tokens (first two principal components)")
    ctx.image(plot, "tokens along the face trajectory: ONNX (blue), Torch (dashed, on top of it) and ONNX with "
                    "--smooth (black)")
    rows = []
    for backend, res in results.items():
        r, s = res.rows[0], res.stats
        rows.append({"backend": backend, "model": Path(s["model"]["model"]).name, "status": r["status"],
                     "trajectories": r["trajectories"], "tokens": r["tokens"], "dim": r["token_dim"],
                     "no-face frames": r["no_face_frames"], "model s": s["model_seconds"],
                     "frames/s": s["model_frames_per_second"], "json": r["json"]})
    ctx.table(rows, "fx extract-feats sample.mp4 --model EXPORT --backend onnx --smooth  /  --model RUN "
                    "--backend torch (features.parquet rows)")
    jitter = {k: float(np.abs(np.diff(v[sel], axis=0)).mean()) for k, v in
              (("raw", o["tokens_raw"]), ("smoothed", o["tokens"]))}
    ctx.text(f"--backend onnx vs --backend torch over {len(t['tokens'])} face frames: max |difference| {diff:.1e} "
             f"(card tolerance {atol:g}). --smooth ({ExtractOptions().smooth_hz:g} Hz) lowers the mean frame-to-frame "
             f"token change from {jitter['raw']:.4f} to {jitter['smoothed']:.4f}. Per-video JSON (seed layout) "
             f"and .npz under {ctx.path('extract')}.")
    ctx.state["features_index"] = results["onnx"].index
    ctx.summary(tokens=int(len(t["tokens"])), token_max_diff=diff, within_tolerance=diff <= atol,
                trajectories=int(results["onnx"].rows[0]["trajectories"]))
    if diff > atol:
        from faceexpr_cli.onnx.export import ParityError

        raise ParityError(f"extract-feats: ONNX tokens differ from Torch tokens by {diff:.3g} > {atol:g}")
