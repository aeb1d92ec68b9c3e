"""Head pose from 68 landmarks, good to several degrees: enough to tell whether a result kept the driver's pose.

Yaw from the nose tip's sideways offset along the eye line (``face.types.yaw_from_kps5``), roll from the eye
line's angle, pitch from where the nose tip sits between the eye line and the mouth (the same depth model as
yaw: the tip 0.6 inter-ocular distances in front of the face plane; 0 at the face's usual proportion)."""

from __future__ import annotations

import math

import numpy as np

_NEUTRAL_NOSE = 0.45  # nose tip at this fraction of the way from the eye line to the mouth on a frontal face
_DEPTH = 0.6


def head_pose(points: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees."""
    from faceexpr_cli.face.types import kps5_from_68, yaw_from_kps5

    p = np.asarray(points, np.float64)
    k = kps5_from_68(p).astype(np.float64)
    eyes = (k[0] + k[1]) / 2
    mouth = (k[3] + k[4]) / 2
    axis = k[1] - k[0]
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    down = mouth - eyes
    span = max(float(np.linalg.norm(down)), 1e-6)
    frac = float(np.dot(k[2] - eyes, down / span)) / span
    iod = max(float(np.linalg.norm(axis)), 1e-6)
    pitch = math.degrees(math.atan((frac - _NEUTRAL_NOSE) * span / iod / _DEPTH))
    return np.array([yaw_from_kps5(k), pitch, roll])


def pose_error(a: np.ndarray, b: np.ndarray) -> float:
    """L2 of the (yaw, pitch, roll) difference in degrees."""
    return float(np.linalg.norm(head_pose(a) - head_pose(b)))
