"""Animation engines, chosen by name (``fx animate --engine NAME``).

An engine turns a source image and driving frames into animated frames in four steps that the pipeline calls in
order: ``set_source`` (analyse the source), ``driving_motion`` (per-frame motion descriptors of the driver),
``retarget`` (driver motion mapped onto the source: relative/absolute/adapt-scale), ``render`` (a batch of
targets -> frames). Smoothing, reference frames, find-best-frame, crop and paste-back live in the pipeline, so
they work the same for every engine. A new engine is one module here that registers a subclass of ``Engine``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from faceexpr_cli.registry import Registry


@dataclass
class Motion:
    """Per-frame motion of one face: points (T, K, 2) and optional local Jacobians (T, K, 2, 2)."""

    points: np.ndarray
    jacobians: np.ndarray | None = None
    found: np.ndarray | None = None  # (T,) frames where it was measured (others filled in)

    def __len__(self) -> int:
        return len(self.points)

    def frame(self, i: int) -> Motion:
        jac = None if self.jacobians is None else self.jacobians[i:i + 1]
        return Motion(self.points[i:i + 1], jac)

    def slice(self, i0: int, i1: int) -> Motion:
        jac = None if self.jacobians is None else self.jacobians[i0:i1]
        return Motion(self.points[i0:i1], jac)


@dataclass
class EngineOptions:
    checkpoint: str | None = None
    config: str | None = None  # model card name/path or an original FOMM YAML
    backend: str = "torch"  # torch | onnx
    device: str = "cpu"
    batch: int = 8
    face_backend: str = "dlib"
    tiny: bool = False  # build the card's tiny variant (tests, smoke runs)
    allow_cpu_fallback: bool = False  # --backend onnx: accept a CPU session when --device asked for a GPU
    extra: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Base class; see the package docstring for the call order."""

    name: ClassVar[str] = ""
    size: ClassVar[int | None] = None  # square working size the engine needs (None: any size)
    landmark_motion: ClassVar[bool] = False  # driving motion is the face layer's 68 landmarks
    device_backends: ClassVar[tuple[str, ...]] = ()  # the backends for which --device picks where it runs

    def __init__(self, options: EngineOptions):
        self.options = options

    def set_source(self, image: np.ndarray, what: str) -> Motion:
        raise NotImplementedError

    def driving_motion(self, frames: Iterable[np.ndarray], what: str) -> Motion:
        raise NotImplementedError

    def retarget(self, source: Motion, driving: Motion, reference: Motion, relative: bool,
                 adapt_scale: bool) -> Motion:
        raise NotImplementedError

    def render(self, targets: Motion) -> np.ndarray:
        """(B, H, W, 3) uint8 frames for a batch of retargeted motions."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "backend": self.options.backend}


ENGINES: Registry[type[Engine]] = Registry("animation engine", discover="faceexpr_cli.animate.engines")


BACKENDS = ("torch", "onnx")


def check_engine_options(name: str, options: EngineOptions) -> EngineOptions:
    """The engine name, backend, batch and device checked before any work (``--device`` normalised in place:
    ``auto`` becomes what PyTorch will use)."""
    from faceexpr_cli.devices import check_device, parse_device
    from faceexpr_cli.errors import UnknownNameError
    from faceexpr_cli.safety import check_number

    cls = ENGINES.get(name)
    if options.backend not in BACKENDS:
        raise UnknownNameError("backend", str(options.backend), BACKENDS)
    check_number(options.batch, "--batch", minimum=1)
    parse_device(options.device, "--device", options.backend)  # a misspelt device is an error for every engine
    if options.backend in cls.device_backends:  # ... and a missing GPU where the engine would use it
        options.device = check_device(options.device, "--device", options.backend)
    return options


def get_engine(name: str, options: EngineOptions) -> Engine:
    return ENGINES.get(name)(options)


def to_uint8(frames) -> np.ndarray:
    """(B, 3, H, W) floats in [0, 1] (torch or numpy) -> (B, H, W, 3) uint8."""
    arr = frames.detach().cpu().numpy() if hasattr(frames, "detach") else np.asarray(frames)
    return np.ascontiguousarray(np.clip(arr.transpose(0, 2, 3, 1) * 255.0 + 0.5, 0, 255).astype(np.uint8))
