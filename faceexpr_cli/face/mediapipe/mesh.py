"""The face-mesh crop and what fx reads from the 468 points: image coordinates, the iBUG 68 layout, apertures.

The mesh model sees a 192 px square, rotated so the eyes are level, around the face: MediaPipe's recipe is the
detection box's centre, 1.5x its longer side, and the roll angle of the line from the right eye to the left eye
(the detector's first two key points). On video, a square from the previous mesh (its bounding box in the
eye-level frame, 1.5x) fits better than one from a detection; ``roi_from_mesh`` gives it.

Coordinates are continuous pixels (pixel i covers [i, i+1)); the mesh's z is in the crop's pixel units, scaled to
image pixels like x and y, smaller when nearer to the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MESH_SIZE = 192
ROI_SCALE = 1.5
# Eye outer corners of the mesh (subject's right eye: image left): the roll of a square made from the mesh.
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263


@dataclass(frozen=True)
class Roi:
    """A rotated square in an image: centre (x, y), side, roll angle (radians, the eye line's angle, y down)."""

    cx: float
    cy: float
    side: float
    angle: float

    def crop_to_image(self, size: int = MESH_SIZE) -> np.ndarray:
        """2x3 affine matrix from crop coordinates (0..size) to image coordinates."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        k = self.side / size
        u, v = np.array([c, s]) * k, np.array([-s, c]) * k
        origin = np.array([self.cx, self.cy]) - (u + v) * size / 2
        return np.stack([u, v, origin], axis=1)


def roi_from_detection(box: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray) -> Roi:
    x0, y0, x1, y1 = (float(v) for v in box)
    d = np.asarray(left_eye, dtype=np.float64) - np.asarray(right_eye, dtype=np.float64)
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * ROI_SCALE, float(np.arctan2(d[1], d[0])))


def roi_from_mesh(mesh: np.ndarray) -> Roi:
    """The square around a mesh in image coordinates (468, 2+), level with its eye corners."""
    p = np.asarray(mesh, dtype=np.float64)[:, :2]
    d = p[LEFT_EYE_OUTER] - p[RIGHT_EYE_OUTER]
    angle = float(np.arctan2(d[1], d[0]))
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # image -> eye-level frame
    q = p @ rot.T
    lo, hi = q.min(0), q.max(0)
    centre = ((lo + hi) / 2) @ rot  # back to the image
    return Roi(float(centre[0]), float(centre[1]), float((hi - lo).max()) * ROI_SCALE, angle)


def crop(image: np.ndarray, roi: Roi, size: int = MESH_SIZE) -> np.ndarray:
    """The ROI resampled to size x size (bilinear; outside the image is black), uint8 RGB."""
    import cv2

    forward = np.vstack([roi.crop_to_image(size), [0, 0, 1]])
    # cv2 puts pixel centres on integers; shift both sides by half a pixel
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    inverse = np.linalg.inv(shift) @ forward @ shift
    return cv2.warpAffine(image, inverse[:2], (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def mesh_to_image(points: np.ndarray, roi: Roi, size: int = MESH_SIZE) -> np.ndarray:
    """Mesh output (468, 3) in crop pixels -> image pixels (x, y, z)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    xy = p[:, :2] @ roi.crop_to_image(size)[:, :2].T + roi.crop_to_image(size)[:, 2]
    return np.concatenate([xy, p[:, 2:] * roi.side / size], axis=1).astype(np.float32)


# The mesh vertex that stands for each iBUG 300-W point (68 entries, iBUG order). Chosen by fx: contour points
# (jaw, brows, nose bridge and nostrils) are the vertices nearest to dlib's 68 points on the Grace Hopper portrait
# (mirrored too, and rolled by +-8 degrees), mean distance over those six images, chosen in mirror pairs so the
# map is left-right symmetric; points that have a definition (eye and mouth corners, lid and lip centres, nose tip,
# chin) are the mesh vertices with that meaning. The astronaut, which took no part in the choice, is the test.
MESH_TO_68 = np.array([
    # 0-16 jaw, from the subject's right ear (image left) over the chin (8) to the left ear
    34, 137, 177, 58, 172, 150, 149, 148, 152, 377, 378, 379, 397, 288, 401, 366, 264,
    # 17-21 right brow (outer -> inner), 22-26 left brow (inner -> outer)
    156, 63, 105, 66, 107, 336, 296, 334, 293, 383,
    # 27-30 nose bridge down to the tip, 31-35 nostrils and columella, image left to right
    168, 197, 5, 4, 240, 97, 164, 326, 460,
    # 36-41 right eye: outer corner, upper lid (2), inner corner, lower lid (2)
    33, 160, 158, 133, 153, 144,
    # 42-47 left eye: inner corner, upper lid (2), outer corner, lower lid (2)
    362, 385, 387, 263, 373, 380,
    # 48-59 outer lips: right corner, upper lip to the left corner (54), lower lip back
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # 60-67 inner lips: right corner, upper (3), left corner, lower (3)
    78, 82, 13, 312, 308, 317, 14, 87,
], dtype=np.int64)

# Aperture = opening / width of the same feature (scale- and roll-free): 0 closed, ~0.3 an open eye.
APERTURES = {
    "right_eye": ((159, 145), (33, 133)),
    "left_eye": ((386, 374), (362, 263)),
    "mouth": ((13, 14), (61, 291)),
}


def to_68(mesh: np.ndarray) -> np.ndarray:
    return np.asarray(mesh, dtype=np.float32)[MESH_TO_68, :2]


def apertures(mesh: np.ndarray) -> dict[str, float]:
    p = np.asarray(mesh, dtype=np.float64)[:, :2]
    out = {}
    for name, ((a, b), (c, d)) in APERTURES.items():
        width = float(np.linalg.norm(p[c] - p[d]))
        out[name] = float(np.linalg.norm(p[a] - p[b])) / width if width > 1e-9 else float("nan")
    return out
