"""`fx clip`: mine keyword (or random) clips from talking videos into a WebDataset clip dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import (
    ExecutorOpt,
    JsonOpt,
    RayAddressOpt,
    ShardSizeOpt,
    WorkersOpt,
    executor_spec,
)

# Defaults of the options that --rules switches. "seed" keeps the seed's behaviour available: substring match,
# next-segment anchor, +1 s offset with the backwards fallback, 30-frame clips kept 2 s from the end, no merging.
RULES = {
    "fx": {"match": "word", "anchor": "word-start", "offset": 0.0, "frames": None, "end_margin": 0.0, "merge": True},
    "seed": {"match": "substring", "anchor": "next-segment", "offset": 1.0, "frames": 30, "end_margin": 2.0,
             "merge": False},
}


def clip(
    inputs: Annotated[list[Path], typer.Argument(help="Videos, folders, a manifest (csv/tsv/parquet/jsonl) or "
                                                      "a transcript list (the seed's JSON).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to write (resumes if it exists).")],
    keywords: Annotated[list[str] | None, typer.Option("--keywords", "-k", help="Comma-separated words or "
                                                       "phrases (repeatable).")] = None,
    random_n: Annotated[int | None, typer.Option("--random", help="N random clips per video instead of keywords.",
                                                 min=1)] = None,
    match: Annotated[str | None, typer.Option(help="word (whole words; default), prefix, regex, or substring "
                                                   "(the seed's).", show_default=False)] = None,
    stem: Annotated[bool, typer.Option("--stem", help="Match word forms (Snowball English stemmer): 'cry' "
                                                   "also hits 'cried', 'cries', 'crying'.")] = False,
    anchor: Annotated[str | None, typer.Option(help="word-start (default), word-end, segment-start or "
                                                    "next-segment.", show_default=False)] = None,
    offset: Annotated[float | None, typer.Option(help="Seconds added to the anchor [default: 0].",
                                                 show_default=False)] = None,
    fallback: Annotated[bool, typer.Option(help="Apply the offset backwards when the clip would run past the "
                                                "end (else drop).")] = True,
    pre: Annotated[float, typer.Option(help="Seconds before the anchor.", min=0)] = 0.0,
    post: Annotated[float, typer.Option(help="Seconds after the anchor.", min=0)] = 1.0,
    frames: Annotated[int | None, typer.Option(help="Clip length in source frames (replaces --post).",
                                               min=1, show_default=False)] = None,
    min_duration: Annotated[float | None, typer.Option(help="Drop shorter clips (s).")] = None,
    max_duration: Annotated[float | None, typer.Option(help="Cap clip length (s); merged clips too.")] = None,
    merge: Annotated[bool | None, typer.Option("--merge/--no-merge", help="Merge overlapping windows into one "
                                                "clip [default: merge].", show_default=False)] = None,
    end_margin: Annotated[float | None, typer.Option(help="Keep clips this many seconds from the end "
                                                          "[default: 0].", min=0, show_default=False)] = None,
    rules: Annotated[str, typer.Option(help="'fx' (the options above) or 'seed' (substring, next-segment, +1 s, "
                                            "30 frames, 2 s end margin, no merge).")] = "fx",
    seed: Annotated[int, typer.Option(help="Random seed for --random.")] = 0,
    min_gap: Annotated[float, typer.Option(help="Seconds between random clips.", min=0)] = 0.0,
    cut: Annotated[str, typer.Option(help="exact (frame-accurate re-encode) or fast (stream copy from the key "
                                          "frame before; reports the snap).")] = "exact",
    crf: Annotated[int, typer.Option(help="x264 quality for exact cuts (lower is better).")] = 18,
    preset: Annotated[str, typer.Option("--preset", help="x264 preset of exact cuts (ultrafast..veryslow), as in "
                                                         "fx crop.")] = "veryfast",
    x264_preset: Annotated[str | None, typer.Option("--x264-preset", hidden=True,
                                                    help="Old name of --preset.")] = None,
    fps: Annotated[float | None, typer.Option("--fps", help="Resample exact cuts to this constant rate (default: "
                                                            "keep the source's frame times, also when they vary).",
                                              show_default=False)] = None,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Refuse videos with more pixels per frame (a failed "
                                                                 "row; checked before decoding).")] = 4096 * 4096,
    faces: Annotated[bool, typer.Option("--faces", help="Keep only windows with exactly one face in every "
                                                        "frame; write face crops.")] = False,
    face_size: Annotated[int, typer.Option(help="Face crop size (square) with --faces.")] = 518,
    face_backend: Annotated[str | None, typer.Option(help="Face detector backend for --faces (default: auto when "
                                                                   "the MediaPipe weights are cached, else dlib).",
                                                              show_default=False)] = None,
    fill: Annotated[str, typer.Option("--fill", "--face-fill", help="With --faces: a square that leaves the frame "
                                      "is shifted inside it; what still falls outside is filled: black, "
                                      "replicate, reflect or blur.")] = "blur",
    transcript: Annotated[Path | None, typer.Option(help="Transcript for a single video input.")] = None,
    transcript_format: Annotated[str | None, typer.Option(help="Force a transcript reader (webvtt, srt, "
                                                                "whisper, seed, table).")] = None,
    shard_count: Annotated[int, typer.Option(help="Samples per shard.", min=1)] = 1000,
    shard_mb: Annotated[float, typer.Option(help="Close a shard at this size (MB).")] = 512.0,
    overwrite: Annotated[bool, typer.Option(help="Delete an earlier dataset in --out first.")] = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 1,
    shard_size: ShardSizeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cut clips around keywords (or at random) and write them as tar shards + index.parquet + stats.json.

    Examples:
      [cyan]fx clip talk.mp4 --keywords smile,"look surprised" --out clips/[/]   (talk.vtt / talk.en.vtt beside it)
      [cyan]fx clip videos/ -k smile --anchor word-end --pre 0.2 --post 1.5 --cut fast -o clips/[/]
      [cyan]fx clip transcripts.json -k smile --rules seed -o clips/[/]   (the seed's transcript list)
      [cyan]fx clip manifest.csv --random 5 --seed 1 --frames 30 -o random/[/]
      [cyan]fx clip talk.mp4 -k smile --faces --face-size 256 -o faces/[/]
      [cyan]fx clip IMG_0001.MOV --random 3 --post 1.5 --fps 25 -o clips/[/]   (phone VFR at a constant rate)
      [cyan]fx clip videos/ --random 5 --executor ray --workers 4 -o random/[/]   (inputs on a local Ray)
    """
    from faceexpr_cli.clip.inputs import resolve_inputs
    from faceexpr_cli.clip.matching import parse_keywords
    from faceexpr_cli.clip.pipeline import ClipInterrupted, ClipSettings, run_clip
    from faceexpr_cli.clip.stats import summary_line
    from faceexpr_cli.clip.windows import WindowSpec
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json
    from faceexpr_cli.errors import BatchFailures, UsageError
    from faceexpr_cli.inputs import require_inputs
    from faceexpr_cli.safety import check_number

    require_inputs(inputs)  # first: a missing input is one line and no --out folder
    ex = executor_spec(executor, ray_address, workers, shard_size)
    if not ex.distributed and workers > 1:
        raise UsageError("fx clip runs its inputs in this process; --workers N needs --executor ray")
    on = {"executor": ex} if ex.distributed else {}  # a local run is called as it always was
    if rules not in RULES:
        raise UsageError(f"unknown rules '{rules}'", f"use one of: {', '.join(RULES)}")
    given = {"match": match, "anchor": anchor, "offset": offset, "frames": frames, "end_margin": end_margin,
             "merge": merge}
    values = {k: v if v is not None else RULES[rules][k] for k, v in given.items()}
    if keywords is not None and random_n is not None:
        raise UsageError("give either --keywords or --random N, not both")
    kw = parse_keywords(keywords) if keywords is not None else None
    if kw is None and random_n is None:
        raise UsageError("nothing to look for", 'pass --keywords smile,"look surprised" or --random N')
    check_number(shard_mb, "--shard-mb", above=0, maximum=1024 * 1024)  # before it becomes a byte count
    spec = WindowSpec(anchor=values["anchor"], offset=values["offset"], fallback=fallback, pre=pre, post=post,
                      frames=values["frames"], min_duration=min_duration, max_duration=max_duration,
                      merge=values["merge"], end_margin=values["end_margin"])
    settings = ClipSettings(keywords=kw, random=random_n, match=values["match"], stem=stem, window=spec, seed=seed,
                            min_gap=min_gap, cut=cut, crf=crf, x264_preset=x264_preset or preset, fps=fps, faces=faces,
                            face_size=face_size, face_backend=face_backend, shard_count=shard_count,
                            shard_bytes=int(shard_mb * 1024 * 1024), max_pixels=max_pixels)
    settings.check()
    if faces:
        from faceexpr_cli.crop.geometry import FILLS

        FILLS.get(fill)  # an unknown name is a usage error before any work
        settings.face_fill = fill
    items = resolve_inputs(list(inputs), transcript=transcript, transcript_format=transcript_format)
    try:
        run = run_clip(items, out, settings, overwrite=overwrite, **on)
    except KeyboardInterrupt:
        raise ClipInterrupted("interrupted", f"finished clips are kept in {out}; run the same command again "
                                             "to resume") from None
    if json_out:
        print_json({"out": str(out), **run.stats})
    else:
        stdout.print(summary_line(run.stats, str(out)))
    if run.stats["inputs"]["failed"]:
        raise BatchFailures(run.stats["inputs"]["failed"], len(items), out / "index.parquet")
    faceless = sum(n for reason, n in run.stats["dropped"].items() if "face" in reason)
    if faces and run.stats["clips"] == 0 and faceless:
        from faceexpr_cli.errors import DataError

        raise DataError(f"no clip written: {faceless} windows had no single face to crop (--faces)",
                        "check that the videos show a face, or leave out --faces")


def register(app: typer.Typer) -> None:
    app.command("clip")(clip)
