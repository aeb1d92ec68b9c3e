"""`fx animate`: portrait animation (landmarks, fomm, liveportrait), `fx animate eval`, `fx animate
extract-motion`, and `fx train animator`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt, OverridesArg

animate_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    subcommand_metavar="",  # `fx animate [OPTIONS]` animates; `fx animate eval` is listed under Commands
)

EngineOpt = Annotated[str, typer.Option("--engine", "-e", help="landmarks (no weights), fomm (First Order Motion) "
                                        "or liveportrait (LivePortrait).")]
CheckpointOpt = Annotated[str | None, typer.Option(
    "--checkpoint", help="FOMM checkpoint (vox-cpk.pth.tar layout) or LivePortrait's liveportrait/ folder (or a "
    "folder of its five .pth files); default: the card's cached weights; 'random' for random weights.")]
ConfigOpt = Annotated[str | None, typer.Option(
    "--config", help="Model card name/path, an original FOMM YAML or LivePortrait models.yaml (its model_params). "
    "Default: fomm-vox256 / liveportrait.")]
SizeOpt = Annotated[int | None, typer.Option(
    "--size", help="fomm: the square frame size the model runs at. Default: the --config YAML's "
    "dataset_params.frame_shape, else the card's size (256).", show_default=False)]
BackendOpt = Annotated[str, typer.Option("--backend", help="torch or onnx.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda[:N].")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, help="Frames per model call.")]
FaceBackendOpt = Annotated[str, typer.Option("--face-backend", help="Face layer backend for landmarks/crops: default "
                                             "(auto when the MediaPipe weights are cached, else dlib), auto, "
                                             "mediapipe, dlib, insightface or opencv.")]
MaxFramesOpt = Annotated[int | None, typer.Option("--max-frames", min=1, help="Use at most this many frames.")]
MaxPixelsOpt = Annotated[int, typer.Option("--max-pixels", help="Refuse images and videos with more pixels per "
                                           "frame (checked before decoding).")]
FallbackOpt = Annotated[bool, typer.Option("--allow-cpu-fallback", help="With --backend onnx: run on the CPU when "
                                           "the GPU provider is not available instead of failing.")]


def _engine_options(checkpoint, config, backend, device, batch, face_backend, allow_cpu_fallback=False, size=None,
                    extra=None):
    from faceexpr_cli.animate.engines import EngineOptions
    from faceexpr_cli.face.backend import resolve_backend_name

    face_backend = resolve_backend_name(face_backend)  # what the run's metadata records
    extra = dict(extra or {})
    if size is not None:
        extra["size"] = size
    return EngineOptions(checkpoint=checkpoint, config=config, backend=backend, device=device, batch=batch,
                         face_backend=face_backend, allow_cpu_fallback=allow_cpu_fallback, extra=extra)


LP_HELP = "liveportrait: "
DrivingOptionOpt = Annotated[str, typer.Option("--driving-option", help=LP_HELP + "pose-friendly (motion as "
                                               "measured) or expression-friendly (scaled by the faces' sizes in "
                                               "the first frame).")]
RegionOpt = Annotated[str | None, typer.Option("--region", help=LP_HELP + "what moves: all, exp, pose, lip or eyes "
                                               "(default: all; exp for a source video, which keeps its own head "
                                               "motion).", show_default=False)]
StitchingOpt = Annotated[bool, typer.Option("--stitching/--no-stitching", help=LP_HELP + "keep the face attached "
                                            "to the shoulders (stitching MLP).")]
EyeRetargetOpt = Annotated[str | None, typer.Option("--eye-retarget", help=LP_HELP + "eye opening ratio to impose "
                                                    "(e.g. 0.35; 0 closes) or 'driver' (the driver's, per frame).")]
LipRetargetOpt = Annotated[str | None, typer.Option("--lip-retarget", help=LP_HELP + "lip opening ratio to impose "
                                                    "or 'driver'.")]
MultiplierOpt = Annotated[float, typer.Option("--driving-multiplier", help=LP_HELP + "scale the driven motion.")]


def _lp_extra(driving_option, region, stitching, eye_retarget, lip_retarget, driving_multiplier) -> dict:
    return {"driving_option": driving_option, "region": region, "stitching": stitching,
            "eye_retarget": eye_retarget, "lip_retarget": lip_retarget, "driving_multiplier": driving_multiplier}


@animate_app.callback()
def animate(
    ctx: typer.Context,
    source: Annotated[Path | None, typer.Option("--source", "-s", help="Portrait image to animate (liveportrait: "
                                                "or a video, animated frame by frame).")] = None,
    driving: Annotated[Path | None, typer.Option("--driving", "-d", help="Driving video (or one image, or a "
                                                 "motion.npz from fx animate extract-motion).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="result.mp4 (video driver) or result.png.")] = None,
    engine: EngineOpt = "landmarks",
    checkpoint: CheckpointOpt = None,
    config: ConfigOpt = None,
    size: SizeOpt = None,
    relative: Annotated[bool, typer.Option("--relative/--absolute", help="Motion relative to the reference "
                                           "frame (default) or the driver's absolute pose/shape.")] = True,
    adapt_scale: Annotated[bool, typer.Option("--adapt-scale", help="Scale motion by the convex-hull area "
                                              "ratio of source and reference.")] = False,
    reference: Annotated[str | None, typer.Option("--reference", help="The driver's neutral frame: a frame "
                                                  "index or an image (default: frame 0).")] = None,
    find_best_frame: Annotated[bool, typer.Option("--find-best-frame", help="Measure motion from the driving "
                                                  "frame closest to the source's face.")] = False,
    crop: Annotated[str | None, typer.Option("--crop", help="auto: detect and crop both faces to the model's "
                                             "framing; none: use the images as they are. Default: auto for "
                                             "liveportrait, none otherwise.", show_default=False)] = None,
    crop_increase: Annotated[float | None, typer.Option("--crop-increase", help="Margin around the face box "
                                                        "(default 0.4; liveportrait 0.65, a 2.3x square).",
                                                        show_default=False)] = None,
    paste_back: Annotated[bool | None, typer.Option("--paste-back/--no-paste-back", help="Put the animated face "
                                                    "back into the full source image (needs --crop auto; default: "
                                                    "on for liveportrait).", show_default=False)] = None,
    smooth: Annotated[float, typer.Option("--smooth", help="Temporal smoothing of the driving motion "
                                          "(One-Euro cutoff in Hz; 0 = off).")] = 1.5,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Write source | driving | result.")] = False,
    on_missing_face: Annotated[str, typer.Option("--on-missing-face", help="Driving frames where the face is "
                                                 "lost: hold (the last good motion), neutral (the reference "
                                                 "pose) or error (stop, write nothing).")] = "hold",
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cpu",
    batch: BatchOpt = 8,
    face_backend: FaceBackendOpt = "default",
    max_frames: MaxFramesOpt = None,
    max_pixels: MaxPixelsOpt = 4096 * 4096,
    allow_cpu_fallback: FallbackOpt = False,
    driving_option: DrivingOptionOpt = "pose-friendly",
    region: RegionOpt = None,
    stitching: StitchingOpt = True,
    eye_retarget: EyeRetargetOpt = None,
    lip_retarget: LipRetargetOpt = None,
    driving_multiplier: MultiplierOpt = 1.0,
    audio_model: Annotated[Path | None, typer.Option("--audio-model", help="A `fx train audio2expr` run: the mouth "
                                                     "follows speech (--driving speech.wav, or --audio with a "
                                                     "driving video); docs/audio.md.")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", help="Speech for the mouth while --driving (a video) "
                                               "gives the head motion; needs --audio-model.")] = None,
    emotion: Annotated[Path | None, typer.Option("--emotion", help="A `fx train emotion-adding` run applied to "
                                                 "the speech-driven expression.")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Emotion blend weight (0 = none).")] = 1.0,
    ortho: Annotated[bool, typer.Option("--ortho", help="Keep only the emotion component orthogonal to the "
                                        "speech-driven expression.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Animate a portrait with a driving video or image (engines: landmarks, fomm, liveportrait).

    The face in --source moves as the face in --driving does; `fx animate eval` measures reconstruction.

    Examples:
      [cyan]fx animate -s portrait.png -d talk.mp4 -o result.mp4[/] (landmarks engine, no weights)
      [cyan]fx animate -s a.png -d smile.png -o r.png[/] (one driving image gives a PNG)
      [cyan]fx animate -s photo.jpg -d phone.mp4 -o out.mp4 --engine fomm --checkpoint vox-cpk.pth.tar --crop auto --paste-back[/]
      [cyan]fx animate -s a.png -d b.mp4 -o r.mp4 --engine fomm --config vox-256.yaml --checkpoint vox-cpk.pth.tar --find-best-frame --adapt-scale --side-by-side[/]
      [cyan]fx animate -s a.png -d b.mp4 -o r.mp4 --engine fomm --config vox-128.yaml --checkpoint random --size 128[/]
      [cyan]fx animate -s a.png -d walk-off.mp4 -o r.mp4 --on-missing-face neutral --json[/]
      [cyan]fx animate -s photo.jpg -d talk.mp4 -o out.mp4 --engine liveportrait --checkpoint liveportrait/[/] (crop and paste-back by default)
      [cyan]fx animate -s a.png -d talk.mp4 -o r.mp4 --engine liveportrait --region lip --eye-retarget driver --driving-multiplier 1.2[/]
      [cyan]fx animate -s a.png -d motion.npz -o r.mp4 --engine liveportrait --crop none --size 256[/]
      [cyan]fx animate eval clips/ --engine fomm --checkpoint vox-cpk.pth.tar --out eval/[/]
      [cyan]fx animate -s portrait.png -d speech.wav --audio-model runs/a2e -o talk.mp4[/] (speech drives the mouth)
      [cyan]fx animate -s portrait.png -d head.mp4 --audio speech.wav --audio-model runs/a2e --emotion runs/happy --alpha 0.5 --ortho -o talk.mp4[/]
    """
    if ctx.invoked_subcommand is not None:
        return
    from faceexpr_cli.errors import UsageError

    missing = [name for name, value in (("--source", source), ("--driving", driving), ("--out", out)) if not value]
    if missing:
        raise UsageError(f"fx animate needs {', '.join(missing)}",
                         "e.g. fx animate --source portrait.png --driving talk.mp4 --out result.mp4")
    from faceexpr_cli.audio2expr.speech import is_audio_path
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json

    if audio_model is not None or audio is not None or is_audio_path(driving):
        from faceexpr_cli.audio2expr.speech import speech_command

        speech_command(source, driving, out, audio_model, audio, emotion, alpha, ortho, backend, face_backend,
                       batch, max_frames, max_pixels, json_out, engine=engine)
        return
    from faceexpr_cli.animate.pipeline import AnimateOptions
    from faceexpr_cli.animate.pipeline import animate as run

    opts = AnimateOptions(engine=engine, relative=relative, adapt_scale=adapt_scale, reference=reference,
                          find_best_frame=find_best_frame, crop=crop, crop_increase=crop_increase,
                          paste_back=paste_back, smooth=smooth, side_by_side=side_by_side, max_frames=max_frames,
                          on_missing_face=on_missing_face, max_pixels=max_pixels,
                          engine_options=_engine_options(checkpoint, config, backend, device, batch, face_backend,
                                                         allow_cpu_fallback, size,
                                                         _lp_extra(driving_option, region, stitching, eye_retarget,
                                                                   lip_retarget, driving_multiplier)))
    result = run(source, driving, out, opts)
    if json_out:
        print_json(result.to_dict())
    else:
        lost = (f", face lost in {result.missing_face_frames} frame(s) ({result.on_missing_face})"
                if result.missing_face_frames else "")
        stdout.print(f"{result.out}: {result.frames} frame(s) {result.width}x{result.height}, engine {result.engine}, "
                     f"{result.ms_per_frame} ms/frame{', audio copied' if result.audio else ''}{lost}")


@animate_app.command("eval")
def animate_eval(
    videos: Annotated[list[Path], typer.Argument(help="Videos or folders of videos (faces already framed).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics.json and per_video.csv.")] = Path(
        "animate-eval"),
    engine: EngineOpt = "landmarks",
    checkpoint: CheckpointOpt = None,
    config: ConfigOpt = None,
    size: SizeOpt = None,
    every: Annotated[int, typer.Option("--every", min=1, help="Landmark/identity metrics on every N-th frame.")] = 1,
    max_frames: MaxFramesOpt = None,
    max_pixels: MaxPixelsOpt = 4096 * 4096,
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cpu",
    batch: BatchOpt = 8,
    face_backend: FaceBackendOpt = "default",
    allow_cpu_fallback: FallbackOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Reconstruction metrics (source = first frame, rebuild every frame): L1, AKD, AED.

    Examples:
      [cyan]fx animate eval clips/ --out eval/[/]
      [cyan]fx animate eval a.mp4 b.mp4 --engine fomm --checkpoint vox-cpk.pth.tar --every 5 --json[/]
    """
    from faceexpr_cli.animate.evaluate import EvalOptions, evaluate
    from faceexpr_cli.animate.pipeline import check_size
    from faceexpr_cli.console import print_json, print_table

    opts = EvalOptions(engine=engine, every=every, max_frames=max_frames, max_pixels=max_pixels,
                       engine_options=_engine_options(checkpoint, config, backend, device, batch, face_backend,
                                                      allow_cpu_fallback, size))
    check_size(engine, opts.engine_options)
    summary = evaluate(list(videos), out, opts, raise_on_failure=False)
    if json_out:
        print_json(summary)
    else:
        rows = [{"metric": k, "value": "" if summary[k] is None else f"{summary[k]:.4f}"} for k in ("l1", "akd", "aed")]
        print_table(rows, ["metric", "value"], title=f"{engine}: {summary['videos']} video(s), {summary['failed']} "
                                                     f"failed -> {out}")
    if summary["failed"]:  # the summary is out first; the exit code says that some videos failed
        from faceexpr_cli.errors import BatchFailures

        raise BatchFailures(summary["failed"], summary["videos"], Path(out) / "per_video.csv")


@animate_app.command("extract-motion")
def animate_extract_motion(
    driving: Annotated[Path, typer.Argument(help="Driving video.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The motion template to write (.npz).")] = Path(
        "motion.npz"),
    checkpoint: CheckpointOpt = None,
    config: ConfigOpt = None,
    size: SizeOpt = None,
    crop: Annotated[str, typer.Option("--crop", help="auto: LivePortrait's 2.3x face crop; none: frames as "
                                      "they are.")] = "auto",
    max_frames: MaxFramesOpt = None,
    max_pixels: MaxPixelsOpt = 4096 * 4096,
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cpu",
    batch: BatchOpt = 8,
    face_backend: FaceBackendOpt = "default",
    allow_cpu_fallback: FallbackOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write a driving video's LivePortrait motion (pose, exp, scale, t, key points per frame) as .npz.

    `fx animate --engine liveportrait --driving motion.npz` reuses it without the video (no pickle is read).

    Examples:
      [cyan]fx animate extract-motion talk.mp4 -o motion.npz --checkpoint liveportrait/[/]
      [cyan]fx animate extract-motion talk.mp4 -o motion.npz --crop none --checkpoint liveportrait/ --json[/]
    """
    from faceexpr_cli.animate.liveportrait_template import ExtractOptions, extract_motion
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json

    opts = ExtractOptions(crop=crop, max_frames=max_frames, max_pixels=max_pixels,
                          engine_options=_engine_options(checkpoint, config, backend, device, batch, face_backend,
                                                         allow_cpu_fallback, size))
    result = extract_motion(driving, out, opts)
    if json_out:
        print_json(result)
    else:
        stdout.print(f"{result['out']}: {result['frames']} frame(s) at {result['fps']:g} fps, "
                     f"face in {result['face_frames']}{', eye/lip ratios' if result['ratios'] else ''}")


def train_animator(
    overrides: OverridesArg = None,
    recipe: Annotated[str, typer.Option("--recipe", "-r", help="Recipe name or path.")] = "fomm-tiny",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default runs/<recipe>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint in --out.")] = False,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N (default: the recipe's).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a First Order Motion Model (perceptual, equivariance, optional GAN) from a recipe.

    Examples: [cyan]fx train animator --recipe fomm-tiny data.path=clips/[/],
    [cyan]torchrun --nproc_per_node 4 -m faceexpr_cli train animator --recipe fomm-vox256 data.path=vox/[/]
    """
    from faceexpr_cli.animate.training.runner import train
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.console import print_json, print_table

    cfg = load_recipe(recipe, overrides or [], kind="train-animator")
    run_dir = out or Path("runs") / Path(recipe).stem
    result = train(cfg, run_dir, resume=resume, device=device)
    if result is None:  # not rank 0
        return
    if json_out:
        print_json(result)
    else:
        rows = [{"scalar": k, "first": f"{v:.5g}", "last": f"{result['last'][k]:.5g}"}
                for k, v in result["first"].items()]
        print_table(rows, ["scalar", "first", "last"], title=f"animator: {result['steps']} steps -> "
                                                            f"{result['checkpoint']}")


def register(app: typer.Typer) -> None:
    from faceexpr_cli.cli.commands.train import train_app

    app.add_typer(animate_app, name="animate")
    train_app.command("animator")(train_animator)
