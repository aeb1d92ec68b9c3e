"""The ``landmarks`` engine: training-free animation from 68-point landmark motion and a thin-plate-spline warp.

The driver's landmarks (face layer, dlib by default) move relative to its reference frame; that motion, carried
onto the source face (``animate.retarget``), moves the source's landmarks; a TPS through them (plus a rigid head
ring and a still ring) warps the source image, and the background outside the still ring stays still. Needs no
weights; the warp is an exportable ``nn.Module`` (``nn.tps.TPSWarp``), the spline fit runs beside it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from faceexpr_cli.animate.engines import ENGINES, Engine, EngineOptions, Motion, to_uint8
from faceexpr_cli.errors import UsageError

WARP_INPUTS = ["image", "control", "weights", "affine", "region"]
WARP_OUTPUTS = ["warped"]


@ENGINES.register("landmarks")
class LandmarksEngine(Engine):
    name = "landmarks"
    size = None
    landmark_motion = True
    device_backends = ("onnx",)  # the torch warp runs on the CPU

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        from faceexpr_cli.builders import build_model
        from faceexpr_cli.config.cards import load_card
        from faceexpr_cli.face import get_backend

        if options.backend not in ("torch", "onnx"):
            raise UsageError(f"unknown backend '{options.backend}'", "use torch or onnx")
        self.face_backend = get_backend(options.face_backend)
        self.card = load_card(options.config or "animate-landmarks")
        self.regularization = float(options.extra.get("regularization", 1e-3))
        self.detect_every = int(options.extra.get("detect_every", 10))
        self.warp = build_model(self.card, tiny=options.tiny).eval()
        self._onnx = None
        self.image: np.ndarray | None = None
        if options.backend == "onnx":
            self._open_onnx()

    def set_source(self, image: np.ndarray, what: str) -> Motion:
        import torch

        from faceexpr_cli.animate.landmarks import image_landmarks
        from faceexpr_cli.animate.retarget import FaceFrame

        face = image_landmarks(self.face_backend, image, what)
        points = face.landmarks68.astype(np.float32)
        self.image = image
        self.h, self.w = image.shape[:2]
        self.frame = FaceFrame.around(points)
        self.source_points = points
        self.tensor = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
        self.region = torch.from_numpy(self.frame.region(self.h, self.w))[None, None]
        return Motion(points[None])

    def _open_onnx(self) -> None:
        """The warp through fx's one export path (cached per card) and its session factory. Its graph takes any
        image size (dynamic height/width), so one export serves every source."""
        from faceexpr_cli.onnx.cache import cached_predictors
        from faceexpr_cli.onnx.export import ExportOptions, ModelSource
        from faceexpr_cli.onnx.session import SessionConfig

        session = SessionConfig(device=self.options.device,
                                allow_cpu_fallback=self.options.allow_cpu_fallback)
        parts, self.onnx_dir = cached_predictors(ModelSource(self.card, model=self.warp), session,
                                                 ExportOptions(tiny=self.options.tiny, latency_runs=1))
        self._onnx = parts[self.card.onnx.parts[0].name]

    def driving_motion(self, frames: Iterable[np.ndarray], what: str) -> Motion:
        from faceexpr_cli.animate.landmarks import follow_landmarks

        track = follow_landmarks(self.face_backend, frames, what, detect_every=self.detect_every)
        return Motion(track.points, found=track.found)

    def retarget(self, source: Motion, driving: Motion, reference: Motion, relative: bool,
                 adapt_scale: bool) -> Motion:
        from faceexpr_cli.animate.retarget import landmark_targets

        pts = landmark_targets(source.points[0], driving.points, reference.points[0], relative, adapt_scale)
        return Motion(pts)

    def render(self, targets: Motion) -> np.ndarray:
        import torch

        from faceexpr_cli.animate.retarget import control_points, to_normalized
        from faceexpr_cli.nn.tps import fit_tps

        control, values = control_points(self.source_points, targets.points, self.frame)
        control = torch.from_numpy(to_normalized(control, self.h, self.w))
        values = torch.from_numpy(to_normalized(values, self.h, self.w))[None].expand_as(control)
        weights, affine = fit_tps(control, values, self.regularization)
        b = len(control)
        image = self.tensor.expand(b, -1, -1, -1)
        region = self.region.expand(b, -1, -1, -1)
        if self._onnx is not None:
            feed = dict(zip(WARP_INPUTS, (image, control, weights, affine, region), strict=True))
            out = self._onnx.run({k: np.ascontiguousarray(v.numpy(), dtype=np.float32) for k, v in feed.items()})
            return to_uint8(out[WARP_OUTPUTS[0]])
        with torch.no_grad():
            return to_uint8(self.warp(image, control, weights, affine, region))

    def describe(self) -> dict:
        info = {**super().describe(), "card": self.card.name, "face_backend": self.options.face_backend}
        if self._onnx is not None:
            info.update(onnx_graphs=str(self.onnx_dir), providers=self._onnx.providers)
        return info
