"""Still images: read any common format as upright RGB uint8 (alpha dropped, grey expanded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceexpr_cli.errors import MediaError, MissingFileError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    import cv2

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "image")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise MediaError(path, "not a readable image", "pass a PNG or JPEG")
    if img.dtype != np.uint8:
        img = (img / (256 if img.dtype == np.uint16 else img.max() or 1)).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB uint8 image atomically (temporary name, then rename)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok, buf = cv2.imencode(path.suffix or ".png", cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
    except cv2.error as exc:  # OpenCV has no encoder for the suffix
        raise MediaError(path, f"cannot write '{path.suffix}' images", "name it .png or .jpg") from exc
    if not ok:
        raise MediaError(path, "could not encode the image")
    from faceexpr_cli.media.writer import temp_path

    tmp = temp_path(path)  # unique to the process: two writers never share one
    try:
        tmp.write_bytes(buf.tobytes())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
