"""One video through ``fx crop``: probe, track faces, plan clips, cut them from full frames with their audio.

Two sequential decodes, never a seek per frame. The first decodes at ``analysis_side`` and tracks; the second
starts (one seek) at the first planned clip and feeds every open clip writer from the same full-resolution
frame, so a video with three faces is still decoded only twice.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.crop import geometry, stop
from faceexpr_cli.crop import manifest as mf
from faceexpr_cli.crop.inputs import Item
from faceexpr_cli.crop.manifest import new_row
from faceexpr_cli.crop.options import CropOptions
from faceexpr_cli.errors import FxError, MediaError
from faceexpr_cli.face import FaceBackend, Track, TrackerOptions, Tracks, get_backend, track_faces
from faceexpr_cli.face.types import Face
from faceexpr_cli.media.timeline import SAME_FRAME, FrameTimes, frame_times
from faceexpr_cli.media.writer import VideoWriter


@dataclass
class Written:
    """What the verified clip file holds."""

    frames: int
    duration: float
    has_audio: bool
    audio_coverage: float
    fps_mode: str  # "source": the source's frame times kept; "constant": resampled to --fps
    fps: float
    bytes: int


@dataclass
class ClipPlan:
    track: Track
    segment: int
    crops: np.ndarray  # (N, 4) frame box of each output frame (source pixels)
    mats: np.ndarray | None  # (N, 2, 3) frame -> crop matrices in align mode
    status: str = "ok"
    error: str | None = None
    embedding: np.ndarray | None = None
    written: Written | None = None

    @property
    def first(self) -> int:
        return int(self.track.frames[0])

    @property
    def last(self) -> int:
        return int(self.track.frames[-1])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``mask`` is true."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _pieces(n: int, max_frames: int | None) -> list[tuple[int, int]]:
    """Split n frames into equal pieces of at most ``max_frames`` (no short leftover piece)."""
    if not max_frames or n <= max_frames:
        return [(0, n)]
    k = -(-n // max_frames)
    bounds = np.linspace(0, n, k + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def plan_clips(tracks: Tracks, fps: float, width: int, height: int, opts: CropOptions) -> tuple[list[ClipPlan], list[str]]:
    """Which clips to write, and why the other tracks made none."""
    plans: list[ClipPlan] = []
    reasons: list[str] = []
    counts = tracks.counts()
    index_of = {int(f): i for i, f in enumerate(tracks.frame_indices)}
    max_frames = round(opts.max_duration * fps) if opts.max_duration else None
    for t in tracks:
        if opts.single_face:
            ok = np.array([counts[index_of[int(f)]] == 1 for f in t.frames])
            spans = _runs(ok)
            if not spans:
                reasons.append(f"track {t.track_id}: never the only face on screen (--single-face)")
        else:
            spans = [(0, len(t))]
        segment = 0
        for a, b in spans:
            for pa, pb in _pieces(b - a, max_frames):
                piece = t.slice(a + pa, a + pb, end_reason="split" if pb - pa < b - a else None)
                dur = len(piece) / fps
                size = float(piece.sizes.mean())
                if dur + 1e-6 < opts.min_duration:
                    reasons.append(f"track {t.track_id}: {dur:.2f} s < --min-duration {opts.min_duration:g}")
                    continue
                if size < opts.min_face:
                    reasons.append(f"track {t.track_id}: face {size:.0f} px < --min-face {opts.min_face:g}")
                    continue
                plans.append(_geometry(piece, segment, fps, width, height, opts))
                segment += 1
    return plans, reasons


def _geometry(piece: Track, segment: int, fps: float, width: int, height: int, opts: CropOptions) -> ClipPlan:
    mats = None
    if opts.mode == "align":
        mats = geometry.align_matrices(piece.kps5, piece.times, opts.size, opts.margin)
    if mats is not None:
        crops = np.stack([geometry.matrix_crop_box(m, opts.size) for m in mats])
    elif opts.mode == "follow":
        crops = geometry.follow_crops(piece.boxes, opts.margin)
    else:  # union, and align without key points (a backend without landmarks)
        crops = geometry.union_crops(piece.boxes, opts.margin)
    if mats is None:  # a square that leaves the frame is shifted inside first; only the rest counts as leaving
        crops = geometry.inside_frame(crops, width, height)
    plan = ClipPlan(piece, segment, crops, mats)
    if opts.out_of_frame == "drop" and geometry.leaves_frame(crops, width, height):
        plan.status, plan.error = "dropped", "the crop leaves the frame (--out-of-frame drop)"
    return plan


def clip_dir(item: Item) -> str:
    """The folder that holds one source's clips (and nothing else)."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(item.source).stem)[:40]
    return f"clips/{stem}-{item.source_id[:8]}"


def clip_name(item: Item, plan: ClipPlan) -> str:
    return f"{clip_dir(item)}/t{plan.track.track_id:03d}_{plan.segment:02d}.mp4"


def _embedding_frames(plan: ClipPlan, k: int = 3) -> set[int]:
    det = plan.track.frames[plan.track.detected]
    if not len(det):
        det = plan.track.frames
    return {int(det[i]) for i in np.linspace(0, len(det) - 1, min(k, len(det))).round().astype(int)}


def _span(p: ClipPlan, table: FrameTimes) -> tuple[float, float]:
    """The clip's span on the source clock: its first frame's time to its last frame's end."""
    start, last = float(p.track.times[0]), float(p.track.times[-1])
    k = table.index_of(last)
    return start, last + (float(table.durations[k]) if k is not None else float(np.median(table.durations)))


def _finish(w: VideoWriter, p: ClipPlan, item: Item, out: Path, span: float) -> None:
    """Close a clip, open it again and check it; only a clip that is what its row says stays ``ok``."""
    from faceexpr_cli.media.verify import verify_clip

    path = out / clip_name(item, p)
    expected = round(span * w.constant_fps) if w.constant_fps else len(p.track)
    try:
        w.close(end=span)
        if w.frames < expected - 1:
            raise MediaError(item.source, f"the video ended {expected - w.frames} frames before the clip's end")
        verify_clip(path, frames=w.frames, duration=w.duration, audio=w.has_audio)
    except FxError as exc:
        path.unlink(missing_ok=True)
        p.status, p.error = "error", exc.one_line()
        return
    p.written = Written(w.frames, w.duration, w.has_audio, w.audio_coverage,
                        "constant" if w.constant_fps else "source", w.constant_fps or w.frames / w.duration,
                        path.stat().st_size)
    _write_sidecar(path.with_suffix(".json"), item, p)


def _write_sidecar(path: Path, item: Item, p: ClipPlan) -> None:
    """The clip's own record beside it, so a clip copied out of the run still says what it is."""
    import json
    import os

    wr = p.written
    start = float(p.track.times[0])
    doc = {"source": item.source, "source_id": item.source_id, "subject": item.source, "track_id": p.track.track_id,
           "segment": p.segment, "start_time": round(start, 6), "end_time": round(start + wr.duration, 6),
           "start_frame": p.first, "end_frame": p.last, "frames": wr.frames, "duration": round(wr.duration, 6),
           "fps_mode": wr.fps_mode, "fps": round(wr.fps, 6), "has_audio": wr.has_audio,
           "audio_coverage": wr.audio_coverage, "bytes": wr.bytes}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_clips(item: Item, info, plans: list[ClipPlan], tracks: Tracks, out: Path, opts: CropOptions,
                backend: FaceBackend) -> None:
    """The second decode: feed every planned clip's writer, compute identity embeddings on the way."""
    from faceexpr_cli.media import iter_frames

    todo = [p for p in plans if p.status == "ok"]
    if not todo:
        return
    times = tracks.frame_times
    want_embed = opts.embed and backend.embedding_dim is not None
    embed_at = {id(p): (_embedding_frames(p) if want_embed else set()) for p in todo}
    vectors: dict[int, list[np.ndarray]] = {id(p): [] for p in todo}
    writers: dict[int, VideoWriter] = {}
    first = min(p.first for p in todo)
    table = frame_times(item.source)
    spans = {id(p): _span(p, table) for p in todo}
    try:
        for frame in iter_frames(item.source, start=float(times[first]) if first else None,
                                 end=max(e for _, e in spans.values())):
            stop.check()
            # both decodes see the same timestamps: match exactly, never by a nominal or average period
            pos = int(np.searchsorted(times, frame.time - SAME_FRAME))
            if pos >= len(times) or abs(times[pos] - frame.time) > SAME_FRAME:
                continue
            idx = int(tracks.frame_indices[pos])
            for p in todo:
                if not p.first <= idx <= p.last:
                    continue
                k = idx - p.first
                if p.mats is not None:
                    crop = geometry.warp_square(frame.image, p.mats[k], opts.size, fill=opts.fill)
                else:  # shifted inside the frame first; the manifest records the box really cropped
                    p.crops[k] = geometry.inside_frame(p.crops[k], frame.image.shape[1], frame.image.shape[0])
                    crop = geometry.crop_square(frame.image, p.crops[k], opts.size, fill=opts.fill)
                start, end = spans[id(p)]
                w = writers.get(id(p))
                if w is None:
                    w = writers[id(p)] = VideoWriter(
                        out / clip_name(item, p), info.fps, crf=opts.crf, preset=opts.preset,
                        audio=item.source if (opts.audio and info.has_audio) else None,
                        audio_start=start, audio_duration=end - start, constant_fps=opts.fps)
                w.write(crop, time=frame.time - start)
                if idx in embed_at[id(p)]:
                    face = Face(p.track.raw_boxes[k], float(p.track.scores[k]))
                    backend.embed(frame.image, [face])
                    vectors[id(p)].append(face.embedding)
                if idx == p.last:
                    _finish(writers.pop(id(p)), p, item, out, end - start)
        for pid in list(writers):  # the stream ended early: verification decides
            p = next(q for q in todo if id(q) == pid)
            _finish(writers.pop(pid), p, item, out, spans[pid][1] - spans[pid][0])
    finally:
        for w in writers.values():
            w.abort()
    for p in todo:
        if p.status == "ok" and p.written is None:
            p.status, p.error = "error", "no frame of the clip was decoded"
    for p in todo:  # the clip's identity: the mean over three of its detection frames
        if vectors[id(p)]:
            mean = np.mean(vectors[id(p)], axis=0)
            p.embedding = mean / max(float(np.linalg.norm(mean)), 1e-12)


def _row(item: Item, info, plan: ClipPlan, opts: CropOptions, seconds: float) -> dict[str, Any]:
    t = plan.track
    st = t.stats()
    wr = plan.written
    start = float(t.times[0])
    span = dict(n_frames=len(t), fps=info.fps, end_time=float(t.times[-1]) + 1.0 / info.fps, has_audio=False)
    if wr is not None:
        span.update(n_frames=wr.frames, fps=wr.fps, duration=wr.duration, end_time=start + wr.duration,
                    has_audio=wr.has_audio, audio_coverage=wr.audio_coverage, fps_mode=wr.fps_mode, bytes=wr.bytes)
    return new_row(
        item.source, item.source_id, plan.status, plan.error,
        clip=clip_name(item, plan) if plan.status == "ok" else None, track_id=t.track_id, segment=plan.segment,
        start_time=start, start_frame=int(t.frames[0]), end_frame=int(t.frames[-1]), **span,
        src_width=info.width, src_height=info.height,
        size=opts.size, mode=opts.mode, crop_boxes=np.round(plan.crops, 2).tolist(),
        face_boxes=np.round(t.boxes, 2).tolist(), mean_score=st.mean_score, face_size=st.mean_size,
        min_face_size=st.min_size, yaw_mean=None if np.isnan(st.yaw_mean) else st.yaw_mean,
        frontal_fraction=None if np.isnan(st.frontal_fraction) else st.frontal_fraction, jitter=st.jitter,
        embedding=None if plan.embedding is None else plan.embedding.astype(np.float32).tolist(),
        backend=opts.backend, seconds=seconds)


def _analysis_frames(source: str, info, side: int):
    """Frames at most ``side`` pixels on the long side, and the factor back to source pixels.

    Up to twice that size the frames are decoded at full size and shrunk bilinearly with OpenCV (PyAV's scaler
    and OpenCV's area filter at non-integer ratios each cost more than decoding); beyond, the decoder's scaler
    avoids converting huge frames to RGB.
    """
    import cv2

    from faceexpr_cli.media import iter_frames

    long_side = max(info.width, info.height)
    if long_side <= side:
        return iter_frames(source), (1.0, 1.0)
    k = side / long_side
    size = (max(2, round(info.width * k / 2) * 2), max(2, round(info.height * k / 2) * 2))
    if long_side > 2 * side:
        return iter_frames(source, size=size), (info.width / size[0], info.height / size[1])

    def shrink():
        for f in iter_frames(source):
            f.image = cv2.resize(f.image, size, interpolation=cv2.INTER_LINEAR)
            yield f

    return shrink(), (info.width / size[0], info.height / size[1])


def track_source(item: Item, info, opts: CropOptions, backend: FaceBackend) -> Tracks:
    """The first decode: track faces at ``analysis_side``, boxes back in source pixels."""
    frames, back = _analysis_frames(item.source, info, opts.analysis_side)
    frames = stop.frames(frames)
    # The single-face rule must see a second face as soon as it appears: full-frame scans on every round.
    topts = TrackerOptions(stride=opts.stride, detect_size=opts.detect_size, score_threshold=opts.score_threshold,
                           landmarks=True, full_every=1 if opts.single_face else None,
                           embed="auto" if opts.embed else False)
    tracks = track_faces(frames, backend, fps=info.fps or None, options=topts)
    if back != (1.0, 1.0):
        tracks[:] = [t.scaled(*back) for t in tracks]
    return tracks


def process_video(item: Item, out: Path, opts: CropOptions, backend: FaceBackend | None = None) -> list[dict]:
    """All manifest rows for one source. Never raises for a bad video: the error goes into its row."""
    from faceexpr_cli.media.probe import probe_for_processing

    t0 = time.perf_counter()
    if item.skip:
        return [new_row(item.source, item.source_id, "skipped", item.skip)]
    try:
        info = probe_for_processing(item.source, opts.max_pixels, "raise --max-pixels or downscale it")
        backend = backend or get_backend(opts.backend, **opts.backend_options)
        tracks = track_source(item, info, opts, backend)
        if not tracks:
            return [new_row(item.source, item.source_id, "no_face", "no face found", fps=info.fps,
                            src_width=info.width, src_height=info.height, backend=opts.backend,
                            seconds=time.perf_counter() - t0)]
        plans, reasons = plan_clips(tracks, info.fps, info.width, info.height, opts)
        if not plans:
            return [new_row(item.source, item.source_id, "no_clip", "; ".join(reasons[:5]), fps=info.fps,
                            src_width=info.width, src_height=info.height, backend=opts.backend,
                            seconds=time.perf_counter() - t0)]
        write_clips(item, info, plans, tracks, out, opts, backend)
        seconds = time.perf_counter() - t0
        return [_row(item, info, p, opts, seconds) for p in plans]
    except FxError as exc:
        log.warning("%s", exc.one_line())
        return [new_row(item.source, item.source_id, "error", exc.one_line(), seconds=time.perf_counter() - t0)]
    except Exception as exc:  # one bad video never ends the batch; the row keeps the reason
        log.debug(traceback.format_exc())
        msg = f"{item.source}: {type(exc).__name__}: {exc}"
        log.warning("%s", msg)
        return [new_row(item.source, item.source_id, "error", msg, seconds=time.perf_counter() - t0)]


def run_one(item: Item, out: Path, opts: CropOptions, backend: FaceBackend | None) -> list[dict]:
    """One source, start to finish: its old part and clips go first (a redo never leaves a stale clip beside
    the new ones, and an interrupted redo leaves nothing that looks finished), then its rows are written as
    its manifest part. Each row records the process that made it (``worker_pid``)."""
    mf.remove_part(out, item.source_id)
    shutil.rmtree(out / clip_dir(item), ignore_errors=True)
    rows = process_video(item, out, opts, backend)
    for r in rows:
        r["worker_pid"] = os.getpid()
    mf.write_part(out, item.source_id, rows)
    return rows
