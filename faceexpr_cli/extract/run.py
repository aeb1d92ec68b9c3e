"""The `fx extract-feats` run: expand inputs, load the model and face backend once, skip what is done, extract
every other video in order, then write ``features.parquet`` and ``stats.json`` and report failures by exit code.

Videos run one after another in this process: the expression model dominates the time and already uses every
core (Torch intra-op threads, or ONNX Runtime's), and frames are batched within each video.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceexpr_cli.console import log, progress
from faceexpr_cli.errors import BatchFailures, UsageError
from faceexpr_cli.executors import ExecutorSpec, Resources, log_summary, run_items
from faceexpr_cli.extract import records
from faceexpr_cli.extract.features import check_weights, load_emotion
from faceexpr_cli.extract.inputs import expand
from faceexpr_cli.extract.model import ExpressionModel
from faceexpr_cli.extract.options import ExtractOptions
from faceexpr_cli.extract.video import extract_video
from faceexpr_cli.inputs import require_inputs
from faceexpr_cli.runlock import output_lock


@dataclass
class ExtractResult:
    out: Path
    index: Path
    stats: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return int(self.stats["failed"])


def extract_features(inputs: list[str | Path], model: str | Path | ExpressionModel | None, out: str | Path,
                     options: ExtractOptions | None = None, *, backend: str | None = None, device: str = "cpu",
                     allow_cpu_fallback: bool = False, resume: bool = True,
                     raise_on_failure: bool = True, executor: ExecutorSpec | None = None) -> ExtractResult:
    """Expression tokens per face trajectory for every input video (see docs/extract.md). ``executor`` (``ray``)
    runs the videos as Ray tasks with the same per-video code; rows come back in input order."""
    require_inputs(inputs)  # a mistyped video is one line before the model loads, and --out is not made
    spec = (executor or ExecutorSpec()).check()
    if not spec.distributed and spec.workers > 1:
        raise UsageError("fx extract-feats runs its videos in this process; --workers N needs --executor ray")
    opts = (options or ExtractOptions()).validate().resolve(model is not None)
    out = Path(out)
    check_weights(opts.features, opts.face_backend)  # a missing weight file is one line, before any work
    if "tokens" not in opts.features:
        model = None  # the expression model is not needed
    elif not isinstance(model, ExpressionModel):  # a bad model folder fails before anything is written
        model = ExpressionModel.load(model, backend, device, subject=opts.subject,
                                     allow_cpu_fallback=allow_cpu_fallback)
    emotion = load_emotion(device, opts.batch_size) if "emotion" in opts.features else None
    items = expand(list(inputs), exclude=out)
    from faceexpr_cli.face import get_backend

    # one run per --out (a second one refuses with one line); a file there is a usage error, before any video
    with output_lock(out, "fx extract-feats"):
        face = get_backend(opts.face_backend, **opts.face_options).prepare()
        settings = opts.fingerprint(model.identity if model is not None else "none")
        done = records.done_rows(out, settings) if resume else {}
        todo = [it for it in items if it.source not in done]
        rows: list[dict[str, Any]] = [done[it.source] for it in items if it.source in done]
        if done:
            log.info("resume: %d of %d inputs already done in %s", len(rows), len(items), out)
        t0 = time.perf_counter()
        summary = None
        if spec.distributed and todo:
            ran_on = model.device if model is not None else device  # "auto" as resolved here: a GPU asks for one
            job = ExtractJob(str(out.resolve()), opts, settings, model, ran_on, allow_cpu_fallback)
            summary = run_items(spec, job, todo, lambda it, row: rows.append(merge_row(out, row)), label="extract")
            log_summary(summary)
        else:
            with progress() as bar:
                videos = bar.add_task("videos", total=len(todo))
                frames = bar.add_task("face frames", total=None)
                for it in todo:
                    bar.update(videos, description=f"extract {Path(it.source).name[:30]}")
                    rows.append(extract_one(it, out, model, opts, face, settings,
                                            lambda n: bar.advance(frames, n), emotion))
                    bar.advance(videos)
        wall = time.perf_counter() - t0
        index = records.write_index(out, rows)
        stats = run_stats(rows, model, opts, wall, inputs=len(items), resumed=len(items) - len(todo))
        if summary is not None:
            stats["executor"] = summary.to_dict()
        records.write_stats(out, stats)
    result = ExtractResult(out, index, stats, rows)
    if raise_on_failure and result.failed:
        raise BatchFailures(result.failed, len(items), index)
    return result


def extract_one(item, out: Path, model: ExpressionModel | None, opts: ExtractOptions, face, settings: str,
                on_frames=None, emotion=None) -> dict[str, Any]:
    """One video on any executor: its files and its index part; returns its row."""
    row = extract_video(item, out, model, opts, face, settings, on_frames, emotion)
    records.write_part(out, row)
    return row


def merge_row(out: Path, row: dict[str, Any]) -> dict[str, Any]:
    """Driver side: a row that came back from a worker that could not write here (or a failed shard's)."""
    if not (records.parts_dir(out) / f"{row['source_id']}.parquet").is_file():
        records.write_part(out, row)
    return row


_loaded: dict[tuple, tuple] = {}  # per worker process: (model, emotion model, face backend) of a job


@dataclass
class ExtractJob:
    """``fx extract-feats`` on another executor: each worker loads the model and face backend once, then runs
    ``extract_one`` (the local loop's function) per video."""

    out: str
    opts: ExtractOptions
    settings: str
    model: ExpressionModel | None = field(default=None, repr=False)  # sent as its folder, loaded in the worker
    device: str = "cpu"
    allow_cpu_fallback: bool = False
    ordered: bool = True  # the index keeps the input order, as locally
    resources: Resources = field(init=False)

    def __post_init__(self):
        gpu = self.device.startswith("cuda")
        self.resources = Resources(num_cpus=1, num_gpus=1 if gpu else 0, memory_mb=2048)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        m = state.pop("model")
        state["model_ref"] = (str(m.path), m.backend, self.opts.subject) if m is not None else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.model = None

    def _models(self):
        ref = self.__dict__.get("model_ref")
        key = (ref, self.device, self.allow_cpu_fallback, self.opts.batch_size, tuple(self.opts.features),
               self.opts.face_backend, json.dumps(self.opts.face_options, sort_keys=True, default=str))
        if key not in _loaded:
            from faceexpr_cli.face import get_backend

            model = self.model
            if model is None and ref is not None:
                model = ExpressionModel.load(ref[0], ref[1], self.device, subject=ref[2],
                                             allow_cpu_fallback=self.allow_cpu_fallback)
            emotion = load_emotion(self.device, self.opts.batch_size) if "emotion" in self.opts.features else None
            face = get_backend(self.opts.face_backend, **self.opts.face_options).prepare()
            _loaded[key] = (model, emotion, face)
        return _loaded[key]

    def key(self, item) -> str:
        return item.source_id

    def run_item(self, item) -> dict[str, Any]:
        model, emotion, face = self._models()
        return extract_one(item, Path(self.out), model, self.opts, face, self.settings, None, emotion)

    def failed(self, item, error: str) -> dict[str, Any]:
        return records.new_row(item, "error", error, settings=self.settings)

    def checkpoint_root(self) -> str:
        return self.out


def run_stats(rows: list[dict[str, Any]], model: ExpressionModel | None, opts: ExtractOptions, wall: float, *,
              inputs: int, resumed: int) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == "ok"]
    return {
        "inputs": inputs,
        "videos": dict(Counter(r["status"] for r in rows)),
        "failed": sum(1 for r in rows if r["status"] in records.FAILED),
        "failures": sorted({r["error"] for r in rows if r["status"] in records.FAILED})[:50],
        "resumed_skipped": resumed,
        "trajectories": sum(r["trajectories"] or 0 for r in ok),
        "tokens": sum(r["tokens"] or 0 for r in ok),
        "no_face_frames": sum(r["no_face_frames"] or 0 for r in rows),
        "wall_seconds": round(wall, 3),
        "model_seconds": round(model.seconds, 3) if model else None,
        "model_frames_per_second": round(model.frames / model.seconds, 2) if model and model.seconds else None,
        "model": model.describe() if model else None,
        "features": list(opts.features),
        "options": opts.to_dict(),
    }
