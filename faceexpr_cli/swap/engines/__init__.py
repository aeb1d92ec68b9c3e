"""Swap engines, chosen by name (``fx swap --engine NAME``).

An engine is told the source face once (``set_source``), then swaps batches of driving frames (``swap``): each
frame comes with the driving faces found in it (68 landmarks, 5 key points and a slot number that stays with one
person across frames, for temporal smoothing). Face choice, pass-through of face-less frames, decoding and
writing live in the pipeline, so they work alike for every engine. A new engine is one module here that
registers a subclass of ``SwapEngine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from faceexpr_cli.registry import Registry


@dataclass
class DrivingFace:
    slot: int  # one number per followed person
    points: np.ndarray  # (68, 2) pixels of the frame
    kps5: np.ndarray  # (5, 2)
    time: float = 0.0  # seconds (the frame's presentation time): temporal filters run on it
    mesh: np.ndarray | None = None  # (N, 2) dense mesh (the face backend's 468 points) where it gives one


@dataclass
class SwapOptions:
    backend: str = "torch"  # torch | onnx
    device: str = "cpu"
    batch: int = 8
    face_backend: str = "dlib"
    weights: str | None = None  # inswapper: the inswapper_128.onnx file
    models: str | None = None  # inswapper: the buffalo_l directory (detection + ArcFace)
    tiny: bool = False
    allow_cpu_fallback: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class SwapEngine:
    name: ClassVar[str] = ""
    face_backend: ClassVar[str | None] = None  # the face backend this engine needs (None: the user's choice)
    notice: ClassVar[str | None] = None  # printed once per run (e.g. a non-commercial licence)
    detect_every: ClassVar[int] = 10
    uses_source: ClassVar[bool] = True  # False: the identity comes from elsewhere (a run's subject table)

    def __init__(self, options: SwapOptions):
        self.options = options
        self.face_layer = None  # the face backend the pipeline uses (set before set_source)

    def set_source(self, image: np.ndarray, face, what: str) -> None:
        raise NotImplementedError

    def swap(self, frames: list[np.ndarray], faces: list[list[DrivingFace]]) -> list[np.ndarray]:
        """The frames with every listed face swapped (a frame with no faces comes back as it is)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "backend": self.options.backend}


ENGINES: Registry[type[SwapEngine]] = Registry("swap engine", discover="faceexpr_cli.swap.engines")
BACKENDS = ("torch", "onnx")


def check_options(name: str, options: SwapOptions) -> SwapOptions:
    """Engine, backend, batch and device checked before any work."""
    from faceexpr_cli.devices import parse_device
    from faceexpr_cli.errors import UnknownNameError
    from faceexpr_cli.safety import check_number

    ENGINES.get(name)
    if options.backend not in BACKENDS:
        raise UnknownNameError("backend", str(options.backend), BACKENDS)
    check_number(options.batch, "--batch", minimum=1)
    parse_device(options.device, "--device", options.backend)
    return options


def get_engine(name: str, options: SwapOptions) -> SwapEngine:
    return ENGINES.get(name)(options)
