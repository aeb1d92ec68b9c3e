"""Benchmark: 200 one-second keyword clips from a 10-minute 640x360 H.264 + AAC video, on one core.

    .venv/bin/python benchmarks/clip.py [--clips 200] [--minutes 10] [--naive-sample 40] [--cache DIR]

Compares ``fx clip`` (the whole pipeline: transcript -> hits -> one-pass cutting -> tar shards) in ``exact`` and
``fast`` modes with the naive approach, one ffmpeg process per clip with input seeking, in three forms:
``media.cut`` per clip (fx's own single-clip cut: x264 veryfast crf 18, AAC), the bare ffmpeg command with
exactly exact mode's encoder settings, and the bare command with ffmpeg's defaults (x264 medium crf 23).
The process is pinned to one CPU; decoders and encoders run one thread.
Reports wall-clock clips/s and CPU seconds per clip (user + system, children included), which is the steadier
figure on a shared machine. The source video is a looped talking head (cached after the first run).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from faceexpr_cli.clip.inputs import resolve_inputs
from faceexpr_cli.clip.pipeline import ClipSettings, run_clip
from faceexpr_cli.clip.windows import WindowSpec
from faceexpr_cli.console import setup_logging
from faceexpr_cli.media import cut, iter_frames, probe, run_ffmpeg
from faceexpr_cli.media.clip_decode import decode_clip
from faceexpr_cli.samples import make_talking_head
from faceexpr_cli.transcripts.vtt_writer import write_youtube_vtt

FILLER = ["so", "today", "we", "will", "try", "a", "few", "faces", "and", "then"]


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_source(cache: Path, minutes: float) -> Path:
    """A ``minutes``-long 640x360 30 fps talking head (x264 default GOP, AAC), looped from a 20 s render."""
    src = cache / f"talk_{minutes:g}min_640x360.mp4"
    if src.exists():
        return src
    cache.mkdir(parents=True, exist_ok=True)
    seg = make_talking_head(cache / "segment.mp4", seconds=20.0, fps=30.0, width=640, height=360, seed=1)
    loops = int(minutes * 60 // 20)
    run_ffmpeg(["-stream_loop", str(loops - 1), "-i", str(seg.path), "-t", f"{minutes * 60:.3f}",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(src)], seg.path)
    return src


def write_transcript(video: Path, n_clips: int, duration: float) -> tuple[Path, list[float]]:
    """A word-timed VTT with the keyword "smile" ``n_clips`` times, evenly spread, among filler words."""
    words, hits = [], []
    step = (duration - 2.0) / n_clips
    for i in range(n_clips):
        t0 = 0.5 + i * step
        for j, w in enumerate(FILLER[:4]):
            words.append((w, t0 + 0.25 * j, t0 + 0.25 * j + 0.2))
        at = t0 + 1.0 + 0.013 * (i % 7)  # off the frame grid
        words.append(("smile", at, at + 0.3))
        hits.append(at)
    return write_youtube_vtt(video.with_suffix(".vtt"), words, words_per_line=5), hits


def run_fx(video: Path, vtt: Path, out: Path, mode: str, preset: str) -> tuple[float, float, int]:
    settings = ClipSettings(keywords=["smile"], window=WindowSpec(post=1.0), cut=mode, x264_preset=preset,
                            threads=1)
    c, t = cpu_seconds(), time.perf_counter()
    run = run_clip(resolve_inputs([video], transcript=vtt), out, settings, overwrite=True)
    return time.perf_counter() - t, cpu_seconds() - c, run.stats["clips"]


def run_media_cut(video: Path, starts: list[float], out: Path) -> tuple[float, float, int]:
    out.mkdir(parents=True, exist_ok=True)
    c, t = cpu_seconds(), time.perf_counter()
    for i, s in enumerate(starts):
        cut(video, out / f"clip{i:04d}.mp4", s, s + 1.0, mode="exact")
    return time.perf_counter() - t, cpu_seconds() - c, len(starts)


def check_exact(video: Path, out: Path, n: int = 5) -> float:
    """Largest mean absolute difference between a clip's first frame and the source frame it claims to be."""
    import json
    import tarfile

    import numpy as np

    worst = 0.0
    with tarfile.open(sorted(out.glob("clips-*.tar"))[0]) as tar:
        names = [m for m in tar.getmembers() if m.name.endswith(".json")][:: max(1, 200 // n)][:n]
        for m in names:
            meta = json.loads(tar.extractfile(m).read())
            clip = tar.extractfile(m.name.replace(".json", ".mp4")).read()
            first = decode_clip(clip, audio=False, num_frames=1).frames[0].astype(float)
            src = next(iter_frames(video, start=meta["actual_start"], max_frames=1)).image.astype(float)
            worst = max(worst, float(np.abs(first - src).mean()))
    return worst


def run_naive(video: Path, starts: list[float], out: Path, encode: list[str]) -> tuple[float, float, int]:
    out.mkdir(parents=True, exist_ok=True)
    c, t = cpu_seconds(), time.perf_counter()
    for i, s in enumerate(starts):
        run_ffmpeg(["-threads", "1", "-ss", f"{s:.3f}", "-i", str(video), "-t", "1.000", *encode,
                    "-threads", "1", str(out / f"clip{i:04d}.mp4")], video)
    return time.perf_counter() - t, cpu_seconds() - c, len(starts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--naive-sample", type=int, default=40, help="naive clips actually run (rate extrapolates)")
    ap.add_argument("--preset", default="veryfast", help="x264 preset for exact mode and the naive baseline")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fx-bench-clip")
    args = ap.parse_args()
    setup_logging(-1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, children included
    video = make_source(args.cache, args.minutes)
    info = probe(video)
    vtt, hits = write_transcript(video, args.clips, info.duration)
    print(f"source: {video} ({info.width}x{info.height}, {info.fps:g} fps, {info.duration:.0f} s, "
          f"{'audio' if info.has_audio else 'no audio'}); {len(hits)} keyword hits; one core")
    work = Path(tempfile.mkdtemp(prefix="fx-bench-clip-"))
    rows = []
    try:
        for mode in ("exact", "fast"):
            wall, cpu, n = run_fx(video, vtt, work / mode, mode, args.preset)
            rows.append((f"fx clip --cut {mode}", n, wall, cpu))
        diff = check_exact(video, work / "exact")
        sample = [round(h * info.fps) / info.fps for h in hits][: args.naive_sample]
        wall, cpu, n = run_media_cut(video, sample, work / "media_cut")
        rows.append(("naive: media.cut per clip (veryfast, crf 18)", n, wall, cpu))
        same = ["-c:v", "libx264", "-preset", args.preset, "-crf", "18", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k"]
        wall, cpu, n = run_naive(video, sample, work / "naive", same)
        rows.append((f"naive, same encoder ({args.preset}, crf 18)", n, wall, cpu))
        wall, cpu, n = run_naive(video, sample[: max(5, len(sample) // 2)], work / "naive_default", [])
        rows.append(("naive, ffmpeg defaults (medium, crf 23)", n, wall, cpu))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'approach':44s} {'clips':>6s} {'clips/s':>9s} {'CPU s/clip':>11s}")
    for name, n, wall, cpu in rows:
        print(f"{name:44s} {n:6d} {n / wall:9.2f} {cpu / n:11.3f}")
    ours_rate, ours_cpu = rows[0][1] / rows[0][2], rows[0][3] / rows[0][1]
    print()
    for name, n, wall, cpu in rows[2:]:
        print(f"exact vs {name}: {ours_rate / (n / wall):.2f}x clips/s, {cpu / n / ours_cpu:.2f}x less CPU/clip")
    print(f"(target: exact >= 3x the naive approach); exact first frames vs source: mean abs diff <= {diff:.1f}/255")
    print(f"fast: {rows[1][1] / rows[1][2]:.1f} clips/s (target >= 50)")


if __name__ == "__main__":
    main()
