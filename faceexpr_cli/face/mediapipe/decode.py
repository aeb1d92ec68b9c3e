"""BlazeFace outputs -> face boxes with 6 key points: anchor-relative decoding and weighted NMS.

Each output row holds 16 numbers for one anchor: box centre offset (x, y) and size (w, h), then six key points
(x, y), all in input pixels; "scale = input size" turns them into fractions of the input. The six key points are,
in order: the subject's right eye (image left on a frontal face), left eye, nose tip, mouth centre, right ear
tragion, left ear tragion. Scores are logits (sigmoid, clipped at +-100 as MediaPipe does).

Weighted NMS (BlazeFace's "blending"): the best remaining box and every box that overlaps it by more than the
threshold (IoU) form a cluster, replaced by one detection whose box and key points are the score-weighted mean of
the cluster and whose score is the best one. It is steadier from frame to frame than plain NMS, which keeps one
arbitrary member of the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceexpr_cli.face.types import iou_matrix

N_KEYPOINTS = 6
KP_RIGHT_EYE, KP_LEFT_EYE, KP_NOSE, KP_MOUTH, KP_RIGHT_EAR, KP_LEFT_EAR = range(N_KEYPOINTS)
SCORE_CLIP = 100.0


@dataclass
class Detection:
    """One face in input fractions (0..1 of the letterboxed square): box x0 y0 x1 y1, score, key points (6, 2)."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray


def decode(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_size: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (N, 4) x0 y0 x1 y1, scores (N,), key points (N, 6, 2), all as fractions of the input side."""
    raw = np.asarray(raw, dtype=np.float64)
    raw = raw if raw.ndim == 2 else raw.reshape(len(anchors), -1)  # (N, 16) rows; N may be 0
    a = np.asarray(anchors, dtype=np.float64)
    centre = raw[:, 0:2] / input_size + a
    half = raw[:, 2:4] / input_size / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    kps = raw[:, 4:4 + 2 * N_KEYPOINTS].reshape(-1, N_KEYPOINTS, 2) / input_size + a[:, None, :]
    scores = scores_of(logits)
    return boxes, scores, kps


def scores_of(logits: np.ndarray) -> np.ndarray:
    """Detection scores from the model's logits: a sigmoid of the logit clipped at +-100, as MediaPipe does."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, dtype=np.float64).reshape(-1), -SCORE_CLIP, SCORE_CLIP)))


def above(logits: np.ndarray, min_score: float) -> np.ndarray:
    """Indices of the anchors whose score reaches ``min_score``."""
    return np.flatnonzero(scores_of(logits) >= min_score)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, *, min_score: float = 0.5,
                 iou_threshold: float = 0.3) -> list[Detection]:
    """Clusters of overlapping candidates blended into one detection each, best first."""
    keep = np.flatnonzero(scores >= min_score)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    out: list[Detection] = []
    while keep.size:
        overlap = iou_matrix(boxes[keep[:1]], boxes[keep])[0]
        cluster = keep[overlap > iou_threshold]
        cluster = cluster if cluster.size else keep[:1]
        w = scores[cluster] / scores[cluster].sum()
        out.append(Detection(box=(boxes[cluster] * w[:, None]).sum(0).astype(np.float32),
                             score=float(scores[keep[0]]),
                             keypoints=(keypoints[cluster] * w[:, None, None]).sum(0).astype(np.float32)))
        keep = keep[overlap <= iou_threshold]
        keep = keep[~np.isin(keep, cluster)]
    return out
