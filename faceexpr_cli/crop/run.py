"""The ``fx crop`` run: expand inputs, skip what is done, process videos (in worker processes if asked),
record every result, write the manifest and ``stats.json``, and report failures through the exit code."""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceexpr_cli.console import log, progress
from faceexpr_cli.crop import manifest as mf
from faceexpr_cli.crop.inputs import Item, expand_inputs
from faceexpr_cli.crop.options import CropOptions
from faceexpr_cli.crop.process import process_video
from faceexpr_cli.errors import BatchFailures, UsageError


@dataclass
class CropResult:
    out: Path
    manifest: Path
    stats: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return int(self.stats["failed"])


_worker_backend = None


def _work(item: Item, out: str, opts: CropOptions) -> list[dict]:
    """Runs in a worker process; the backend (and its models) is built once per process."""
    global _worker_backend
    if item.skip:
        return process_video(item, Path(out), opts)
    if _worker_backend is None:
        from faceexpr_cli.face import get_backend

        _worker_backend = get_backend(opts.backend, **opts.backend_options)
    rows = process_video(item, Path(out), opts, _worker_backend)
    mf.write_part(Path(out), item.source_id, rows)
    return rows


def crop_videos(inputs: list[str | Path], out: str | Path, options: CropOptions | None = None, *,
                workers: int = 1, resume: bool = True, raise_on_failure: bool = True) -> CropResult:
    """Crop face clips from videos, directories of videos, or manifests listing videos (see docs/face.md)."""
    opts = (options or CropOptions()).validate()
    if workers < 1:
        raise UsageError("--workers must be >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = expand_inputs(list(inputs), exclude=out)
    if not items:
        raise UsageError("no inputs to crop", "pass video files, directories or a manifest")
    from faceexpr_cli.face import get_backend

    # unknown names, bad options and missing models fail once, before any work
    backend = get_backend(opts.backend, **opts.backend_options).prepare()
    done = mf.done_sources(out) if resume else {}
    todo = [it for it in items if it.source not in done]
    rows: list[dict[str, Any]] = [r for it in items if it.source in done for r in done[it.source]]
    if done:
        log.info("resume: %d of %d inputs already done in %s", len(items) - len(todo), len(items), out)
    t0 = time.perf_counter()
    pool, futures = None, {}
    if workers > 1 and len(todo) > 1:
        # Fork (Linux) before the progress bar starts its thread - the first submit starts the workers - so
        # they inherit the loaded models instead of re-importing everything; elsewhere, spawn.
        global _worker_backend
        _worker_backend = backend
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx)
        futures = {pool.submit(_work, it, str(out), opts): it for it in todo}
    with progress() as bar:
        task = bar.add_task("crop", total=len(todo))
        if pool is None:
            for it in todo:
                bar.update(task, description=f"crop {Path(it.source).name[:30]}")
                new = process_video(it, out, opts, backend)
                mf.write_part(out, it.source_id, new)
                rows.extend(new)
                bar.advance(task)
        else:
            with pool:
                for fut in as_completed(futures):
                    it = futures[fut]
                    try:
                        new = fut.result()
                    except Exception as exc:  # a worker that died (e.g. out of memory) fails only its item
                        new = [mf.new_row(it.source, it.source_id, "error", f"worker failed: {exc}")]
                        mf.write_part(out, it.source_id, new)
                    rows.extend(new)
                    bar.advance(task)
    wall = time.perf_counter() - t0
    path = mf.write_manifest(out, rows)
    stats = run_stats(items, rows, opts, wall, skipped=len(items) - len(todo), workers=workers)
    mf.write_stats(out, stats)
    result = CropResult(out, path, stats, rows)
    if raise_on_failure and result.failed:
        raise BatchFailures(result.failed, len(items), path)
    return result


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
