"""The face layer: detection, landmarks, identity, alignment and tracking, behind one small interface.

    from faceexpr_cli.face import get_backend, track_video
    backend = get_backend("dlib")                 # or "insightface", "opencv"
    faces = backend.analyze(image_rgb, landmarks=True, embed=True)
    tracks = track_video("talk.mp4", backend)     # list of Track, plus per-frame face counts
    tracks.single_face(2.0, 3.0)                  # every frame of [2 s, 3 s) has exactly one face?

See docs/face.md for the layers and where a new backend goes.
"""

from faceexpr_cli.face.align import (
    ARCFACE_112,
    align_face,
    arcface_matrix,
    ffhq_matrix,
    ffhq_quad,
    paste_back,
    similarity_transform,
    soft_mask,
)
from faceexpr_cli.face.backend import BACKENDS, FaceBackend, backend_names, get_backend
from faceexpr_cli.face.smoothing import OneEuroFilter, SmoothParams, smooth_boxes
from faceexpr_cli.face.track import Track, Tracks, TrackStats
from faceexpr_cli.face.tracker import FaceTracker, TrackerOptions, track_faces, track_video
from faceexpr_cli.face.types import Face, iou_matrix, kps5_from_68, yaw_from_kps5

__all__ = [
    "ARCFACE_112",
    "BACKENDS",
    "Face",
    "FaceBackend",
    "FaceTracker",
    "OneEuroFilter",
    "SmoothParams",
    "Track",
    "TrackStats",
    "TrackerOptions",
    "Tracks",
    "align_face",
    "arcface_matrix",
    "backend_names",
    "ffhq_matrix",
    "ffhq_quad",
    "get_backend",
    "iou_matrix",
    "kps5_from_68",
    "paste_back",
    "similarity_transform",
    "smooth_boxes",
    "soft_mask",
    "track_faces",
    "track_video",
    "yaw_from_kps5",
]
