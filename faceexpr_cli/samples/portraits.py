"""Public-domain portraits that installed packages ship, with hand-checked face geometry.

- ``astronaut``: scikit-image's ``data.astronaut()`` (Eileen Collins, NASA; no known copyright restrictions).
- ``grace_hopper``: matplotlib's sample ``grace_hopper.jpg`` (US Navy photo, public domain).
The key points were measured once with dlib's 68-point predictor (eye centres, mouth centre) and are what the
synthetic talking-head video animates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceexpr_cli.errors import UnknownNameError


@dataclass(frozen=True)
class Portrait:
    name: str
    source: str
    licence: str
    face_box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    mouth: tuple[float, float]
    mouth_width: float
    eye_width: float

    def image(self) -> np.ndarray:
        return _LOADERS[self.name]()

    @property
    def face_center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.face_box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def face_size(self) -> float:
        x0, y0, x1, y1 = self.face_box
        return max(x1 - x0, y1 - y0)


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        img = mpimg.imread(f)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


_LOADERS = {"astronaut": _astronaut, "grace_hopper": _grace_hopper}

PORTRAITS: dict[str, Portrait] = {
    "astronaut": Portrait(
        name="astronaut",
        source="scikit-image skimage.data.astronaut() (NASA)",
        licence="public domain (NASA, no known copyright restrictions)",
        face_box=(175, 76, 265, 166),
        left_eye=(203.2, 101.5),
        right_eye=(246.5, 104.2),
        mouth=(223.3, 145.5),
        mouth_width=45,
        eye_width=17,
    ),
    "grace_hopper": Portrait(
        name="grace_hopper",
        source="matplotlib sample data grace_hopper.jpg (US Navy)",
        licence="public domain (US Navy photograph)",
        face_box=(180, 139, 366, 325),
        left_eye=(223.7, 192.3),
        right_eye=(305.3, 189.2),
        mouth=(267.5, 279.2),
        mouth_width=67,
        eye_width=28,
    ),
}


def load_portrait(name: str = "astronaut") -> tuple[np.ndarray, Portrait]:
    """The RGB uint8 image and its face geometry."""
    if name not in PORTRAITS:
        raise UnknownNameError("portrait", name, list(PORTRAITS))
    info = PORTRAITS[name]
    return info.image(), info
