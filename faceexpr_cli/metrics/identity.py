"""Identity: one face measured per frame (landmarks + embedding), and the distance between two identities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FaceMeasure:
    box: np.ndarray  # (4,) x0, y0, x1, y1
    landmarks68: np.ndarray | None
    embedding: np.ndarray | None  # unit vector


def measure_face(backend, image: np.ndarray, embed: bool = True, near: np.ndarray | None = None) -> FaceMeasure | None:
    """The frame's face (the one overlapping ``near``, a box, when given; else the largest) with its 68 landmarks
    and, when ``embed``, its identity embedding; None without a face."""
    faces = backend.analyze(np.ascontiguousarray(image), landmarks=True, embed=embed)
    faces = [f for f in faces if f.landmarks68 is not None]
    if not faces:
        return None
    if near is not None:
        from faceexpr_cli.face.types import iou_matrix

        ious = iou_matrix(np.stack([f.bbox for f in faces]), np.asarray(near)[None])[:, 0]
        face = faces[int(np.argmax(ious))] if ious.max() > 0.1 else max(faces, key=lambda f: f.size)
    else:
        face = max(faces, key=lambda f: f.size)
    return FaceMeasure(face.bbox.copy(), face.landmarks68.copy(), None if face.embedding is None
                       else face.embedding.copy())


def identity_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """L2 distance of two unit embeddings (dlib: same person below ~0.6), None where either is missing."""
    if a is None or b is None:
        return None
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
