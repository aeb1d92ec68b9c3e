"""Face tracks and what callers ask of them: per-track statistics and the single-face rule.

A ``Track`` is one face followed over consecutive processed frames. ``Tracks`` is the list the tracker
returns; it also remembers every processed frame, so it can say how many faces each frame had - including the
frames where there were none - which is what the seed's clip filter ("every frame has exactly one face") needs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from faceexpr_cli.face.types import yaw_from_kps5

FRONTAL_YAW = 30.0  # degrees; beyond this a face counts as turned away


@dataclass
class TrackStats:
    track_id: int
    n_frames: int
    n_detections: int
    start_frame: int
    end_frame: int  # inclusive
    start_time: float
    end_time: float  # time of the last frame plus one frame period
    duration: float
    mean_size: float
    min_size: float
    max_size: float
    mean_score: float
    min_score: float
    yaw_mean: float
    yaw_abs_max: float
    frontal_fraction: float
    jitter: float  # mean |second difference| of the smoothed centre, in face sizes
    end_reason: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class Track:
    """One face over consecutive processed frames. Boxes are x0 y0 x1 y1 in frame pixels.

    ``raw_boxes`` are the detector's boxes on detection frames and drift-corrected optical-flow boxes between;
    ``boxes`` are those smoothed (zero-lag One-Euro). ``kps5`` is NaN on frames without landmarks.
    ``end_reason``: ``end`` (input ended), ``cut`` (shot cut), ``gap`` (face not found again), ``split``.
    """

    track_id: int
    frames: np.ndarray  # (N,) int64 frame indices
    times: np.ndarray  # (N,) float64 seconds
    boxes: np.ndarray  # (N, 4) float32 smoothed
    raw_boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32, the latest detection's score on tracked frames
    detected: np.ndarray  # (N,) bool
    kps5: np.ndarray  # (N, 5, 2) float32, NaN where unknown
    embedding: np.ndarray | None = None  # (D,) mean identity of the track, L2-normalised
    end_reason: str = "end"
    frame_period: float = 0.0  # seconds per frame, for the end time of the last frame

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def start_time(self) -> float:
        return float(self.times[0])

    @property
    def end_time(self) -> float:
        return float(self.times[-1]) + self.frame_period

    @property
    def sizes(self) -> np.ndarray:
        w = self.boxes[:, 2] - self.boxes[:, 0]
        h = self.boxes[:, 3] - self.boxes[:, 1]
        return np.sqrt(np.clip(w * h, 0, None))

    @property
    def yaw(self) -> np.ndarray:
        """Per-frame yaw in degrees (NaN where no key points)."""
        out = np.full(len(self), np.nan)
        for i in np.flatnonzero(~np.isnan(self.kps5[:, 0, 0])):
            out[i] = yaw_from_kps5(self.kps5[i])
        return out

    def box_at(self, frame_index: int, smoothed: bool = True) -> np.ndarray | None:
        i = np.searchsorted(self.frames, frame_index)
        if i < len(self.frames) and self.frames[i] == frame_index:
            return (self.boxes if smoothed else self.raw_boxes)[i]
        return None

    def slice(self, i0: int, i1: int, end_reason: str | None = None, track_id: int | None = None) -> Track:
        """Rows ``i0:i1`` as a new track (used to split long tracks)."""
        return replace(
            self, track_id=self.track_id if track_id is None else track_id,
            frames=self.frames[i0:i1], times=self.times[i0:i1], boxes=self.boxes[i0:i1],
            raw_boxes=self.raw_boxes[i0:i1], scores=self.scores[i0:i1], detected=self.detected[i0:i1],
            kps5=self.kps5[i0:i1], end_reason=end_reason or self.end_reason)

    def scaled(self, sx: float, sy: float | None = None) -> Track:
        """The same track in a frame resized by (sx, sy)."""
        sy = sx if sy is None else sy
        b = np.array([sx, sy, sx, sy], dtype=np.float32)
        return replace(self, boxes=self.boxes * b, raw_boxes=self.raw_boxes * b,
                       kps5=self.kps5 * np.array([sx, sy], dtype=np.float32))

    def stats(self) -> TrackStats:
        sizes = self.sizes
        det_scores = self.scores[self.detected] if self.detected.any() else self.scores
        yaw = self.yaw
        known = yaw[~np.isnan(yaw)]
        centre = (self.boxes[:, :2] + self.boxes[:, 2:]) / 2
        jitter = 0.0
        if len(centre) >= 3:
            jitter = float(np.abs(np.diff(centre, 2, axis=0)).mean() / max(float(np.mean(sizes)), 1e-6))
        return TrackStats(
            track_id=self.track_id, n_frames=len(self), n_detections=int(self.detected.sum()),
            start_frame=int(self.frames[0]), end_frame=int(self.frames[-1]),
            start_time=self.start_time, end_time=self.end_time, duration=self.end_time - self.start_time,
            mean_size=float(sizes.mean()), min_size=float(sizes.min()), max_size=float(sizes.max()),
            mean_score=float(det_scores.mean()), min_score=float(det_scores.min()),
            yaw_mean=float(known.mean()) if len(known) else float("nan"),
            yaw_abs_max=float(np.abs(known).max()) if len(known) else float("nan"),
            frontal_fraction=float((np.abs(known) <= FRONTAL_YAW).mean()) if len(known) else float("nan"),
            jitter=jitter, end_reason=self.end_reason)


class Tracks(list):
    """``list[Track]`` plus the processed frames' indices and times, for per-frame face counts."""

    def __init__(self, tracks=(), frame_indices=(), frame_times=(), fps: float | None = None):
        super().__init__(tracks)
        self.frame_indices = np.asarray(frame_indices, dtype=np.int64)
        self.frame_times = np.asarray(frame_times, dtype=np.float64)
        self.fps = fps

    def counts(self) -> np.ndarray:
        """Number of faces on each processed frame (aligned with ``frame_indices``)."""
        counts = np.zeros(len(self.frame_indices), dtype=np.int64)
        for t in self:
            pos = np.searchsorted(self.frame_indices, t.frames)
            ok = (pos < len(self.frame_indices))
            ok[ok] &= self.frame_indices[pos[ok]] == t.frames[ok]
            np.add.at(counts, pos[ok], 1)
        return counts

    def _span(self, start: float | None, end: float | None) -> np.ndarray:
        sel = np.ones(len(self.frame_times), dtype=bool)
        if start is not None:
            sel &= self.frame_times >= start - 1e-6
        if end is not None:
            sel &= self.frame_times < end - 1e-6
        return sel

    def single_face(self, start: float | None = None, end: float | None = None) -> bool:
        """True when the span [start, end) (seconds) has frames and every one shows exactly one face.

        This is the seed's clip rule. With a detection stride above 1, frames between detections count the
        tracked faces; pass ``stride=1`` to the tracker for the seed's every-frame check.
        """
        sel = self._span(start, end)
        return bool(sel.any() and (self.counts()[sel] == 1).all())

    def single_face_spans(self, min_duration: float = 0.0) -> list[tuple[float, float]]:
        """Maximal (start, end) time spans where every frame has exactly one face."""
        ones = self.counts() == 1
        period = 1.0 / self.fps if self.fps else 0.0
        spans, i, n = [], 0, len(ones)
        while i < n:
            if not ones[i]:
                i += 1
                continue
            j = i
            while j + 1 < n and ones[j + 1]:
                j += 1
            s, e = float(self.frame_times[i]), float(self.frame_times[j]) + period
            if e - s >= min_duration:
                spans.append((s, e))
            i = j + 1
        return spans

    def stats(self) -> list[TrackStats]:
        return [t.stats() for t in self]
