"""`fx swap`: identity swap in video that keeps the driver's expression (engines: landmarks, inswapper), and
`fx swap eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt

swap_app = typer.Typer(invoke_without_command=True, no_args_is_help=False, subcommand_metavar="")

FaceBackendOpt = Annotated[str, typer.Option("--face-backend", help="Face layer backend: default (auto when the "
                                             "MediaPipe weights are cached, else dlib), dlib, insightface, ...")]
MaxFramesOpt = Annotated[int | None, typer.Option("--max-frames", min=1, help="Use at most this many frames.")]
MaxPixelsOpt = Annotated[int, typer.Option("--max-pixels", help="Refuse images and videos with more pixels per "
                                           "frame (checked before decoding).")]


@swap_app.callback()
def swap(
    ctx: typer.Context,
    source: Annotated[Path | None, typer.Option("--source", "-s", help="Photo of the identity to put in.")] = None,
    driving: Annotated[Path | None, typer.Option("--driving", "-d", help="Driving video (or one image): its "
                                                 "expression, pose, lighting and background are kept.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="result.mp4 (video driver) or result.png.")] = None,
    engine: Annotated[str, typer.Option("--engine", "-e", help="landmarks (no weights), inswapper (a user-supplied "
                                        "inswapper_128.onnx, non-commercial) or subject (a fx train joint run "
                                        "renders another subject).")] = "landmarks",
    driving_face: Annotated[str, typer.Option("--driving-face", help="Which driving faces: all, largest, INDEX "
                                              "(from the left, 0 first) or REF.jpg (the face matching a "
                                              "reference photo).")] = "largest",
    source_face: Annotated[int | None, typer.Option("--source-face", min=0, help="The source photo's face "
                                                    "(from the left) when it has several (default: the "
                                                    "largest).")] = None,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Write source | driving | result.")] = False,
    mouth: Annotated[str, typer.Option("--mouth", help="landmarks: what of the driver's mouth shows - lips (its "
                                       "whole mouth), interior (inside the lips) or source (none).")] = "lips",
    colour: Annotated[float, typer.Option("--colour", help="landmarks: how far the source's skin colour moves "
                                          "to the driver's (0 none, 1 all).")] = 0.5,
    smooth: Annotated[float, typer.Option("--smooth", help="landmarks: One-Euro cutoff (Hz) on the driving "
                                          "face's outline, so the seam does not flicker; 0 = off.")] = 3.0,
    forehead: Annotated[float, typer.Option("--forehead", help="landmarks: how far above the brows the mesh "
                                            "reaches (of the brow-to-chin distance); 0 = brows to chin only.")] = 0.25,
    weights: Annotated[Path | None, typer.Option("--weights", help="inswapper: the inswapper_128.onnx file.")] = None,
    models: Annotated[Path | None, typer.Option("--models", help="inswapper: the buffalo_l directory (detection "
                                                "and ArcFace).")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="subject: a `fx train joint` run directory or its "
                                               "ONNX export.")] = None,
    target_subject: Annotated[str | None, typer.Option("--target-subject", help="subject: the row or name (the "
                                                       "run's subjects.json) of the face to render.")] = None,
    driver_subject: Annotated[str | None, typer.Option("--driver-subject", help="subject: the row or name the "
                                                       "driver's expression is read with (default 0).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="torch or onnx (the landmarks engine's graph).")] = "torch",
    device: Annotated[str, typer.Option("--device", help="cpu or cuda[:N].")] = "cpu",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Frames per graph call.")] = 8,
    face_backend: FaceBackendOpt = "default",
    max_frames: MaxFramesOpt = None,
    max_pixels: MaxPixelsOpt = 4096 * 4096,
    allow_cpu_fallback: Annotated[bool, typer.Option("--allow-cpu-fallback", help="With --backend onnx: run on "
                                                     "the CPU when the GPU provider is missing.")] = False,
    restore_expression: Annotated[bool, typer.Option("--restore-expression", help="After the swap, re-impose "
                                                     "the driver's expression on each swapped face with "
                                                     "LivePortrait (needs its weights).")] = False,
    restore_checkpoint: Annotated[Path | None, typer.Option("--restore-checkpoint", help="--restore-expression: "
                                                            "LivePortrait's release folder (default: the weights "
                                                            "cache).", show_default=False)] = None,
    restore_config: Annotated[Path | None, typer.Option("--restore-config", help="--restore-expression: an "
                                                        "original LivePortrait models.yaml (default: the "
                                                        "release's).", show_default=False)] = None,
    json_out: JsonOpt = False,
) -> None:
    """Put the identity of --source into the faces of --driving, keeping their expression, pose and light.

    Driving audio is copied; a frame without a face is passed through unchanged and counted.

    Examples:
      [cyan]fx swap -s face.jpg -d talk.mp4 -o result.mp4[/] (landmarks engine, no weights)
      [cyan]fx swap -s face.jpg -d photo.png -o result.png --side-by-side[/]
      [cyan]fx swap -s face.jpg -d talk.mp4 -o r.mp4 --restore-expression --restore-checkpoint liveportrait/[/]
      [cyan]fx swap -s face.jpg -d group.mp4 -o r.mp4 --driving-face all --json[/]
      [cyan]fx swap -s face.jpg -d group.mp4 -o r.mp4 --driving-face her.jpg --source-face 1[/]
      [cyan]fx swap -s face.jpg -d talk.mp4 -o r.mp4 --engine inswapper --weights inswapper_128.onnx --models buffalo_l/[/]
      [cyan]fx swap -s face.jpg -d talk.mp4 -o r.mp4 --engine subject --model runs/joint --target-subject 3[/]
      [cyan]fx swap eval r.mp4 --source face.jpg --driving talk.mp4 --out eval/[/]
    """
    if ctx.invoked_subcommand is not None:
        return
    from faceexpr_cli.errors import UsageError

    missing = [name for name, value in (("--source", source), ("--driving", driving), ("--out", out)) if not value]
    if missing:
        raise UsageError(f"fx swap needs {', '.join(missing)}",
                         "e.g. fx swap --source face.jpg --driving talk.mp4 --out result.mp4")
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json
    from faceexpr_cli.face.backend import resolve_backend_name
    from faceexpr_cli.swap.engines import SwapOptions
    from faceexpr_cli.swap.pipeline import SwapSettings
    from faceexpr_cli.swap.pipeline import swap as run

    options = SwapOptions(backend=backend, device=device, batch=batch, face_backend=resolve_backend_name(face_backend),
                          weights=None if weights is None else str(weights),
                          models=None if models is None else str(models), allow_cpu_fallback=allow_cpu_fallback,
                          extra={"mouth": mouth, "colour": colour, "smooth": smooth, "forehead": forehead,
                                 "model": None if model is None else str(model), "target_subject": target_subject,
                                 "driver_subject": driver_subject})
    settings = SwapSettings(engine=engine, driving_face=driving_face, source_face=source_face,
                            side_by_side=side_by_side, max_frames=max_frames, max_pixels=max_pixels, options=options,
                            restore_expression=restore_expression or restore_checkpoint is not None,
                            restore_checkpoint=None if restore_checkpoint is None else str(restore_checkpoint),
                            restore_config=None if restore_config is None else str(restore_config))
    result = run(source, driving, out, settings)
    if json_out:
        print_json(result.to_dict())
    else:
        empty = f", {result.frames_without_face} frame(s) without a face" if result.frames_without_face else ""
        stdout.print(f"{result.out}: {result.frames} frame(s) {result.width}x{result.height}, engine {result.engine}, "
                     f"{result.faces_swapped} face(s) swapped{empty}, {result.ms_per_frame} ms/frame"
                     f"{', audio copied' if result.audio else ''}")


@swap_app.command("eval")
def swap_eval(
    result: Annotated[Path, typer.Argument(help="The swap result (video or image, without --side-by-side).")],
    source: Annotated[Path, typer.Option("--source", "-s", help="The source face photo.")],
    driving: Annotated[Path, typer.Option("--driving", "-d", help="The driving video or image.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics.json, per_frame.csv and plot.png.")
                   ] = Path("swap-eval"),
    every: Annotated[int, typer.Option("--every", min=1, help="Measure every N-th frame.")] = 1,
    max_frames: MaxFramesOpt = None,
    face_backend: FaceBackendOpt = "default",
    json_out: JsonOpt = False,
) -> None:
    """Identity (to the source vs to the driver), expression kept, pose error and jitter, per frame and in summary.

    Examples:
      [cyan]fx swap eval result.mp4 --source face.jpg --driving talk.mp4 --out eval/[/]
      [cyan]fx swap eval result.mp4 -s face.jpg -d talk.mp4 --every 5 --json[/]
    """
    from faceexpr_cli.console import print_json, print_table
    from faceexpr_cli.face.backend import resolve_backend_name
    from faceexpr_cli.swap.evaluate import evaluate

    summary = evaluate(result, source, driving, out, every=every, max_frames=max_frames,
                       face_backend=resolve_backend_name(face_backend))
    if json_out:
        print_json(summary)
        return
    ident, expr = summary["identity"], summary["expression"]

    def fmt(v):
        return "" if v is None else f"{v:.4f}"

    rows = [{"metric": k, "value": fmt(v)} for k, v in (
        ("identity: distance to source", ident["dist_source"]), ("identity: distance to driver", ident["dist_driver"]),
        ("identity: retrieval rate", ident["retrieval_rate"]), ("expression error", expr["error"]),
        ("mouth correlation (landmarks)", expr["mouth_correlation"]),
        ("mouth correlation (interior)", expr["mouth_interior_correlation"]),
        ("emotion agreement", expr["emotion_agreement"]), ("pose error (deg)", summary["pose_error_deg"]),
        ("jitter", summary["jitter"]))]
    print_table(rows, ["metric", "value"], title=f"{summary['frames']} frame(s) -> {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(swap_app, name="swap")
