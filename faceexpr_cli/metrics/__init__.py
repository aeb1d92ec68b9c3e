"""Face metrics shared by ``fx swap eval`` and ``fx animate eval``: identity, expression, head pose, jitter.

    from faceexpr_cli.metrics import measure_face, identity_distance, expression_error, mouth_opening
    a = measure_face(backend, frame)            # FaceMeasure: landmarks68, embedding, box (None without a face)
    identity_distance(a.embedding, b.embedding) # L2 of unit embeddings (dlib 128-d; ArcFace 512-d with insightface)
    expression_error(a.landmarks68, b.landmarks68)  # pose-normalised, mouth and eyes weighted

Each function takes plain arrays, so a caller measures faces once and computes every metric from them.
"""

from faceexpr_cli.metrics.expression import (
    expression_error,
    eye_opening,
    landmark_distance,
    mouth_interior,
    mouth_opening,
    pose_normalised,
)
from faceexpr_cli.metrics.identity import FaceMeasure, identity_distance, measure_face
from faceexpr_cli.metrics.pose import head_pose, pose_error
from faceexpr_cli.metrics.temporal import correlation, temporal_jitter

__all__ = [
    "FaceMeasure",
    "correlation",
    "expression_error",
    "eye_opening",
    "head_pose",
    "identity_distance",
    "landmark_distance",
    "measure_face",
    "mouth_interior",
    "mouth_opening",
    "pose_error",
    "pose_normalised",
    "temporal_jitter",
]
