"""Face tracking over any frame iterator: detect every ``stride`` frames, follow faces by optical flow between.

Detection is the expensive part (a HOG pass is 5-15 ms on a 640x360 frame, a dlib embedding ~80 ms), so the
tracker runs it every ``stride`` frames on a copy whose long side is ``detect_size``, and moves boxes between
detections by median optical flow on a 320-pixel grey thumbnail (< 1 ms). Shot cuts end all tracks and force a
detection. Typical use::

    from faceexpr_cli.face import get_backend, track_video
    tracks = track_video("talk.mp4", get_backend("dlib"))
    tracks.single_face(3.0, 4.0)          # the seed's clip rule on one window
    [t.stats() for t in tracks]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.face.association import TrackSet
from faceexpr_cli.face.backend import FaceBackend, get_backend
from faceexpr_cli.face.motion import CutDetector, thumbnail, track_box
from faceexpr_cli.face.smoothing import SmoothParams
from faceexpr_cli.face.track import Tracks
from faceexpr_cli.face.types import Face, iou_matrix

ROI_PAD = 0.4  # window around a tracked face, per side, in face sizes
ROI_FACE = 100  # face size (px) the window is scaled to: comfortably above HOG's 80 px window


@dataclass
class TrackerOptions:
    """What the tracker does; the defaults favour speed on talking-head video (see docs/face.md)."""

    stride: int = 10  # detect every N frames (1 = every frame, the seed's behaviour)
    # every Nth detection scans the whole frame, the others only around live faces; None: 1 when stride is 1
    # (the seed's every-frame full detection), else 3
    full_every: int | None = None
    detect_size: int | None = 480  # long side of the detector's input; None = full frame
    landmarks: bool = True  # 68 points on detection frames (key points, yaw)
    # identity embeddings for association: False, True (every detection), or "auto" - only for a face that
    # starts a track and for faces in a conflict (two faces near one track), which keeps identities through
    # crossings for the price of a few embeddings per track
    embed: bool | str = False
    min_face: float = 0.0  # ignore detections smaller than this (frame pixels, sqrt of area)
    score_threshold: float | None = None
    iou_threshold: float = 0.3
    max_missed: int = 1  # detection rounds a track may miss before it ends
    min_similarity: float | None = None  # None: the backend's same_person_similarity
    cut_threshold: float | None = 0.12  # None: no shot-cut detection (see motion.CutDetector)
    flow: bool = True  # optical flow between detections (else constant velocity)
    smooth: SmoothParams = field(default_factory=SmoothParams)


def _image_of(frame: Any) -> tuple[int | None, float | None, np.ndarray]:
    if isinstance(frame, np.ndarray):
        return None, None, frame
    return frame.index, frame.time, frame.image


class FaceTracker:
    """Feed frames in order with ``update``; ``finish`` returns the ``Tracks``."""

    def __init__(self, backend: FaceBackend | str = "dlib", options: TrackerOptions | None = None,
                 fps: float | None = None, **overrides: Any):
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        opts = replace(options) if options is not None else TrackerOptions()
        for key, value in overrides.items():
            if not hasattr(opts, key):
                from faceexpr_cli.errors import UsageError

                raise UsageError(f"unknown tracker option '{key}'")
            setattr(opts, key, value)
        self.opts = opts
        self.fps = fps
        self.core = TrackSet(iou_threshold=opts.iou_threshold, max_missed=opts.max_missed,
                             min_similarity=(opts.min_similarity if opts.min_similarity is not None
                                             else self.backend.same_person_similarity), smooth=opts.smooth,
                             frame_period=1.0 / fps if fps else 0.0)
        self.cuts = CutDetector(opts.cut_threshold) if opts.cut_threshold is not None else None
        self.indices: list[int] = []
        self.times: list[float] = []
        self.detections = 0
        self.embeddings = 0
        self._prev: tuple[np.ndarray, float] | None = None
        self._since = 0
        self._rounds = 0

    def detect(self, image: np.ndarray, rois: list[np.ndarray] | None = None,
               predicted: list[np.ndarray] | None = None) -> list[Face]:
        """Detection for one frame - on the downscaled frame, or only in ``rois`` (boxes of faces being tracked,
        frame pixels) - then landmarks and embeddings on the full frame. ``predicted`` (live tracks' boxes)
        decides which faces need an embedding when ``embed="auto"``."""
        o, b = self.opts, self.backend
        want_lm = o.landmarks and b.has_landmarks
        faces = self._detect_rois(image, rois, not want_lm) if rois else self._detect_full(image, not want_lm)
        faces = [f for f in faces if f.size >= o.min_face
                 and (o.score_threshold is None or f.score >= o.score_threshold)]
        if want_lm:
            b.landmarks(image, faces)
        if o.embed and b.embedding_dim and faces:
            need = faces if o.embed is True else self._needs_identity(faces, predicted or [])
            b.embed(image, need)
            self.embeddings += len(need)
        self.detections += 1
        return faces

    def _needs_identity(self, faces: list[Face], predicted: list[np.ndarray]) -> list[Face]:
        """Faces that match no live track (they start one) or take part in an ambiguous match."""
        if not predicted:
            return faces
        overlap = iou_matrix(np.stack([f.bbox for f in faces]), np.stack(predicted)) >= self.opts.iou_threshold
        per_face, per_track = overlap.sum(1), overlap.sum(0)
        contested = (overlap & (per_track[None, :] > 1)).any(1)
        return [f for f, n, c in zip(faces, per_face, contested, strict=True) if n != 1 or c]

    def _detect_full(self, image: np.ndarray, keypoints: bool) -> list[Face]:
        import cv2

        h, w = image.shape[:2]
        size = self.opts.detect_size
        if not size or max(h, w) <= size:
            return self.backend.detect(image, keypoints=keypoints)
        scale = size / max(h, w)
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
        return [f.scaled(w / small.shape[1], h / small.shape[0])
                for f in self.backend.detect(small, keypoints=keypoints)]

    def _detect_rois(self, image: np.ndarray, rois: list[np.ndarray], keypoints: bool) -> list[Face]:
        """Re-detect known faces in small windows around them: a fraction of a full scan's pixels."""
        import cv2

        h, w = image.shape[:2]
        found: list[Face] = []
        for box in rois:
            side = float(max(box[2] - box[0], box[3] - box[1]))
            if side < 4:
                continue
            pad = ROI_PAD * side
            x0, y0 = max(0, int(box[0] - pad)), max(0, int(box[1] - pad))
            x1, y1 = min(w, int(np.ceil(box[2] + pad))), min(h, int(np.ceil(box[3] + pad)))
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            scale = min(1.0, ROI_FACE / side)
            region = image[y0:y1, x0:x1]
            if scale < 1.0:
                region = cv2.resize(region, (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
                                    interpolation=cv2.INTER_LINEAR)
            for f in self.backend.detect(np.ascontiguousarray(region), keypoints=keypoints):
                g = f.scaled((x1 - x0) / region.shape[1], (y1 - y0) / region.shape[0])
                g.bbox += np.array([x0, y0, x0, y0], dtype=np.float32)
                if g.kps5 is not None:
                    g.kps5 += np.array([x0, y0], dtype=np.float32)
                found.append(g)
        found.sort(key=lambda f: -f.score)
        kept: list[Face] = []
        for f in found:  # windows of faces close together overlap: keep each face once
            if not kept or iou_matrix(f.bbox[None], np.stack([k.bbox for k in kept])).max() < 0.5:
                kept.append(f)
        return kept

    def update(self, frame: Any) -> None:
        """One frame: a ``media.Frame`` or an RGB array (then indices count from 0 and times use ``fps``)."""
        index, time, image = _image_of(frame)
        if index is None:
            index = self.indices[-1] + 1 if self.indices else 0
        if time is None:
            time = index / self.fps if self.fps else float(index)
        gray, s = thumbnail(image)
        cut = bool(self.cuts(gray)) if self.cuts is not None else False
        if cut:
            self.core.cut()
        preds: dict[int, np.ndarray | None] = {}
        prev = self._prev
        if self.opts.flow and not cut and prev is not None and prev[0].shape == gray.shape:
            for tid, box in self.core.live_boxes().items():
                moved = track_box(prev[0], gray, box * s)
                preds[tid] = None if moved is None else moved / s
        due = cut or prev is None or self._since + 1 >= self.opts.stride
        if due:
            self._since = 0
            self._rounds += 1
            live = self.core.live_boxes()
            every = self.opts.full_every or (1 if self.opts.stride <= 1 else 3)
            full = cut or not live or every <= 1 or self._rounds % every == 1
            where = [p if (p := preds.get(t)) is not None else box for t, box in live.items()]
            self.core.step(index, time, self.detect(image, None if full else where, where), preds)
        else:
            self._since += 1
            self.core.step(index, time, None, preds)
        self._prev = (gray, s)
        self.indices.append(index)
        self.times.append(time)

    def finish(self) -> Tracks:
        return Tracks(self.core.finish(), self.indices, self.times, self.fps)


def track_faces(frames: Iterable[Any], backend: FaceBackend | str = "dlib", *, fps: float | None = None,
                options: TrackerOptions | None = None, **overrides: Any) -> Tracks:
    """Track faces over ``frames`` (``media.Frame`` objects or RGB arrays), in order. Returns ``Tracks``."""
    tracker = FaceTracker(backend, options, fps=fps, **overrides)
    for frame in frames:
        tracker.update(frame)
    return tracker.finish()


def track_video(path: str | Path, backend: FaceBackend | str = "dlib", *, start: float | None = None,
                end: float | None = None, decode_side: int | None = None, options: TrackerOptions | None = None,
                **overrides: Any) -> Tracks:
    """Track faces in a video file, decoding it once, in order (one seek at most for ``start``).

    ``decode_side`` decodes at a smaller size (long side) for speed; boxes are still reported in the video's
    own pixels.
    """
    from faceexpr_cli.media import iter_frames, probe

    info = probe(path, count_frames=False)
    size = None
    if decode_side and max(info.width, info.height) > decode_side:
        k = decode_side / max(info.width, info.height)
        size = (max(2, round(info.width * k / 2) * 2), max(2, round(info.height * k / 2) * 2))
    tracks = track_faces(iter_frames(path, size=size, start=start, end=end), backend,
                         fps=info.fps or None, options=options, **overrides)
    if size is not None:
        sx, sy = info.width / size[0], info.height / size[1]
        tracks[:] = [t.scaled(sx, sy) for t in tracks]
    return tracks
