"""``fx animate eval``: the reconstruction protocol of the FOMM paper on our own videos.

Per video: the first frame is the source, every frame is rebuilt from its own motion (absolute key points for
``fomm``, as the original reconstruction mode does; landmarks relative to frame 0 for ``landmarks``), and the
rebuilt frames are compared with the real ones:
- L1: mean absolute pixel difference, values in [0, 1];
- AKD: mean distance (pixels of the compared frames) between the 68 landmarks found on the real and the rebuilt
  frame (dlib, offline), over frames where both have a face;
- AED: mean L2 distance between the identity embeddings (dlib's 128-d) of the real and the rebuilt frame.
Both come from ``faceexpr_cli.metrics``, which ``fx swap eval`` uses too.
Results go to ``metrics.json`` (means over videos) and ``per_video.csv``; a video that fails is recorded as an
error row and the run goes on.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.animate.engines import EngineOptions, check_engine_options, get_engine
from faceexpr_cli.animate.inputs import DEFAULT_MAX_PIXELS, check_pixels
from faceexpr_cli.console import log
from faceexpr_cli.errors import BatchFailures, FxError, UsageError
from faceexpr_cli.safety import check_number

COLUMNS = ["video", "status", "frames", "l1", "akd", "aed", "face_frames", "error"]


@dataclass
class EvalOptions:
    engine: str = "landmarks"
    every: int = 1  # landmark/embedding metrics on every N-th frame (L1 uses all)
    max_frames: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # larger videos become error rows before they are decoded
    engine_options: EngineOptions = field(default_factory=EngineOptions)

    def validate(self) -> EvalOptions:
        check_number(self.every, "--every", minimum=1)
        check_number(self.max_frames, "--max-frames", minimum=1)
        check_number(self.max_pixels, "--max-pixels", minimum=1)
        check_engine_options(self.engine, self.engine_options)
        return self


def _videos(inputs: list[str | Path]) -> list[Path]:
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix.lower() in (".mp4", ".mov", ".mkv", ".avi"))
        elif p.exists():
            found.append(p)
        else:
            from faceexpr_cli.errors import MissingFileError

            raise MissingFileError(p, "video")
    if not found:
        raise UsageError("no videos to evaluate", "pass video files or folders that hold .mp4 files")
    return found


def face_metrics(backend, real: np.ndarray, fake: np.ndarray) -> tuple[float | None, float | None]:
    """(landmark distance, embedding distance) between two frames, None where either has no face."""
    a = backend.analyze(np.ascontiguousarray(real), landmarks=True, embed=True)
    b = backend.analyze(np.ascontiguousarray(fake), landmarks=True, embed=True)
    if not a or not b:
        return None, None
    from faceexpr_cli.metrics import identity_distance, landmark_distance

    fa, fb = max(a, key=lambda f: f.size), max(b, key=lambda f: f.size)
    return landmark_distance(fa.landmarks68, fb.landmarks68), identity_distance(fa.embedding, fb.embedding)


def evaluate_video(engine, backend, path: Path, opts: EvalOptions) -> dict[str, Any]:
    import cv2

    from faceexpr_cli.media import probe, read_frames

    info = probe(path)
    check_pixels(path, info.width, info.height, opts.max_pixels)
    frames = read_frames(path, max_frames=opts.max_frames)
    if len(frames) == 0:
        raise UsageError(f"{path}: has no frames")
    if engine.size:
        frames = np.stack([cv2.resize(f, (engine.size, engine.size), interpolation=cv2.INTER_AREA) for f in frames])
    source = engine.set_source(frames[0], f"{path} frame 0")
    motion = engine.driving_motion(iter(frames), str(path))
    relative = engine.landmark_motion
    targets = engine.retarget(source, motion, motion.frame(0), relative=relative, adapt_scale=False)
    step = max(1, engine.options.batch)
    l1, akd, aed = [], [], []
    for i in range(0, len(frames), step):
        fake = engine.render(targets.slice(i, i + step))
        real = frames[i:i + step]
        if fake.shape[1:3] != real.shape[1:3]:  # liveportrait upsamples 2x: compare at the input size
            size = (real.shape[2], real.shape[1])
            fake = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in fake])
        l1.append(np.abs(fake.astype(np.float32) - real.astype(np.float32)).mean(axis=(1, 2, 3)) / 255.0)
        for j in range(len(real)):
            if (i + j) % opts.every == 0:
                k, e = face_metrics(backend, real[j], fake[j])
                if k is not None:
                    akd.append(k)
                    aed.append(e)
    row = {"video": str(path), "status": "ok", "frames": len(frames), "l1": float(np.concatenate(l1).mean()),
           "akd": float(np.mean(akd)) if akd else None, "aed": float(np.mean(aed)) if aed else None,
           "face_frames": len(akd), "error": None}
    return row


def evaluate(inputs: list[str | Path], out_dir: str | Path, opts: EvalOptions | None = None, *,
             raise_on_failure: bool = True) -> dict[str, Any]:
    """Run the protocol over videos (files or folders); writes metrics.json and per_video.csv in ``out_dir``.

    With ``raise_on_failure`` false the summary comes back with its ``failed`` count (the CLI prints it first)."""
    from faceexpr_cli.console import progress
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.runlock import ensure_out_dir

    opts = (opts or EvalOptions()).validate()
    videos = _videos(inputs)
    out_dir = ensure_out_dir(out_dir, "--out")  # a file there is a usage error before any video is read
    engine = get_engine(opts.engine, opts.engine_options)
    backend = get_backend(opts.engine_options.face_backend)
    rows = []
    with progress(transient=True) as bar:
        task = bar.add_task("eval", total=len(videos))
        for path in videos:
            try:
                rows.append(evaluate_video(engine, backend, path, opts))
            except FxError as exc:
                log.warning("%s: %s", path, exc.one_line())
                rows.append({"video": str(path), "status": "error", "error": exc.one_line()})
            bar.advance(task)
    ok = [r for r in rows if r["status"] == "ok"]

    def mean(key: str) -> float | None:
        vals = [r[key] for r in ok if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    summary = {"engine": opts.engine, "protocol": "reconstruction (source = first frame)", "videos": len(rows),
               "failed": len(rows) - len(ok), "l1": mean("l1"), "akd": mean("akd"), "aed": mean("aed"),
               "frames": int(sum(r["frames"] for r in ok)), "details": engine.describe(),
               "per_video": str(out_dir / "per_video.csv")}
    _write_csv(out_dir / "per_video.csv", rows)
    tmp = out_dir / ".metrics.json.part"
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(out_dir / "metrics.json")
    if raise_on_failure and len(ok) < len(rows):
        raise BatchFailures(len(rows) - len(ok), len(rows), out_dir / "per_video.csv")
    return summary


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    tmp.replace(path)
