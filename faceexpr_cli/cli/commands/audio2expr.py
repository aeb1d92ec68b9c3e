"""`fx audio2expr` (eval, export, betas, sample), `fx train audio2expr` and `fx train emotion-adding` (seed 003)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt, OverridesArg

audio_app = typer.Typer(help="Speech-driven expression: evaluate, export and inspect `fx train audio2expr` runs "
                        "(docs/audio.md).\n\nExamples: [cyan]fx audio2expr eval runs/a2e --clips held-out/[/], "
                        "[cyan]fx audio2expr sample speaker.mp4 --seed 3[/]", no_args_is_help=True)

RunArg = Annotated[Path, typer.Argument(help="A `fx train audio2expr` run (or one of its checkpoints).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/<recipe>).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its latest checkpoint.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: the recipe's).")]
FaceBackendOpt = Annotated[str, typer.Option("--face-backend", help="Face layer backend measuring the landmarks.")]


def _print_run(summary: dict, title: str, json_out: bool) -> None:
    from faceexpr_cli.console import print_json, print_table

    if json_out:
        print_json(summary)
        return
    first, last = summary.get("first", {}), summary.get("last", {})
    rows = [{"scalar": k, "first": f"{first.get(k, float('nan')):.5g}", "last": f"{v:.5g}"}
            for k, v in last.items() if k != "step"]
    print_table(rows, ["scalar", "first", "last"], title=title)


def train_audio2expr(
    overrides: OverridesArg = None,
    recipe: Annotated[str | None, typer.Option("--recipe", "-r", help="Recipe name or path.")] = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train speech -> expression (ExpNet-style) on talking-face clips that keep their audio.

    Examples: [cyan]fx train audio2expr --recipe audio2expr-tiny data.path=clips/ --out runs/a2e-tiny[/],
    [cyan]fx train audio2expr --recipe audio2expr data.path=crops/ trainer.max_steps=5000 --out runs/a2e[/],
    [cyan]fx train audio2expr --out runs/a2e --resume[/],
    [cyan]torchrun --nproc_per_node 2 -m faceexpr_cli train audio2expr --recipe audio2expr data.path=crops/[/]
    """
    import os

    from faceexpr_cli.audio2expr.training import run, run_summary
    from faceexpr_cli.config.recipes import load_recipe

    name = recipe or "audio2expr"
    run_dir = out or Path("runs") / Path(name).stem
    source: str | Path = name
    if resume and recipe is None and (run_dir / "recipe.yaml").is_file():
        source = run_dir / "recipe.yaml"
    cfg = load_recipe(source, overrides or [], kind="train-audio2expr")
    result = run(cfg, run_dir, resume=resume, device=device)
    if int(os.environ.get("RANK", "0")) == 0:
        _print_run(run_summary(result), f"audio2expr: {result.steps} steps on {result.clips} clip(s) -> "
                                        f"{result.checkpoint}", json_out)


def train_emotion_adding(
    overrides: OverridesArg = None,
    model: Annotated[str, typer.Option("--model", help="linear or transformer.")] = "linear",
    source_betas: Annotated[Path | None, typer.Option("--source-betas", help="Folder of neutral expression "
                                                      "sequences (fx audio2expr betas).")] = None,
    target_betas: Annotated[Path | None, typer.Option("--target-betas", help="Folder of emotional sequences, "
                                                      "paired with the neutral ones by file name.")] = None,
    recipe: Annotated[str | None, typer.Option("--recipe", "-r", help="Recipe name or path (default: "
                                               "emotion-adding-<model>).")] = None,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train emotion adding: a 5-frame context of neutral expressions -> emotional ones (seed 003's fork).

    Examples: [cyan]fx train emotion-adding --model linear --source-betas betas/neutral --target-betas betas/happy --out runs/happy[/],
    [cyan]fx train emotion-adding --model transformer --source-betas n/ --target-betas h/ max_steps=2000[/]
    """
    from faceexpr_cli.audio2expr.emotion import train_emotion
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.errors import UsageError

    if model not in ("linear", "transformer"):
        raise UsageError(f"--model {model}: use linear or transformer")
    name = recipe or f"emotion-adding-{model}"
    extra = [f"model.card=emotion-adding-{model}"] if recipe is None else []
    extra += [f"data.source_betas={source_betas}"] if source_betas else []
    extra += [f"data.target_betas={target_betas}"] if target_betas else []
    cfg = load_recipe(name, [*extra, *(overrides or [])], kind="train-emotion-adding")
    summary = train_emotion(cfg, out or Path("runs") / Path(name).stem)
    _print_run(summary, f"emotion adding ({model}): {summary['steps']} steps on {summary['pairs']} pair(s) -> "
                        f"{summary['checkpoint']}", json_out)


@audio_app.command("eval")
def audio_eval(
    run: RunArg,
    clips: Annotated[Path, typer.Option("--clips", help="Held-out talking-face clips with audio.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics.json and mouth.png.")] = Path(
        "audio2expr-eval"),
    backend: Annotated[str, typer.Option("--backend", help="torch or onnx.")] = "torch",
    face_backend: FaceBackendOpt = "dlib",
    max_lag: Annotated[int, typer.Option("--max-lag", min=0, help="Sync lag search range in frames.")] = 5,
    json_out: JsonOpt = False,
) -> None:
    """Lip vertex error, expression L2 and an audio-visual sync proxy (mouth vs speech envelope) on clips.

    Examples: [cyan]fx audio2expr eval runs/a2e --clips held-out/ --out eval/[/],
    [cyan]fx audio2expr eval runs/a2e --clips crops/ --backend onnx --json[/]
    """
    from faceexpr_cli.audio2expr.evaluate import evaluate_run
    from faceexpr_cli.console import print_json, print_table
    from faceexpr_cli.errors import UsageError

    if backend not in ("torch", "onnx"):
        raise UsageError(f"--backend {backend}: use torch or onnx")
    summary = evaluate_run(run, clips, out, face_backend=face_backend, backend=backend, max_lag=max_lag)
    if json_out:
        print_json(summary)
        return
    keys = ("lve", "expression_l2", "mouth_correlation", "sync_correlation", "sync_lag_ms",
            "measured_sync_correlation")
    print_table([{"metric": k, "value": "n/a" if summary[k] is None else f"{summary[k]:.4f}"} for k in keys],
                ["metric", "value"],
                title=f"audio2expr eval: {summary['clips']} clip(s) -> {summary['metrics']}")


@audio_app.command("export")
def audio_export(
    run: RunArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for audio2expr.onnx and its report.")] = Path(
        "audio2expr-onnx"),
    json_out: JsonOpt = False,
) -> None:
    """Export a run's model to ONNX (mel, reference, blink -> expression, offsets) with PyTorch parity checks.

    Examples: [cyan]fx audio2expr export runs/a2e --out onnx/a2e[/],
    [cyan]fx audio2expr export runs/a2e/checkpoints/step_002000 --json[/]
    """
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel, export
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json

    report = export(Audio2ExprModel.load(run), out)
    if json_out:
        print_json(report)
        return
    part = report["models"][0]["parts"][0]
    worst = max((c.get("max_abs", 0.0) for c in part.get("parity", [])), default=0.0)
    stdout.print(f"{out / part['file']}: parity with PyTorch max abs {worst:.2e} ({len(part['parity'])} checks)")


@audio_app.command("betas")
def audio_betas(
    clips: Annotated[Path, typer.Argument(help="Talking-face clips with audio (fx crop / fx clip output).")],
    run: Annotated[Path, typer.Option("--run", help="The audio2expr run whose basis (and model) to use.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of <clip>.npz expression sequences.")],
    predicted: Annotated[bool, typer.Option("--predicted", help="The run's prediction from each clip's audio "
                                            "instead of the measured expression.")] = False,
    face_backend: FaceBackendOpt = "dlib",
    json_out: JsonOpt = False,
) -> None:
    """Write each clip's expression sequence (measured, or predicted from its audio) for emotion adding.

    Examples: [cyan]fx audio2expr betas neutral-clips/ --run runs/a2e --out betas/neutral --predicted[/],
    [cyan]fx audio2expr betas happy-clips/ --run runs/a2e --out betas/happy[/]
    """
    from faceexpr_cli.audio2expr.betas import write_betas
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json

    result = write_betas(clips, run, out, predicted=predicted, face_backend=face_backend)
    if json_out:
        print_json(result)
    else:
        stdout.print(f"{result['out']}: {result['clips']} expression sequence(s) "
                     f"({'predicted' if predicted else 'measured'}, {result['dim']} coefficients)")


@audio_app.command("sample")
def audio_sample(
    out: Annotated[Path, typer.Argument(help="Video to write (.mp4, with its voice track).")],
    seed: Annotated[int, typer.Option("--seed", help="Which syllable pattern.")] = 0,
    seconds: Annotated[float, typer.Option("--seconds", min=0.5, max=60, help="Length.")] = 4.0,
    portrait: Annotated[str, typer.Option("--portrait", help="astronaut or grace_hopper.")] = "astronaut",
    size: Annotated[int, typer.Option("--size", min=96, max=512, help="Square frame side.")] = 160,
    json_out: JsonOpt = False,
) -> None:
    """Write a speaking portrait: the jaw and lips move with a voice whose loudness is the mouth opening.

    Examples: [cyan]fx audio2expr sample speaker.mp4 --seed 3[/],
    [cyan]fx audio2expr sample clips/b.mp4 --portrait grace_hopper --seconds 6 --json[/]
    """
    from faceexpr_cli.audio2expr.sample import make_speaking_portrait
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json
    from faceexpr_cli.errors import UsageError
    from faceexpr_cli.samples import PORTRAITS

    if portrait not in PORTRAITS:
        raise UsageError(f"--portrait {portrait}: use one of {', '.join(PORTRAITS)}")
    result = make_speaking_portrait(out, portrait=portrait, seconds=seconds, size=size, seed=seed)
    info = {"out": str(result.path), "frames": len(result.mouth_open), "fps": result.fps, "seed": seed}
    if json_out:
        print_json(info)
    else:
        stdout.print(f"{out}: {info['frames']} frames at {result.fps:g} fps, speaking portrait (seed {seed})")


def register(app: typer.Typer) -> None:
    from faceexpr_cli.cli.commands.train import train_app

    app.add_typer(audio_app, name="audio2expr")
    train_app.command("audio2expr")(train_audio2expr)
    train_app.command("emotion-adding")(train_emotion_adding)
