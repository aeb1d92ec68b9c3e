"""Face boxes in dlib's framing, from BlazeFace's box or from the mesh's head pose.

BlazeFace frames a face from the hairline down and about 8% wider than dlib's HOG detector does (brows to chin).
fx's framing rules (``--margin``, ``min_face``, the tracker's gates) were set on dlib's boxes, so the mediapipe
backend reports boxes in dlib's framing, and a crop looks the same whichever backend found the face:

- straight from the detector: the centre moves by ``DET_SHIFT`` times the box's size (``sqrt(w h)``) and each
  side is scaled by ``DET_SCALE``;
- once the mesh has run: a square centred on the image of one point fixed in the canonical face
  (``POSE_CENTRE``, centimetres in the canonical frame: x right, y up, z out of the face), with a side of
  ``POSE_SIDE`` canonical centimetres. The pose fit sees the whole face, so this box turns with the head, does not
  change with the mouth or the eyes, and is steadier than either detector (under 4% of the face size from one
  frame to the next on the sample videos, dlib's jumps up to 20%: its image pyramid steps by 6/5).

The constants are fitted by ``benchmarks/face_boxes.py`` on scikit-image's 100 LFW faces and three synthetic
talking heads that no test uses, each set weighing the same (least squares for the centre, geometric mean for
the size); the script also prints how far the boxes land from dlib's on the sample videos.
"""

from __future__ import annotations

import numpy as np

from faceexpr_cli.face.mediapipe.pose import _FLIP, HeadPose

DET_SHIFT = np.array([0.0105, 0.0553])
DET_SCALE = 0.9306
POSE_CENTRE = np.array([0.098, -1.153, 4.078])
POSE_SIDE = 15.54


def box_from_detector(box: np.ndarray) -> np.ndarray:
    """BlazeFace's box (x0, y0, x1, y1) in dlib's framing."""
    b = np.asarray(box, dtype=np.float64)
    w, h = b[2] - b[0], b[3] - b[1]
    centre = (b[:2] + b[2:]) / 2 + DET_SHIFT * np.sqrt(max(w, 0.0) * max(h, 0.0))
    half = np.array([w, h]) * DET_SCALE / 2
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


def detector_box(box: np.ndarray) -> np.ndarray:
    """The inverse of ``box_from_detector``: the box BlazeFace would have drawn, which the mesh's crop is made from."""
    b = np.asarray(box, dtype=np.float64)
    w, h = (b[2] - b[0]) / DET_SCALE, (b[3] - b[1]) / DET_SCALE
    centre = (b[:2] + b[2:]) / 2 - DET_SHIFT * np.sqrt(max(w, 0.0) * max(h, 0.0))
    half = np.array([w, h]) / 2
    return np.concatenate([centre - half, centre + half])


def box_from_pose(pose: HeadPose) -> np.ndarray:
    """The square in dlib's framing from a head pose fitted to the mesh (``pose.head_pose``)."""
    centre = (_FLIP @ (pose.scale * pose.rotation @ POSE_CENTRE) + pose.translation)[:2]
    half = POSE_SIDE * pose.scale / 2
    return np.concatenate([centre - half, centre + half]).astype(np.float32)
