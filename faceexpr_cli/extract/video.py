"""One video through `fx extract-feats`: probe, track faces, crop the sampled frames, tokens in batches, write.

Two sequential decodes and never a seek per frame, as in ``fx crop``: the first at ``analysis_side`` feeds the
face tracker (boxes are smoothed only when a track ends, so crops cannot be cut during it); the second, at full
size from the first sampled face frame (one seek), crops every trajectory's square out of each sampled frame and
hands the model ``batch_size`` crops at a time. Nothing raises for a bad video: its row carries the reason.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.crop.geometry import crop_square
from faceexpr_cli.errors import FxError, MediaError
from faceexpr_cli.extract import records
from faceexpr_cli.extract.features import EMOTION_LABELS, empty_rows, face_rows
from faceexpr_cli.extract.inputs import VideoItem
from faceexpr_cli.extract.model import ExpressionModel
from faceexpr_cli.extract.options import ExtractOptions
from faceexpr_cli.extract.trajectories import Plan, plan, smooth_tokens
from faceexpr_cli.face import FaceBackend, TrackerOptions, Tracks, track_video
from faceexpr_cli.media.timeline import SAME_FRAME


def _track(item: VideoItem, info, opts: ExtractOptions, backend: FaceBackend) -> Tracks:
    topts = TrackerOptions(stride=opts.detect_every, detect_size=opts.detect_size, landmarks=False)
    return track_video(item.source, backend, decode_side=opts.analysis_side, options=topts)


def _tokenize(item: VideoItem, info, p: Plan, tracks: Tracks, model: ExpressionModel | None, opts: ExtractOptions,
              on_frames: Callable[[int], None] | None, backend: FaceBackend | None = None, emotion: Any = None
              ) -> None:
    """The second decode: on each sampled frame, every trajectory's crop (tokens, ``batch_size`` at a time), its
    emotion crop at the box, and the backend's mesh / 68 points at the box, as ``opts.features`` ask."""
    from faceexpr_cli.face.emotion import crop_faces
    from faceexpr_cli.face.types import Face
    from faceexpr_cli.media import iter_frames

    features = opts.feature_names(model is not None)
    want_tokens = "tokens" in features and model is not None
    want_points = "mesh" in features or "landmarks" in features
    wanted: dict[int, list[tuple[int, int]]] = {}
    for ti, tr in enumerate(p.trajectories):
        for j, f in enumerate(tr.frames):
            wanted.setdefault(int(f), []).append((ti, j))
    for tr in p.trajectories:
        tr.tokens = np.full((len(tr), 0), np.nan, np.float32) if want_tokens else None
        tr.feats = {k: np.full((len(tr), *shape), np.nan, np.float32) for k, shape in empty_rows(features).items()}
    got: dict[tuple[int, int], np.ndarray] = {}
    seen: set[tuple[int, int]] = set()
    times, indices = tracks.frame_times, tracks.frame_indices
    first, last = min(wanted), max(wanted)
    t_first = float(times[np.searchsorted(indices, first)])
    t_last = float(times[np.searchsorted(indices, last)])
    size = model.size if want_tokens else 0
    crops: list[np.ndarray] = []
    keys: list[tuple[int, int]] = []
    emo_crops: list[np.ndarray] = []
    emo_keys: list[tuple[int, int]] = []

    def flush() -> None:
        if crops:
            for key, tok in zip(keys, model.tokens(np.stack(crops)), strict=True):
                got[key] = tok
            crops.clear()
            keys.clear()
        if emo_crops:
            probs = emotion.predict(emo_crops).probabilities
            for (ti, j), row in zip(emo_keys, probs, strict=True):
                p.trajectories[ti].feats["emotion"][j] = row
            emo_crops.clear()
            emo_keys.clear()

    for frame in iter_frames(item.source, start=t_first if first else None, end=t_last + 10 * SAME_FRAME):
        # both decodes see the same timestamps: match them exactly, never by a nominal or average period
        pos = int(np.searchsorted(times, frame.time - SAME_FRAME))
        if pos >= len(times) or abs(times[pos] - frame.time) > SAME_FRAME:
            continue
        here = wanted.get(int(indices[pos]), ())
        if not here:
            continue
        for ti, j in here:
            tr = p.trajectories[ti]
            seen.add((ti, j))
            if want_tokens:
                crops.append(crop_square(frame.image, tr.crops[j], size))
                keys.append((ti, j))
            if emotion is not None:
                emo_crops.extend(crop_faces(frame.image, tr.boxes[j][None]))
                emo_keys.append((ti, j))
        if want_points:  # one landmarks call per frame, on the trajectories' boxes
            faces = backend.landmarks(frame.image, [Face(p.trajectories[ti].boxes[j], 1.0) for ti, j in here])
            for (ti, j), face in zip(here, faces, strict=True):
                tr = p.trajectories[ti]
                for k, v in face_rows(face, tr.crops[j], features).items():
                    tr.feats[k][j] = v
        if on_frames:
            on_frames(len(here))
        if len(crops) >= opts.batch_size or len(emo_crops) >= opts.batch_size:
            flush()
    flush()
    missing = sum(len(v) for v in wanted.values()) - len(seen)
    if missing:
        raise MediaError(item.source, f"the second decode ended early ({missing} sampled face frames missing)",
                         "is the file being written, or damaged near its end?")
    if not want_tokens:
        return
    for ti, tr in enumerate(p.trajectories):
        tr.tokens = np.stack([got[(ti, j)] for j in range(len(tr))]).astype(np.float32)
        if opts.smooth:
            tr.raw_tokens = tr.tokens
            tr.tokens = smooth_tokens(tr.tokens, tr.times, opts.smooth_hz)


def _document(item: VideoItem, info, p: Plan, model: ExpressionModel | None, opts: ExtractOptions,
              npz_name: str | None, table_name: str | None = None) -> dict[str, Any]:
    """The per-video JSON in the seed's layout, plus what a reader needs to interpret it."""
    features = opts.feature_names(model is not None)
    traj = []
    for tr in p.trajectories:
        # rounded as float64: a rounded float32 prints as 21.100000381469727
        feats = _rounded(tr.tokens, 6) if opts.json_floats and tr.tokens is not None else None
        others = {k: _rounded(v, 6) for k, v in tr.feats.items()} if opts.json_floats else {}
        top = ([EMOTION_LABELS[int(i)] if np.isfinite(r).all() else None
                for i, r in zip(np.nan_to_num(tr.feats["emotion"]).argmax(1), tr.feats["emotion"], strict=True)]
               if "emotion" in tr.feats else None)
        traj.append([{"frame_ind": int(f), "time": round(float(t), 4), "box": _rounded(b, 1),
                      "score": round(float(s), 3), **({"feats": feats[j]} if feats is not None else {}),
                      **({"emotion_top": top[j]} if top is not None else {}),
                      **{k: v[j] for k, v in others.items()}}
                     for j, (f, t, b, s) in enumerate(zip(tr.frames, tr.times, tr.boxes, tr.scores, strict=True))])
    return {
        "video_path": item.source, "label": item.label, "label_id": item.label_id, "fields": item.fields,
        "fps": info.fps, "width": info.width, "height": info.height, "stride": opts.stride,
        "features": list(features), "face_backend": opts.face_backend,
        "emotion_labels": list(EMOTION_LABELS) if "emotion" in features else None,
        "feats_from": model.output if model is not None and "tokens" in features else None,
        "token_dim": _dim(p), "smoothed": opts.smooth,
        "smooth_hz": opts.smooth_hz if opts.smooth else None, "model": model.describe() if model else None,
        "traj": traj,
        "trajectories": [{"track_id": tr.track_id, "start_frame": int(tr.frames[0]), "end_frame": int(tr.frames[-1]),
                          "frames": len(tr), "end_reason": tr.end_reason} for tr in p.trajectories],
        "no_face_frames": [int(f) for f in p.no_face],
        "npz": npz_name,
        "parquet": table_name,
    }


def _rounded(values: np.ndarray, decimals: int) -> list:
    return np.round(np.asarray(values, np.float64), decimals).tolist()


def _dim(p: Plan) -> int | None:
    return int(p.trajectories[0].tokens.shape[1]) if p.trajectories and p.trajectories[0].tokens is not None else None


def _arrays(p: Plan) -> dict[str, np.ndarray]:
    trs = p.trajectories
    cat = lambda name: np.concatenate([getattr(t, name) for t in trs])  # noqa: E731
    arrays = {"frame_ind": cat("frames"), "time": cat("times"), "box": cat("boxes"), "crop": cat("crops"),
              "traj": np.concatenate([np.full(len(t), i, np.int32) for i, t in enumerate(trs)]),
              "track_id": np.concatenate([np.full(len(t), t.track_id, np.int32) for t in trs]),
              "no_face_frames": p.no_face.astype(np.int64)}
    if trs[0].tokens is not None:
        arrays["tokens"] = cat("tokens")
    if trs[0].raw_tokens is not None:
        arrays["tokens_raw"] = cat("raw_tokens")
    for name in trs[0].feats:
        arrays[name] = np.concatenate([t.feats[name] for t in trs]).astype(np.float32)
    return arrays


def extract_video(item: VideoItem, out: Path, model: ExpressionModel | None, opts: ExtractOptions,
                  backend: FaceBackend, settings: str, on_frames: Callable[[int], None] | None = None,
                  emotion: Any = None) -> dict[str, Any]:
    """The index row of one input; its JSON (and, with faces, its .npz) written when the row says so."""
    from faceexpr_cli.media.probe import probe_for_processing

    t0 = time.perf_counter()
    common = {"backend": model.backend if model is not None else None, "settings": settings}
    if item.skip:
        return records.new_row(item, "skipped", item.skip, **common)
    if item.error:
        return records.new_row(item, "error", item.error, **common)
    try:
        info = probe_for_processing(item.source, opts.max_pixels)
        tracks = _track(item, info, opts, backend)
        p = plan(tracks, opts.stride, opts.margin, opts.min_face)
        stem = records.output_stem(item)
        meta = dict(fps=info.fps, width=info.width, height=info.height, frames=len(tracks.frame_indices),
                    sampled_frames=len(p.sampled), no_face_frames=len(p.no_face),
                    face_frames=len(p.sampled) - len(p.no_face), trajectories=len(p.trajectories), **common)
        if not p.trajectories:
            records.write_json(out / f"{stem}.json", _document(item, info, p, model, opts, None))
            return records.new_row(item, "no_face", "no face found on the sampled frames", json=f"{stem}.json",
                                   tokens=0, seconds=time.perf_counter() - t0, **meta)
        _tokenize(item, info, p, tracks, model, opts, on_frames, backend, emotion)
        arrays = _arrays(p)
        records.write_npz(out / f"{stem}.npz", arrays)
        records.write_tokens_table(out / f"{stem}.parquet", arrays)
        records.write_json(out / f"{stem}.json", _document(item, info, p, model, opts, Path(f"{stem}.npz").name,
                                                           Path(f"{stem}.parquet").name))
        return records.new_row(item, "ok", None, json=f"{stem}.json", npz=f"{stem}.npz", parquet=f"{stem}.parquet",
                               tokens=len(arrays["frame_ind"]),
                               token_dim=int(arrays["tokens"].shape[1]) if "tokens" in arrays else None, seconds=time.perf_counter() - t0, **meta)
    except FxError as exc:
        log.warning("%s", exc.one_line())
        return records.new_row(item, "error", exc.one_line(), seconds=time.perf_counter() - t0, **common)
    except Exception as exc:  # one bad video never ends the run; the row keeps the reason
        log.debug(traceback.format_exc())
        msg = f"{item.source}: {type(exc).__name__}: {exc}"
        log.warning("%s", msg)
        return records.new_row(item, "error", msg, seconds=time.perf_counter() - t0, **common)
