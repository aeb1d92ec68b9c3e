"""Expression kept: landmarks compared after their head pose is taken out, mouth and eyes weighted.

Two faces' 68 points are brought into one frame by the similarity transform (rotation, scale, shift) that best
maps the rigid points (eye corners, nose bridge and base) of one onto the other's, then measured in units of the
inter-ocular distance: what is left is the expression (mouth, eyes, brows), not where the head is or who it is
only as far as face shape goes. Mouth and eye openings are distances between lip and lid points over the same
unit, so they compare across faces of different sizes.
"""

from __future__ import annotations

import numpy as np

RIGID = [27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45]  # nose bridge and base, eye corners
MOUTH = list(range(48, 68))
EYES = list(range(36, 48))
BROWS = list(range(17, 27))
INNER_LIP_PAIRS = [(61, 67), (62, 66), (63, 65)]
LID_PAIRS = [(37, 41), (38, 40), (43, 47), (44, 46)]


def _iod(points: np.ndarray) -> float:
    p = np.asarray(points, np.float64)
    return max(float(np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0))), 1e-6)


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap over the inter-ocular distance (0 closed, ~0.5 wide open)."""
    p = np.asarray(points, np.float64)
    return float(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in INNER_LIP_PAIRS]) / _iod(p))


def eye_opening(points: np.ndarray) -> float:
    """Mean lid gap of both eyes over the inter-ocular distance."""
    p = np.asarray(points, np.float64)
    return float(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in LID_PAIRS]) / _iod(p))


def pose_normalised(points: np.ndarray, onto: np.ndarray) -> np.ndarray:
    """``points`` moved by the similarity that best maps their rigid points onto ``onto``'s."""
    from faceexpr_cli.face.align import similarity_transform, transform_points

    m = similarity_transform(np.asarray(points)[RIGID], np.asarray(onto)[RIGID])
    return transform_points(m, points).astype(np.float64)


def landmark_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance in pixels, as they are (AKD of the animation literature)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=1).mean())


def expression_error(result: np.ndarray, driver: np.ndarray, mouth_weight: float = 2.0,
                     eye_weight: float = 2.0) -> float:
    """Weighted mean distance of the pose-normalised points over the driver's inter-ocular distance."""
    aligned = pose_normalised(result, driver)
    d = np.linalg.norm(aligned - np.asarray(driver, np.float64), axis=1) / _iod(driver)
    w = np.ones(68)
    w[MOUTH] = mouth_weight
    w[EYES] = eye_weight
    return float((d * w).sum() / w.sum())


def mouth_interior(image: np.ndarray, points: np.ndarray, scale: float = 1.3) -> float:
    """The dark part of the mouth (the open interior) as a fraction of the inter-ocular distance squared.

    Pixels inside the outer-lip polygon (grown by ``scale`` about its centre, so a lip line that lags the opening
    still holds it) whose brightness is under half the median of a band of skin below the eyes. Landmark
    detectors often keep the inner-lip points near closed on a dark, open mouth; the pixels do not."""
    import cv2

    p = np.asarray(points, np.float64)
    ring = p[48:60]
    centre = ring.mean(0)
    ring = centre + (ring - centre) * scale
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 1)
    grey = image.astype(np.float32).mean(2)
    cheek = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(cheek, np.round(p[[1, 31, 35, 15]]).astype(np.int32), 1)
    ref = float(np.median(grey[cheek > 0])) if cheek.any() else float(np.median(grey))
    dark = (mask > 0) & (grey < 0.5 * ref)
    return float(dark.sum() / _iod(p) ** 2)
