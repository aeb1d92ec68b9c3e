"""`fx crop`: face tracks in videos become square face clips (with audio), a Parquet manifest and stats.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import (
    ExecutorOpt,
    JsonOpt,
    OutDirOpt,
    RayAddressOpt,
    ShardSizeOpt,
    WorkersOpt,
    executor_spec,
)


def _backend_options(pairs: list[str]) -> dict:
    from faceexpr_cli.config.yaml_io import parse_key_values

    return parse_key_values(pairs)


def crop(
    inputs: Annotated[list[Path], typer.Argument(help="Videos, directories of videos, or manifests (.parquet/.csv/.txt).",
                                                 show_default=False)],
    out: OutDirOpt = Path("crops"),
    size: Annotated[int, typer.Option("--size", help="Output side in pixels (518 for the expression models).")] = 256,
    mode: Annotated[str, typer.Option("--mode", help="union: one fixed square per clip; follow: a square that "
                                                     "follows the face; align: rotated FFHQ-style square.")] = "union",
    margin: Annotated[float, typer.Option("--margin", help="Added on each side, as a fraction of the box.")] = 0.3,
    out_of_frame: Annotated[str, typer.Option("--out-of-frame", help="pad (see --fill) or drop clips whose crop "
                                                                     "leaves the frame.")] = "pad",
    fill: Annotated[str, typer.Option("--fill", help="A square that leaves the frame is shifted inside it; what "
                                                     "still falls outside is filled: black, replicate, reflect "
                                                     "or blur.")] = "blur",
    min_face: Annotated[float, typer.Option("--min-face", help="Minimum mean face size in source pixels.")] = 32.0,
    min_duration: Annotated[float, typer.Option("--min-duration", help="Shortest clip, seconds.")] = 1.0,
    max_duration: Annotated[float | None, typer.Option("--max-duration", help="Longer tracks are split, seconds.",
                                                       show_default=False)] = None,
    single_face: Annotated[bool, typer.Option("--single-face", help="Keep only spans where every frame has exactly "
                                                                    "one face (the seed's rule).")] = False,
    score_threshold: Annotated[float | None, typer.Option("--score-threshold", help="Ignore detections below this "
                                                          "detector score.", show_default=False)] = None,
    face_backend: Annotated[str, typer.Option("--face-backend", help="default (auto when the MediaPipe weights are "
                                              "cached, else dlib), auto, mediapipe, dlib, insightface or opencv."
                                              )] = "default",
    face_opt: Annotated[list[str] | None, typer.Option("--face-opt", help="Backend option key=value (repeatable), "
                                                       "e.g. detector=cnn, model_dir=DIR.", show_default=False)] = None,
    stride: Annotated[int, typer.Option("--stride", help="Detect every N frames, track in between.")] = 10,
    detect_size: Annotated[int, typer.Option("--detect-size", help="Long side of the detector's input "
                                                                   "(0: full frame).")] = 480,
    embed: Annotated[bool, typer.Option("--embed/--no-embed", help="Identity embedding per clip.")] = True,
    audio: Annotated[bool, typer.Option("--audio/--no-audio", help="Keep the span's audio in each clip.")] = True,
    fps: Annotated[float | None, typer.Option("--fps", help="Resample clips to this constant rate (default: keep "
                                                            "the source's frame times, also when they vary).",
                                              show_default=False)] = None,
    preset: Annotated[str, typer.Option("--preset", help="x264 preset of the clips (ultrafast..veryslow).")] = "superfast",
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Refuse videos with more pixels per frame.")] = 4096 * 4096,
    workers: WorkersOpt = 1,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    shard_size: ShardSizeOpt = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip videos already done in --out.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Remove the crops of earlier runs in --out first "
                                                                "(needed to change the settings of a folder).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Cut every face track into a square face clip with its audio; write manifest.parquet and stats.json.

    Examples: [cyan]fx crop talk.mp4 --out crops[/],
    [cyan]fx crop videos/ --out crops --size 518 --mode follow --workers 4[/],
    [cyan]fx crop list.csv --out crops --single-face --min-duration 2 --max-duration 30[/],
    [cyan]fx crop wide.mp4 --out crops --fill reflect[/],
    [cyan]fx crop IMG_0001.MOV --out crops --fps 25[/] (phone video resampled to a constant rate),
    [cyan]fx crop videos/ --out crops --size 128 --overwrite[/] (start the folder again with other settings),
    [cyan]fx crop videos/ --out crops --executor ray --workers 8[/] (a local Ray with 8 CPUs),
    [cyan]fx crop list.csv --out /shared/crops --executor ray --ray-address auto --shard-size 16[/] (a cluster)
    """
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json, print_table
    from faceexpr_cli.crop import CropOptions, crop_videos
    from faceexpr_cli.inputs import require_inputs

    require_inputs(inputs)  # before crop_videos makes --out: a missing input leaves no empty folder
    spec = executor_spec(executor, ray_address, workers, shard_size)
    opts = CropOptions(size=size, mode=mode, margin=margin, out_of_frame=out_of_frame, fill=fill, min_face=min_face,
                       min_duration=min_duration, max_duration=max_duration, single_face=single_face,
                       score_threshold=score_threshold, backend=face_backend,
                       backend_options=_backend_options(face_opt or []), stride=stride,
                       detect_size=detect_size or None, embed=embed, audio=audio, fps=fps,
                       max_pixels=max_pixels, preset=preset)
    # Ctrl-C: crop_videos records what finished and re-raises; main() prints the one "interrupted" line (exit 130)
    result = crop_videos(list(inputs), out, opts, workers=workers, resume=resume, overwrite=overwrite,
                         raise_on_failure=False, executor=spec)
    s = result.stats
    summary = {"out": str(result.out), "manifest": str(result.manifest), "inputs": s["inputs"], "clips": s["clips"],
               "clip_seconds": s["clip_seconds"], "failed": s["failed"], "videos": dict(s["videos"]),
               "resumed_skipped": s["resumed_skipped"], "wall_seconds": s["wall_seconds"]}
    if "executor" in s:  # --executor ray: shards, items and items/s per node
        summary["executor"] = s["executor"]
    if json_out:
        print_json(summary)
    else:
        shown = [r for r in result.rows if r["status"] != "skipped"]
        rows = [{"source": Path(r["source"]).name, "status": r["status"], "clip": r["clip"] or "",
                 "track": "" if r["track_id"] is None else r["track_id"],
                 "seconds": "" if r["start_time"] is None or r["status"] in ("no_face", "no_clip")
                 else f"{r['start_time']:.2f}-{r['end_time']:.2f}",
                 "error": r["error"] or ""} for r in shown]
        print_table(rows, ["source", "status", "clip", "track", "seconds", "error"],
                    title=f"fx crop -> {result.manifest} ({s['clips']} clips, {s['failed']} failed)")
        skipped = len(result.rows) - len(shown)
        if skipped:
            stdout.print(f"{skipped} non-video files skipped (listed in the manifest)")
    from faceexpr_cli.errors import BatchFailures, raise_if_no_face

    if result.failed:
        raise BatchFailures(result.failed, s["inputs"], result.manifest)
    raise_if_no_face([r["status"] for r in result.rows], result.manifest)


def register(app: typer.Typer) -> None:
    app.command("crop")(crop)
