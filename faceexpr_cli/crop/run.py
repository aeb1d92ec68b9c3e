"""The ``fx crop`` run: expand inputs, skip what is done, process videos (in worker processes if asked),
record every result, write the manifest and ``stats.json``, and report failures through the exit code."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceexpr_cli.console import log, progress
from faceexpr_cli.crop import manifest as mf
from faceexpr_cli.crop import runinfo
from faceexpr_cli.crop.inputs import Item, expand_inputs
from faceexpr_cli.crop.options import CropOptions
from faceexpr_cli.crop.process import clip_dir, run_one
from faceexpr_cli.errors import BatchFailures, UsageError
from faceexpr_cli.executors import ExecutorSpec


@dataclass
class CropResult:
    out: Path
    manifest: Path
    stats: dict[str, Any]
    rows: list[dict[str, Any]]  # this run's inputs (manifest.parquet also keeps other sources done in --out)

    @property
    def failed(self) -> int:
        return int(self.stats["failed"])


class CropInterrupted(KeyboardInterrupt):
    """Ctrl-C: the finished videos are recorded (``result``); the rest is removed and a re-run does it."""

    def __init__(self, result: CropResult):
        super().__init__()
        self.result = result


def crop_videos(inputs: list[str | Path], out: str | Path, options: CropOptions | None = None, *,
                workers: int = 1, resume: bool = True, overwrite: bool = False,
                raise_on_failure: bool = True, executor: ExecutorSpec | None = None) -> CropResult:
    """Crop face clips from videos, directories of videos, or manifests listing videos (see docs/face.md).

    One run per output folder (a second one refuses); Ctrl-C stops within a frame or so, keeps every finished
    video's rows and removes the rest, so a re-run resumes. ``executor`` runs the videos elsewhere (``ray``:
    shards of videos as Ray tasks, see docs/scale.md) with the same per-video code and the same outputs.
    """
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.runlock import output_lock

    opts = (options or CropOptions()).validate()
    if workers < 1:
        raise UsageError("--workers must be >= 1")
    spec = (executor or ExecutorSpec(workers=workers)).check()
    # unknown names, bad options and missing models fail once, before any work
    backend = get_backend(opts.backend, **opts.backend_options).prepare()
    with output_lock(out, "fx crop") as out:
        items = expand_inputs(list(inputs), exclude=out)
        if not items:
            raise UsageError("no inputs to crop", "pass video files, directories or a manifest")
        if overwrite:
            runinfo.clear(out)
        runinfo.check_settings(out, opts.settings())
        runinfo.remove_partials(out)
        return _run(items, out, opts, backend, spec, resume=resume, raise_on_failure=raise_on_failure)


def _run(items: list[Item], out: Path, opts: CropOptions, backend, spec: ExecutorSpec, *, resume: bool,
         raise_on_failure: bool) -> CropResult:
    workers = spec.workers
    done = mf.done_sources(out) if resume else {}
    todo = [it for it in items if it.source not in done]
    if done:
        log.info("resume: %d of %d inputs already done in %s", len(items) - len(todo), len(items), out)
    t0 = time.perf_counter()
    summary = None
    try:
        if spec.distributed and todo:
            summary = _process_on(spec, todo, out, opts)
        else:
            _process(todo, out, opts, backend, workers)
    except KeyboardInterrupt as exc:
        result = _record(items, todo, out, opts, time.perf_counter() - t0, workers, interrupted=True)
        raise CropInterrupted(result) from exc
    result = _record(items, todo, out, opts, time.perf_counter() - t0, workers, summary=summary)
    if raise_on_failure and result.failed:
        raise BatchFailures(result.failed, len(items), result.manifest)
    return result


def _process(todo: list[Item], out: Path, opts: CropOptions, backend, workers: int) -> None:
    """Every item's rows end up in its manifest part (written by whichever process cropped it)."""
    if workers > 1 and len(todo) > 1:
        from faceexpr_cli.crop.workers import WorkerPool

        with WorkerPool(min(workers, len(todo)), backend) as pool:  # forks before the progress bar's thread
            finished = pool.run(todo, out, opts)
            with progress() as bar:
                task = bar.add_task("crop", total=len(todo))
                for it, fut in finished:
                    if fut.cancelled():
                        continue
                    try:
                        fut.result()
                    except Exception as exc:  # a worker that died (e.g. out of memory) fails only its item
                        mf.write_part(out, it.source_id, [mf.new_row(it.source, it.source_id, "error",
                                                                     f"worker failed: {exc}")])
                    bar.advance(task)
        return
    with progress() as bar:
        task = bar.add_task("crop", total=len(todo))
        for it in todo:
            bar.update(task, description=f"crop {Path(it.source).name[:30]}")
            run_one(it, out, opts, backend)
            bar.advance(task)


def _process_on(spec: ExecutorSpec, todo: list[Item], out: Path, opts: CropOptions):
    """The videos on another executor (Ray): same per-video function, rows merged into parts as they arrive."""
    from faceexpr_cli.crop.job import CropJob, merge_rows
    from faceexpr_cli.executors import log_summary, run_items

    summary = run_items(spec, CropJob(str(out.resolve()), opts), todo, lambda it, rows: merge_rows(out, it, rows),
                        label="crop")
    log_summary(summary)
    return summary


def _record(items: list[Item], todo: list[Item], out: Path, opts: CropOptions, wall: float, workers: int, *,
            interrupted: bool = False, summary=None) -> CropResult:
    """manifest.parquet from every part in the folder (other sources' rows are kept), stats.json for this run.

    After Ctrl-C, a source without a part did not finish: its clips (if any) are removed, so every clip left
    under a final name is one that its manifest row describes."""
    all_rows = mf.read_parts(out)
    finished = {r["source"] for r in all_rows}
    if interrupted:
        for it in todo:
            if it.source not in finished:
                shutil.rmtree(out / clip_dir(it), ignore_errors=True)
        runinfo.remove_partials(out)
    wanted = {it.source for it in items}
    rows = [r for r in all_rows if r["source"] in wanted]
    path = mf.write_manifest(out, all_rows)
    skipped = len(items) - len(todo)
    stats = run_stats(items, rows, opts, wall, skipped=skipped, workers=workers)
    if summary is not None:
        stats["executor"] = summary.to_dict()
    if interrupted:
        stats["interrupted"] = True
        stats["unfinished"] = sum(1 for it in todo if it.source not in finished)
        log.debug("interrupted: %d of %d inputs unfinished", stats["unfinished"], len(items))
    mf.write_stats(out, stats)
    return CropResult(out, path, stats, rows)


def run_stats(items: list[Item], rows: list[dict[str, Any]], opts: CropOptions, wall: float, *, skipped: int,
              workers: int) -> dict[str, Any]:
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    status_of = {}
    for source, rs in by_source.items():
        kinds = {r["status"] for r in rs}
        status_of[source] = "error" if "error" in kinds else "ok" if "ok" in kinds else sorted(kinds)[0]
    clips = [r for r in rows if r["status"] == "ok"]
    processed = [r for r in rows if r.get("seconds")]
    video_seconds = sum((r["end_time"] or 0) - (r["start_time"] or 0) for r in clips)
    return {
        "inputs": len(items),
        "videos": Counter(status_of.values()),
        "failed": sum(1 for s in status_of.values() if s in mf.FAILED),
        "failures": sorted({r["error"] for r in rows if r["status"] in mf.FAILED})[:50],
        "resumed_skipped": skipped,
        "clips": len(clips),
        "clips_dropped": sum(1 for r in rows if r["status"] == "dropped"),
        "clip_seconds": round(video_seconds, 3),
        "wall_seconds": round(wall, 3),
        "processing_seconds": round(sum({r["source"]: r["seconds"] for r in processed}.values()), 3),
        "workers": workers,
        "options": opts.to_dict(),
    }
