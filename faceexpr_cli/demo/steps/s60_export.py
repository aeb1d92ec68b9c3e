"""Demo: export the trained run's tokenizer and expression transformer to ONNX, then plot tokens made by the graphs.

Uses the run of the train step when there is one; otherwise trains the tiny recipe for a few steps first, so that
``fx demo --only sample --only export`` works on its own.
"""

from __future__ import annotations

from pathlib import Path

from faceexpr_cli.demo.framework import DemoContext, demo_step


def _run_dir(ctx: DemoContext) -> Path:
    if "train_run" in ctx.state:
        return Path(ctx.state["train_run"])
    import shutil

    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.data import make_sample_clips
    from faceexpr_cli.train.runner import run

    clips = make_sample_clips(ctx.path("export/clips/.keep").parent, seconds=1.0, size=56, clips_per_subject=1)
    recipe = load_recipe("joint-tiny", [f"data.path={clips}", "trainer.max_steps=4", "trainer.save_every=4",
                                        "trainer.eval_every=0", "trainer.log_every=2"])
    run_dir = ctx.path("export/run/.keep").parent
    shutil.rmtree(run_dir, ignore_errors=True)
    run(recipe, run_dir)
    ctx.text("No train step ran before this one: trained the tiny recipe for 4 steps to have a run to export.")
    return run_dir


def _clip(run_dir: Path) -> tuple[Path, str]:
    from faceexpr_cli.config.yaml_io import read_yaml

    data = read_yaml(run_dir / "recipe.yaml").get("data") or {}
    clips = sorted(Path(str(data.get("path", ""))).rglob("*.mp4"))
    if not clips:
        from faceexpr_cli.errors import DataError

        raise DataError(f"no clips found under the run's data.path ({data.get('path')})")
    return clips[0], clips[0].parent.name


@demo_step("export", "Export to ONNX and extract expression tokens with ONNX Runtime", order=60)
def export_onnx(ctx: DemoContext) -> None:
    import json

    import numpy as np

    from faceexpr_cli.media import probe, read_frames
    from faceexpr_cli.onnx.export import ExportOptions, export_models
    from faceexpr_cli.onnx.predictor import load_chain
    from faceexpr_cli.onnx.runs import run_sources
    from faceexpr_cli.train.evaluate import token_plot

    run_dir = _run_dir(ctx)
    out = ctx.path("export/onnx/.keep").parent
    sources = run_sources(run_dir, models=["tokenizer", "expression"])
    report = export_models(sources, out, ExportOptions(latency_runs=5), source_label=f"run {run_dir}")
    rows = []
    for m in report["models"]:
        for p in m["parts"]:
            worst = max(o["max_abs"] for c in p["parity"] for o in c["outputs"])
            rows.append({"graph": f"{m['folder']}/{p['file']}", "MB": round(p["bytes"] / 2**20, 2),
                         "inputs": ", ".join(f"{i['name']} {i['shape']}" for i in p["inputs"]),
                         "checks": ", ".join(c["check"] for c in p["parity"]), "max |ORT - torch|": f"{worst:.1e}",
                         "ms (batch 1)": p["latency"]["median_ms"]})
    ctx.table(rows, "fx export-onnx RUN --model tokenizer --model expression: graphs, parity and latency")

    clip, subject = _clip(run_dir)
    frames = read_frames(clip)
    subjects = json.loads((run_dir / "subjects.json").read_text())["subjects"]
    row = subjects.index(subject) if subject in subjects else 0
    onnx_chain = load_chain("onnx", out, outputs=["expression"])
    torch_chain = load_chain("torch", run_dir, outputs=["expression"])
    onnx_tokens = onnx_chain.run_frames(frames, batch_size=16, subject_ids=row)["expression"]
    torch_tokens = torch_chain.run_frames(frames, batch_size=16, subject_ids=row)["expression"]
    diff = float(np.abs(onnx_tokens - torch_tokens).max())
    atol = onnx_chain.predictors[-1].part.atol
    plot = token_plot(ctx.path("export/tokens_onnx.png"), onnx_tokens, fps=probe(clip).fps,
                      title=f"expression tokens from the ONNX graphs ({clip.name}, {len(frames)} frames)")
    ctx.image(plot, "expression-token trajectory (PCA) computed by ONNX Runtime (--backend onnx)")
    ctx.text(f"--backend onnx vs --backend torch on {len(frames)} frames of {clip.name}: max |difference| "
             f"{diff:.1e} (card tolerance {atol:g}); graphs and report.json in {out}.")
    ctx.state["onnx_export"] = out
    ctx.summary(graphs=len(rows), ok=report["ok"], token_max_diff=diff, within_tolerance=diff <= atol,
                frames=len(frames))
    if diff > atol:
        from faceexpr_cli.onnx.export import ParityError

        raise ParityError(f"ONNX tokens differ from Torch tokens by {diff:.3g} > {atol:g}")
