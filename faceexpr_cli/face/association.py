"""The tracker's bookkeeping, free of images: match detections to live tracks, end tracks, finish them.

Kept apart from decoding and detection so it can be tested on synthetic box sequences (crossing faces, gaps,
cuts) and reused by any detector. Each live track predicts its box on the next frame - from optical flow when
the caller supplies it, else by constant velocity - and detections are matched to predictions by the Hungarian
method on ``1 - IoU`` (plus an identity term when both sides carry embeddings). A match needs IoU above
``iou_threshold`` and, with embeddings, cosine similarity above ``min_similarity``, so two faces that cross
do not swap identities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from faceexpr_cli.face.smoothing import SmoothParams, smooth_boxes
from faceexpr_cli.face.track import Track
from faceexpr_cli.face.types import Face, iou_matrix

_BIG = 1e6


@dataclass
class _Live:
    track_id: int
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    raw: list[np.ndarray] = field(default_factory=list)
    predicted: list[np.ndarray | None] = field(default_factory=list)  # the prediction made for a detected frame
    scores: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    kps: list[np.ndarray | None] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.float32))
    missed: int = 0

    def last_detection(self) -> int:
        return max(i for i, d in enumerate(self.detected) if d)

    def identity(self, last: int = 8) -> np.ndarray | None:
        """Mean embedding of the latest ``last`` detections (0: all), unit length."""
        if not self.embeddings:
            return None
        mean = np.mean(self.embeddings[-last:] if last else self.embeddings, axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def predict(self, frame: int) -> np.ndarray:
        return self.raw[-1] + self.velocity * (frame - self.frames[-1])

    def add(self, frame: int, time: float, box: np.ndarray, score: float, detected: bool,
            predicted: np.ndarray | None = None, face: Face | None = None) -> None:
        if detected:
            prev = self.last_detection() if any(self.detected) else None
            if prev is not None and frame > self.frames[prev]:
                v = (box - self.raw[prev]) / (frame - self.frames[prev])
                self.velocity = (0.5 * self.velocity + 0.5 * v).astype(np.float32)
        self.frames.append(frame)
        self.times.append(time)
        self.raw.append(np.asarray(box, dtype=np.float32))
        self.predicted.append(predicted)
        self.scores.append(score)
        self.detected.append(detected)
        self.kps.append(face.kps5 if face is not None else None)
        if face is not None and face.embedding is not None:
            self.embeddings.append(face.embedding)


def min_cost_assignment(cost: np.ndarray) -> tuple[list[int], list[int]]:
    """Optimal one-to-one assignment. A handful of faces is solved exactly by enumeration (no scipy import,
    which costs seconds at start-up); crowds go to scipy's Hungarian solver."""
    n, m = cost.shape
    if min(n, m) > 6 or max(n, m) > 8:
        from scipy.optimize import linear_sum_assignment

        r, c = linear_sum_assignment(cost)
        return r.tolist(), c.tolist()
    from itertools import permutations

    transpose = n > m
    c = cost.T if transpose else cost  # rows <= cols
    best, best_cols = None, ()
    for cols in permutations(range(c.shape[1]), c.shape[0]):
        total = float(c[range(c.shape[0]), cols].sum())
        if best is None or total < best:
            best, best_cols = total, cols
    rows = list(range(c.shape[0]))
    return (list(best_cols), rows) if transpose else (rows, list(best_cols))


class TrackSet:
    """Feed one ``step`` per processed frame, in order; ``finish`` returns the finished tracks."""

    def __init__(self, *, iou_threshold: float = 0.3, max_missed: int = 1, min_similarity: float = 0.5,
                 identity_weight: float = 0.5, smooth: SmoothParams | None = None, frame_period: float = 0.0):
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.min_similarity = min_similarity
        self.identity_weight = identity_weight
        self.smooth = smooth or SmoothParams()
        self.frame_period = frame_period
        self.live: list[_Live] = []
        self.done: list[Track] = []
        self._next_id = 0

    def live_boxes(self) -> dict[int, np.ndarray]:
        return {t.track_id: t.raw[-1] for t in self.live}

    def step(self, frame: int, time: float, detections: list[Face] | None,
             predictions: dict[int, np.ndarray | None] | None = None) -> None:
        """``detections`` None means "not a detection frame": live tracks move by their predictions."""
        predictions = predictions or {}
        preds = []
        for t in self.live:
            p = predictions.get(t.track_id)
            preds.append(np.asarray(p, dtype=np.float32) if p is not None else t.predict(frame))
        if detections is None:
            for t, p in zip(self.live, preds, strict=True):
                t.add(frame, time, p, t.scores[-1], False)
            return
        pairs = self._match(preds, detections)
        matched_t = {i for i, _ in pairs}
        matched_d = {j for _, j in pairs}
        for i, j in pairs:
            d = detections[j]
            self.live[i].add(frame, time, d.bbox, d.score, True, predicted=preds[i], face=d)
            self.live[i].missed = 0
        keep = []
        for i, (t, p) in enumerate(zip(self.live, preds, strict=True)):
            if i in matched_t:
                keep.append(t)
                continue
            t.missed += 1
            if t.missed > self.max_missed:
                self._end(t, "gap")
            else:
                t.add(frame, time, p, t.scores[-1], False)
                keep.append(t)
        self.live = keep
        for j, d in enumerate(detections):
            if j not in matched_d:
                t = _Live(self._next_id)
                self._next_id += 1
                t.add(frame, time, d.bbox, d.score, True, face=d)
                self.live.append(t)

    def _match(self, preds: list[np.ndarray], detections: list[Face]) -> list[tuple[int, int]]:
        if not preds or not detections:
            return []
        iou = iou_matrix(np.stack(preds), np.stack([d.bbox for d in detections]))
        cost = 1.0 - iou
        valid = iou >= self.iou_threshold
        for i, t in enumerate(self.live):
            ident = t.identity()
            if ident is None:
                continue
            for j, d in enumerate(detections):
                if d.embedding is not None:
                    sim = float(np.dot(ident, d.embedding))
                    cost[i, j] += self.identity_weight * (1.0 - sim)
                    valid[i, j] &= sim >= self.min_similarity
        cost = np.where(valid, cost, _BIG)
        rows, cols = min_cost_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if valid[r, c]]

    def cut(self) -> None:
        """A shot cut: every live track ends here."""
        for t in self.live:
            self._end(t, "cut")
        self.live = []

    def finish(self) -> list[Track]:
        for t in self.live:
            self._end(t, "end")
        self.live = []
        return sorted(self.done, key=lambda tr: (int(tr.frames[0]), tr.track_id))

    def _end(self, t: _Live, reason: str) -> None:
        # After a miss, frames past the last detection are guesses about a face that may have left: drop them.
        n = t.last_detection() + 1 if reason == "gap" else len(t.frames)
        self.done.append(self._build(t, n, reason))

    def _build(self, t: _Live, n: int, reason: str) -> Track:
        raw = np.stack(t.raw[:n]).astype(np.float64)
        frames = np.asarray(t.frames[:n], dtype=np.int64)
        detected = np.asarray(t.detected[:n], dtype=bool)
        # Flow drifts between detections: spread each detection's correction linearly back over the frames
        # tracked since the previous detection, so the path meets every detection without a jump.
        det = np.flatnonzero(detected)
        for a, b in zip(det[:-1], det[1:], strict=True):
            pred = t.predicted[b]
            if b - a > 1 and pred is not None:
                err = raw[b] - pred
                w = (frames[a + 1:b] - frames[a]) / float(frames[b] - frames[a])
                raw[a + 1:b] += w[:, None] * err[None, :]
        kps = np.full((n, 5, 2), np.nan, dtype=np.float32)
        for i, k in enumerate(t.kps[:n]):
            if k is not None:
                kps[i] = k
        times = np.asarray(t.times[:n], dtype=np.float64)
        return Track(
            track_id=t.track_id, frames=frames, times=times,
            boxes=smooth_boxes(raw, times, self.smooth), raw_boxes=raw.astype(np.float32),
            scores=np.asarray(t.scores[:n], dtype=np.float32), detected=detected, kps5=kps,
            embedding=t.identity(last=0), end_reason=reason, frame_period=self.frame_period)
