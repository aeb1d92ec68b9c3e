"""`fx extract-feats`: expression tokens per face trajectory for videos, from a trained run or its ONNX export."""

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


def _face_options(pairs: list[str]) -> dict:
    from faceexpr_cli.config.yaml_io import parse_key_values

    return parse_key_values(pairs)


def extract_feats(
    inputs: Annotated[list[Path], typer.Argument(help="Videos, folders of videos, or a manifest (CSV/TSV with "
                                                      "video_path,label; Parquet; JSONL; .txt list).",
                                                 show_default=False)],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="A `fx train joint` run directory, or the "
                                                                     "--out folder of `fx export-onnx` for it "
                                                                     "(needed for tokens).",
                                               show_default=False)] = None,
    out: OutDirOpt = Path("features"),
    backend: Annotated[str | None, typer.Option("--backend", help="torch (a run) or onnx (an export); default: "
                                                                  "what --model is.", show_default=False)] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "cpu",
    stride: Annotated[int, typer.Option("--stride", min=1, help="Tokens for every Nth frame (frame index % N == "
                                                                "0); tracking still sees every frame.")] = 1,
    smooth: Annotated[bool, typer.Option("--smooth", help="Zero-phase low-pass of the tokens along each "
                                                          "trajectory (raw tokens kept in the .npz).")] = False,
    smooth_hz: Annotated[float, typer.Option("--smooth-hz", help="Cutoff of --smooth, Hz.")] = 3.0,
    margin: Annotated[float, typer.Option("--margin", help="Crop square = face box x (1 + 2 margin), as in "
                                                           "`fx crop`.")] = 0.3,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Face crops per model call.")] = 32,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject row (or name in the run's "
                                                                  "subjects.json) fed to the expression model; "
                                                                  "default row 0.", show_default=False)] = None,
    features: Annotated[str | None, typer.Option("--features", "-f", help="Comma-separated: tokens, mesh, "
                                                 "emotion, landmarks. Default: tokens with --model, else "
                                                 "mesh,emotion.", show_default=False)] = None,
    face_backend: Annotated[str | None, typer.Option("--face-backend", help="dlib, mediapipe, auto, insightface "
                                                     "or opencv; default: mediapipe for mesh, else auto when the MediaPipe weights are cached, else dlib.",
                                                     show_default=False)] = None,
    face_opt: Annotated[list[str] | None, typer.Option("--face-opt", help="Face backend option key=value "
                                                       "(repeatable), e.g. detector=cnn.", show_default=False)] = None,
    detect_every: Annotated[int, typer.Option("--detect-every", min=1, help="Run the face detector every N frames, "
                                                                            "track by optical flow between.")] = 10,
    detect_size: Annotated[int, typer.Option("--detect-size", min=0, help="Long side of the detector's input "
                                                                          "(0: full frame).")] = 480,
    min_face: Annotated[float, typer.Option("--min-face", help="Drop trajectories whose mean face side is "
                                                               "smaller (source pixels).")] = 0.0,
    json_floats: Annotated[bool, typer.Option("--json-floats/--no-json-floats", "--json-feats/--no-json-feats",
                                              help="Also put the tokens in each video's JSON as `feats` (the "
                                                   "seed's layout; --json-feats is the old name). They are always "
                                                   "in the .npz and the .parquet.")] = False,
    allow_cpu_fallback: Annotated[bool, typer.Option("--allow-cpu-fallback", help="ONNX: run on CPU when cuda "
                                                                                  "cannot load.")] = False,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip videos already done in --out with "
                                                                      "the same model and options.")] = True,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 1,
    shard_size: ShardSizeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Expression tokens per face trajectory: a JSON + .npz + .parquet per video, features.parquet, stats.json.

    Faces are tracked through each video; each track is a trajectory (a new one
    starts at a shot cut or when the face is lost), cropped square at the
    model's input size and turned into expression tokens by the run's tokenizer
    and expression transformer. Frames without a face are listed apart. A bad
    video becomes an `error` row and the run goes on (exit 1 at the end); a
    re-run skips finished videos.

    Examples:
      [cyan]fx extract-feats talk.mp4 --model runs/joint-tiny --out feats[/]
      [cyan]fx extract-feats talk.mp4 --features mesh,emotion -o feats[/]
      [cyan]fx extract-feats list.csv -m exported/ --smooth --device cuda -o f[/]
      [cyan]fx extract-feats videos/ -m runs/joint --stride 5 --json -o feats[/]
      [cyan]fx extract-feats list.csv -m exported/ --executor ray --ray-address auto --device cuda -o f[/]
    """
    from faceexpr_cli.console import print_json, print_table
    from faceexpr_cli.extract import ExtractOptions, extract_features

    opts = ExtractOptions(stride=stride, smooth=smooth, smooth_hz=smooth_hz, margin=margin, batch_size=batch_size,
                          face_backend=face_backend, face_options=_face_options(face_opt or []),
                          detect_every=detect_every, detect_size=detect_size or None, min_face=min_face,
                          subject=subject, json_floats=json_floats, features=features)
    spec = executor_spec(executor, ray_address, workers, shard_size)
    on = {"executor": spec} if spec.distributed or workers > 1 else {}  # a local run is called as it always was
    result = extract_features(list(inputs), model, out, opts, backend=backend, device=device,
                              allow_cpu_fallback=allow_cpu_fallback, resume=resume, raise_on_failure=False, **on)
    s = result.stats
    if json_out:
        print_json({"out": str(result.out), "index": str(result.index), "inputs": s["inputs"],
                    "videos": s["videos"], "failed": s["failed"], "resumed_skipped": s["resumed_skipped"],
                    "trajectories": s["trajectories"], "tokens": s["tokens"], "wall_seconds": s["wall_seconds"],
                    "backend": (s["model"] or {}).get("backend"), "features": s["features"],
                    **({"executor": s["executor"]} if "executor" in s else {}),
                    "rows": [{k: r[k] for k in ("source", "label", "status", "error", "json", "npz",
                                                "trajectories", "tokens")} for r in result.rows]})
    else:
        shown = [r for r in result.rows if r["status"] != "skipped"]
        print_table([{"source": Path(r["source"]).name, "label": r["label"], "status": r["status"],
                      "traj": r["trajectories"], "tokens": r["tokens"], "no-face frames": r["no_face_frames"],
                      "error": r["error"]} for r in shown],
                    ["source", "label", "status", "traj", "tokens", "no-face frames", "error"],
                    title=f"fx extract-feats ({(s['model'] or {}).get('backend') or ','.join(s['features'])}) -> "
                          f"{result.index} ({s['tokens']} {'tokens' if 'tokens' in s['features'] else 'face frames'}"
                          f", {s['failed']} failed)")
    from faceexpr_cli.errors import BatchFailures, raise_if_no_face

    if result.failed:
        raise BatchFailures(result.failed, s["inputs"], result.index)
    raise_if_no_face([r["status"] for r in result.rows], result.index)


def register(app: typer.Typer) -> None:
    app.command("extract-feats")(extract_feats)
