"""Face tracks -> the seed's trajectories: the frames of each track that get a token, and their crop squares.

The seed starts a new trajectory when the box's IoU with the previous frame's falls under a threshold or no face
is found. The face tracker already ends a track at exactly those events - a shot cut, a face that is not found
again, a detection that matches no live track by IoU - and keeps a face's identity through motion that a fixed
IoU rule would cut, so a trajectory here is one track, sampled at the frame stride. Crops are ``fx crop``'s
``follow`` squares: one side per trajectory (the median face plus margin), centred on the smoothed box, so the
face neither zooms nor jitters inside the crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from faceexpr_cli.crop.geometry import follow_crops
from faceexpr_cli.face import Tracks
from faceexpr_cli.face.smoothing import smooth_series


@dataclass
class Trajectory:
    track_id: int
    end_reason: str  # why the track ended: end, cut, gap
    frames: np.ndarray  # (N,) sampled frame indices
    times: np.ndarray  # (N,) seconds
    boxes: np.ndarray  # (N, 4) smoothed face boxes, source pixels
    crops: np.ndarray  # (N, 4) crop squares, source pixels
    scores: np.ndarray  # (N,) detector score (latest detection on tracked frames)
    tokens: np.ndarray | None = None  # (N, D) after smoothing when asked
    raw_tokens: np.ndarray | None = None  # (N, D) as the model gave them (only kept when smoothed)
    feats: dict[str, np.ndarray] = field(default_factory=dict)  # mesh, head_pose, apertures, emotion, landmarks

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class Plan:
    trajectories: list[Trajectory]
    sampled: np.ndarray  # every frame index at the stride
    no_face: np.ndarray  # sampled frames that no trajectory covers


def plan(tracks: Tracks, stride: int, margin: float, min_face: float = 0.0) -> Plan:
    """Trajectories in order of their first frame; tracks with no frame on the stride or too small drop out."""
    sampled = tracks.frame_indices[tracks.frame_indices % stride == 0]
    out: list[Trajectory] = []
    for t in sorted(tracks, key=lambda t: (int(t.frames[0]), t.track_id)):
        if min_face and float(t.sizes.mean()) < min_face:
            continue
        keep = t.frames % stride == 0
        if not keep.any():
            continue
        crops = follow_crops(t.boxes, margin)[keep]
        out.append(Trajectory(t.track_id, t.end_reason, t.frames[keep].astype(np.int64),
                              t.times[keep].astype(np.float64), t.boxes[keep].astype(np.float32),
                              crops.astype(np.float32), t.scores[keep].astype(np.float32)))
    covered = np.concatenate([tr.frames for tr in out]) if out else np.zeros(0, np.int64)
    return Plan(out, sampled, np.setdiff1d(sampled, covered))


def smooth_tokens(tokens: np.ndarray, times: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Zero-phase low-pass along time (the face layer's One-Euro filter with no speed term, run both ways).

    Sampling times may be irregular (a stride, dropped frames); the filter uses the real intervals. Unit-length
    tokens (the expression transformer's) are put back on the sphere afterwards.
    """
    tokens = np.asarray(tokens, np.float32)
    if len(tokens) < 3:
        return tokens.copy()
    out = smooth_series(tokens, times, min_cutoff=cutoff_hz, beta=0.0).astype(np.float32)
    norms = np.linalg.norm(tokens, axis=1)
    if np.allclose(norms, 1.0, atol=1e-3):
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
