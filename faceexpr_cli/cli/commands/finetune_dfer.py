"""`fx finetune-dfer`: dynamic facial expression recognition (seed 004, MAE-DFER): fine-tune a video model on
labelled clips, evaluate it (UAR/WAR), run k folds, export it to ONNX and predict on single videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt, OverridesArg

dfer_app = typer.Typer(help="Dynamic facial expression recognition: fine-tune, evaluate, predict (docs/dfer.md).\n\n"
                       "Examples: [cyan]fx finetune-dfer train --recipe dfer-tiny --train sample --test sample "
                       "--out runs/dfer-tiny[/], [cyan]fx finetune-dfer predict talk.mp4 --model runs/dfer-tiny[/]",
                       no_args_is_help=True)

RecipeOpt = Annotated[str, typer.Option("--recipe", "-r", help="Recipe name (recipes/NAME.yaml) or path.")]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="A fine-tuning run, its classifier.safetensors or an "
                                                              "ONNX export folder.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: the recipe's).")]


def _sample_data(run_dir: Path) -> tuple[Path, Path]:
    from faceexpr_cli.dfer.synthetic import make_synthetic

    data = make_synthetic(run_dir / "sample")
    return data.train, data.test


def train(
    overrides: OverridesArg = None,
    recipe: RecipeOpt = "dfer-tiny",
    train_file: Annotated[str | None, typer.Option("--train", help="Training annotations ('sample': synthetic "
                                                                   "clips written into the run).")] = None,
    test_file: Annotated[str | None, typer.Option("--test", help="Test annotations, evaluated at each evaluation "
                                                                 "and at the end.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/<recipe>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its latest "
                                                          "checkpoint.")] = False,
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fine-tune a video model on labelled clips; the best checkpoint (test WAR or UAR) goes to RUN/best.

    Annotation formats are detected by content: MAE-DFER (`path label`), DFER-CLIP (`path frames label`), CSV or
    Parquet with a header (`path,label[,pitch,yaw...]`), DFEW split files (`video_name,label`, labels 1-7).

    Examples:
      [cyan]fx finetune-dfer train --recipe dfer-tiny --train sample --test sample --out runs/dfer-tiny[/]
      [cyan]fx finetune-dfer train --recipe dfer-videomae-base --train dfew/train_1.txt --test dfew/test_1.txt
      --out runs/dfew-1 model.init=videomae_pretrain.pth[/]
      [cyan]fx finetune-dfer train --out runs/dfer-tiny --resume[/]
    """
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.console import print_json, print_table
    from faceexpr_cli.dfer.finetune import run

    run_dir = out or Path("runs") / Path(recipe).stem
    source: str | Path = recipe
    if resume and (run_dir / "recipe.yaml").is_file():
        source = run_dir / "recipe.yaml"
    extra = []
    if train_file == "sample" and test_file == "sample":
        tr, te = _sample_data(run_dir)
        train_file, test_file = str(tr), str(te)
    extra += [f"data.train={train_file}"] if train_file else []
    extra += [f"data.test={test_file}"] if test_file else []
    cfg = load_recipe(source, [*(overrides or []), *extra], kind="finetune-dfer")
    result = run(cfg, run_dir, resume=resume, device=device)
    final = result.final or {}
    summary = {"run": str(result.run_dir), "steps": result.steps, "checkpoint": str(result.checkpoint),
               "best": result.best, "uar": final.get("uar"), "war": final.get("war"),
               "per_class_recall": final.get("per_class_recall")}
    if json_out:
        print_json(summary)
        return
    rows = [{"metric": k, "value": f"{v:.4f}"} for k, v in (("UAR", final.get("uar")), ("WAR", final.get("war")))
            if v is not None]
    if result.best:
        rows.append({"metric": f"best {result.best['by'].upper()}",
                     "value": f"{result.best['score']:.4f} (step {result.best['step']})"})
    print_table(rows, ["metric", "value"], title=f"finetune-dfer: {result.steps} steps -> {result.run_dir}")


def evaluate(
    model: ModelOpt,
    test_file: Annotated[Path, typer.Option("--test", help="Annotation file to evaluate on.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics.json, confusion.png, "
                                                          "predictions.csv.")],
    backend: Annotated[str, typer.Option("--backend", help="torch or onnx.")] = "torch",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "cpu",
    json_out: JsonOpt = False,
) -> None:
    """UAR, WAR, per-class recall and the confusion matrix (counts and a picture), plus per-clip predictions.

    Examples:
      [cyan]fx finetune-dfer eval --model runs/dfer-tiny --test runs/dfer-tiny/sample/test.csv --out eval/[/]
      [cyan]fx finetune-dfer eval --model runs/dfew-1 --test dfew/test_1.txt --out eval/dfew-1 --backend onnx[/]
    """
    from faceexpr_cli.console import print_json, print_table, progress
    from faceexpr_cli.devices import check_device
    from faceexpr_cli.dfer.annotations import read_annotations
    from faceexpr_cli.dfer.clips import ClipReader
    from faceexpr_cli.dfer.evaluate import evaluate as run_eval
    from faceexpr_cli.dfer.evaluate import write_report
    from faceexpr_cli.dfer.predict import load_predictor
    from faceexpr_cli.runlock import output_lock

    dev = check_device(device, backend="onnx" if backend == "onnx" else "torch")
    with output_lock(out, "fx finetune-dfer eval"):
        runner, classes, sampling = load_predictor(model, backend, dev)
        ann = read_annotations(test_file, classes)
        with progress() as bar:
            task = bar.add_task("eval", total=len(ann))
            result, probs = run_eval(ann, classes, ClipReader(sampling.size), sampling, runner,
                                     lambda: bar.advance(task))
        files = write_report(out, ann, result, probs, classes)
    if json_out:
        print_json({**result, "files": {k: str(v) for k, v in files.items()}})
        return
    rows = [{"class": c, "recall": "-" if r is None else f"{r:.4f}", "clips": result["support"][c]}
            for c, r in result["per_class_recall"].items()]
    print_table(rows, ["class", "recall", "clips"],
                title=f"UAR {result['uar']:.4f}  WAR {result['war']:.4f}  ({result['clips']} clips) -> {out}")


def predict(
    inputs: Annotated[list[Path], typer.Argument(help="Videos, frame folders, or folders of videos.")],
    model: ModelOpt,
    backend: Annotated[str, typer.Option("--backend", help="torch or onnx (a run is exported on first use).")]
    = "torch",
    crop: Annotated[str, typer.Option("--crop", help="auto (crop when the face does not fill the frame), always "
                                                     "or never.")] = "auto",
    face_backend: Annotated[str, typer.Option("--face-backend", help="Face detector for cropping (dlib, auto, "
                                                                     "...).")] = "default",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "cpu",
    json_out: JsonOpt = False,
) -> None:
    """Per video: the expression label and the class probabilities (faces found and cropped first).

    Examples:
      [cyan]fx finetune-dfer predict talk.mp4 --model runs/dfer-tiny[/]
      [cyan]fx finetune-dfer predict clips/ --model runs/dfer-tiny/export --backend onnx --json[/]
    """
    from faceexpr_cli.console import print_table, progress
    from faceexpr_cli.devices import check_device
    from faceexpr_cli.dfer.predict import predict as run_predict
    from faceexpr_cli.dfer.predict import to_json

    dev = check_device(device, backend="onnx" if backend == "onnx" else "torch")
    with progress() as bar:
        task = bar.add_task("predict", total=None)
        preds = run_predict(inputs, model, backend=backend, device=dev, crop=crop, face_backend=face_backend,
                            on_item=lambda: bar.advance(task))
    if json_out:
        from faceexpr_cli.console import out

        out.print(to_json(preds), markup=False, highlight=False)
        return
    rows = [{"path": p.path, "label": p.label, "p": f"{p.probabilities[p.label]:.3f}",
             "faces": p.faces if p.cropped else "(crop)"} for p in preds]
    print_table(rows, ["path", "label", "p", "faces"], title=f"{len(preds)} clip(s), {backend}")


def export(
    model: ModelOpt,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Export folder (default: RUN/export).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Export the classifier to ONNX (dynamic batch), checked against PyTorch; `predict --backend onnx` uses it.

    Examples:
      [cyan]fx finetune-dfer export --model runs/dfer-tiny[/]
      [cyan]fx finetune-dfer export --model runs/dfer-tiny/best/classifier.safetensors --out exported/dfer[/]
    """
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json
    from faceexpr_cli.dfer.predict import export_classifier

    target = export_classifier(model, out)
    if json_out:
        print_json({"export": str(target)})
    else:
        stdout.print(str(target / "classifier.onnx"))


def folds(
    overrides: OverridesArg = None,
    recipe: RecipeOpt = "dfer-videomae-base",
    folds_dir: Annotated[Path, typer.Option("--folds", help="Folder of per-fold annotation pairs "
                                                           "(train_1.csv / test_1.csv, ...).")] = Path("folds"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for one run per fold and the summary.")]
    = Path("runs/folds"),
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """k-fold runs (DFEW's five) and a table of UAR and WAR per fold with mean and standard deviation.

    Examples:
      [cyan]fx finetune-dfer folds --recipe dfer-videomae-base --folds dfew/annotations --out runs/dfew[/]
      [cyan]fx finetune-dfer folds --recipe dfer-tiny --folds folds/ --out runs/folds trainer.max_steps=100[/]
    """
    from faceexpr_cli.console import print_json, print_table
    from faceexpr_cli.dfer.folds import run_folds

    summary = run_folds(recipe, list(overrides or []), folds_dir, out, device)
    if json_out:
        print_json(summary)
        return
    rows = [{"fold": str(r["fold"]), "UAR": f"{r['uar']:.4f}", "WAR": f"{r['war']:.4f}"} for r in summary["folds"]]
    rows.append({"fold": "mean", "UAR": f"{summary['uar_mean']:.4f}", "WAR": f"{summary['war_mean']:.4f}"})
    rows.append({"fold": "std", "UAR": f"{summary['uar_std']:.4f}", "WAR": f"{summary['war_std']:.4f}"})
    print_table(rows, ["fold", "UAR", "WAR"], title=f"{len(summary['folds'])} folds -> {out}")


def make_sample(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the clips and train.txt / test.csv.")],
    train_per_class: Annotated[int, typer.Option("--train-per-class", min=1, help="Training clips per class.")] = 16,
    test_per_class: Annotated[int, typer.Option("--test-per-class", min=1, help="Test clips per class.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the clips' motions.")] = 0,
) -> None:
    """Write the synthetic expression clips (still, mouth_open, smile, blink) and their annotations.

    Examples:
      [cyan]fx finetune-dfer make-sample --out /tmp/dfer-sample[/]
      [cyan]fx finetune-dfer make-sample --out /tmp/dfer-sample --train-per-class 4 --test-per-class 2[/]
    """
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.dfer.synthetic import make_synthetic
    from faceexpr_cli.runlock import output_lock

    with output_lock(out, "fx finetune-dfer make-sample"):
        data = make_synthetic(out, train_per_class=train_per_class, test_per_class=test_per_class, seed=seed)
    stdout.print(f"{data.train}\n{data.test}")


def register(app: typer.Typer) -> None:
    dfer_app.command("train")(train)
    dfer_app.command("eval")(evaluate)
    dfer_app.command("predict")(predict)
    dfer_app.command("export")(export)
    dfer_app.command("folds")(folds)
    dfer_app.command("make-sample")(make_sample)
    app.add_typer(dfer_app, name="finetune-dfer")
