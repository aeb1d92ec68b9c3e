"""Face alignment: a similarity transform from key points to a template, the aligned crop, and paste-back.

Two templates: ArcFace's 112x112 five-point layout (what recognition and swap models expect) and an FFHQ-style
oriented square built from the eyes and mouth (what generation models expect: the whole face with some hair and
chin, upright). ``paste_back`` inverts either warp and blends the result into the frame with a feathered mask,
so an edited face returns without a visible seam.
"""

from __future__ import annotations

import numpy as np

# ArcFace's reference positions of the 5 key points in a 112x112 crop (insightface's published template).
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping ``src`` points onto ``dst`` (Umeyama 1991).

    Returns a 2x3 matrix for ``cv2.warpAffine``. A similarity (not a full affine) keeps the face's proportions,
    so a squinting or turned face is not stretched to fit the template.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    scale = float(np.trace(np.diag(sig) @ fix) / max(var_s, 1e-12))
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m.astype(np.float32)


def transform_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float32)
    return pts @ m[:, :2].T + m[:, 2]


def invert_affine(m: np.ndarray) -> np.ndarray:
    a = np.vstack([m, [0, 0, 1]]).astype(np.float64)
    return np.linalg.inv(a)[:2].astype(np.float32)


def arcface_matrix(kps5: np.ndarray, size: int = 112) -> np.ndarray:
    """Frame -> crop matrix for the ArcFace template scaled to ``size`` (112 is the native size)."""
    return similarity_transform(kps5, ARCFACE_112 * (size / 112.0))


def ffhq_quad(kps5: np.ndarray) -> np.ndarray:
    """FFHQ-style oriented square (4 corners, clockwise from top-left) from eye centres and mouth corners.

    The square's side is set by the larger of twice the eye distance and 1.8 times the eye-to-mouth distance,
    its centre sits a little below the eyes, and it turns with the eye-mouth axis (the FFHQ dataset's rule).
    """
    k = np.asarray(kps5, dtype=np.float64)
    eye_avg = (k[0] + k[1]) / 2
    mouth_avg = (k[3] + k[4]) / 2
    eye_to_eye = k[1] - k[0]
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= max(float(np.hypot(*x)), 1e-9)
    x *= max(float(np.hypot(*eye_to_eye)) * 2.0, float(np.hypot(*eye_to_mouth)) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c + x - y, c + x + y, c - x + y]).astype(np.float32)


def ffhq_matrix(kps5: np.ndarray, size: int = 256) -> np.ndarray:
    quad = ffhq_quad(kps5)
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float32)
    return similarity_transform(quad, corners)


TEMPLATES = {"arcface": arcface_matrix, "ffhq": ffhq_matrix}


def align_face(image: np.ndarray, kps5: np.ndarray, size: int = 112, template: str = "arcface",
               border: str = "reflect") -> tuple[np.ndarray, np.ndarray]:
    """The aligned ``size`` x ``size`` crop and its frame -> crop matrix."""
    import cv2

    if template not in TEMPLATES:
        from faceexpr_cli.errors import UnknownNameError

        raise UnknownNameError("alignment template", template, list(TEMPLATES))
    m = TEMPLATES[template](kps5, size)
    mode = cv2.BORDER_REFLECT101 if border == "reflect" else cv2.BORDER_CONSTANT
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode)
    return crop, m


def soft_mask(size: int | tuple[int, int], margin: float = 0.1, blur: float = 0.05) -> np.ndarray:
    """A float mask (H, W) in [0, 1]: 1 inside, falling to 0 over the crop's outer ``margin``."""
    import cv2

    h, w = (size, size) if isinstance(size, int) else size
    mask = np.zeros((h, w), dtype=np.float32)
    mh, mw = int(round(h * margin)), int(round(w * margin))
    mask[mh:h - mh, mw:w - mw] = 1.0
    sigma = max(1.0, blur * max(h, w))
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def paste_back(frame: np.ndarray, crop: np.ndarray, m: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Warp ``crop`` back into ``frame`` with the inverse of ``m`` (frame -> crop) and blend by a soft mask."""
    import cv2

    h, w = frame.shape[:2]
    inv = invert_affine(m)
    mask = soft_mask(crop.shape[:2]) if mask is None else mask.astype(np.float32)
    back = cv2.warpAffine(crop, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    out = frame.astype(np.float32) * (1 - alpha) + back.astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(frame.dtype)
