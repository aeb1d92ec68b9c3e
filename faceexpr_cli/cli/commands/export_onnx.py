"""`fx export-onnx`: export a run's models (or a checkpoint, or a card) to verified ONNX graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt, OutDirOpt


def export_onnx(
    target: Annotated[str, typer.Argument(help="Run directory from `fx train`, a checkpoint file, or a model card.")],
    out: OutDirOpt,
    opset: Annotated[int | None, typer.Option("--opset", help="ONNX opset, 18 up to what the installed torch/onnx "
                                                              "export (default: the card's, 18; 23 writes attention "
                                                              "as one op).")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write <part>.fp16.onnx, checked with fp16_atol.")] = False,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch/--static",
                                                help="Keep the card's dynamic axes, or fix every size.")] = True,
    all_models: Annotated[bool, typer.Option("--all", help="Every model of a run directory (the default; "
                                                           "kept for scripts that pass it).")] = False,
    model: Annotated[list[str] | None, typer.Option("--model", help="Only these models of a run, by role or card "
                                                                    "(repeatable; default: all of them).")] = None,
    card: Annotated[str | None, typer.Option("--card", help="Card for a checkpoint that carries none.")] = None,
    tiny: Annotated[bool, typer.Option("--tiny", help="The card's tiny test variant, random init.")] = False,
    random_init: Annotated[bool, typer.Option("--random-init", help="Export a card with untrained weights.")] = False,
    part: Annotated[list[str] | None, typer.Option("--part", help="Only these parts (repeatable).")] = None,
    simplify: Annotated[bool, typer.Option("--simplify/--no-simplify", help="Simplify graphs with onnxslim.")] = True,
    device: Annotated[str, typer.Option("--device", help="ONNX Runtime device for the checks: cpu, cuda, "
                                                          "tensorrt or auto.")] = "cpu",
    allow_cpu_fallback: Annotated[bool, typer.Option("--allow-cpu-fallback",
                                                     help="Run on CPU when cuda/tensorrt cannot load.")] = False,
    threads: Annotated[int, typer.Option("--threads", min=0, help="ONNX Runtime intra-op threads (0: all).")] = 0,
    latency_runs: Annotated[int, typer.Option("--latency-runs", min=1, help="Timed runs per graph.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Export each ONNX part a model card lists, check it against PyTorch, write graphs + card + report.json.

    Each graph passes onnx.checker and is compared with PyTorch on fixed random inputs, on real face crops and at
    batch 1 and 3 on the same graph; a difference past the card's tolerance fails the command (exit 1). "ms" is the
    median ONNX Runtime latency at batch 1 on the providers the session got. The export is built beside --out and
    moved in only when every part passed: a failure leaves an earlier export in --out as it was and writes
    report.failed.json.

    Examples:
      [cyan]fx export-onnx runs/joint-tiny --out exported[/] (every model of the run)
      [cyan]fx export-onnx runs/joint-tiny --model expression --out exported[/]
      [cyan]fx export-onnx fomm-vox256 --tiny --out /tmp/fomm-onnx --fp16[/]
      [cyan]fx export-onnx runs/joint/expression.safetensors --out exported --static[/]
    """
    from faceexpr_cli.console import print_json
    from faceexpr_cli.onnx.export import ExportOptions, ParityError, check_opset, export_models, failure_line
    from faceexpr_cli.onnx.session import SessionConfig, parse_device
    from faceexpr_cli.onnx.sources import resolve_sources
    from faceexpr_cli.onnx.staging import FAILED_REPORT
    from faceexpr_cli.runlock import output_lock

    parse_device(device)
    check_opset(opset)
    sources, label = resolve_sources(target, card=card, models=model or None, all_models=all_models, tiny=tiny,
                                     random_init=random_init)
    opts = ExportOptions(opset=opset, dynamic_batch=dynamic_batch, fp16=fp16, simplify=simplify, tiny=tiny,
                         latency_runs=latency_runs, parts=part or None,
                         session=SessionConfig(device=device, allow_cpu_fallback=allow_cpu_fallback,
                                               intra_op_threads=threads))
    with output_lock(out, "fx export-onnx") as locked:
        report = export_models(sources, locked, opts, source_label=label, raise_on_failure=False)
    if json_out:
        print_json(report)
    else:
        show(report, out)
    if not report["ok"]:
        raise ParityError(failure_line(report), f"see {Path(out) / FAILED_REPORT}; the export already in "
                                                f"{out} (if any) is left as it was")


def show(report: dict, out: Path) -> None:
    from faceexpr_cli.console import err, print_table

    rows, errors = [], []
    for m in report["models"]:
        if m.get("error"):
            errors.append(f"{m['card']}: {m['error']}")
        for p in m["parts"]:
            if p.get("error"):
                errors.append(f"{m['card']}.{p['name']}: {p['error']}")
                continue
            for g in [p] + ([p["fp16"]] if p.get("fp16") else []):
                worst = max((o["max_abs"] for c in g["parity"] for o in c["outputs"]), default=0.0)
                rows.append({"part": f"{m['card']}.{p['name']}", "graph": str(Path(m["folder"]) / g["file"]),
                             "MB": f"{g['bytes'] / 2**20:.2f}", "max diff": f"{worst:.1e}",
                             "ms": g["latency"]["median_ms"], "ok": "yes" if g["parity_ok"] else "NO"})
    if rows:
        print_table(rows, ["part", "graph", "MB", "max diff", "ms", "ok"], title=f"{out}/report.json")
    for line in errors if len(errors) > 1 else []:  # a single failure is the command's error line
        err.print(f"[red]failed[/] {line}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("export-onnx")(export_onnx)
