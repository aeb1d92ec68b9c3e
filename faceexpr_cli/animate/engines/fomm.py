"""The ``fomm`` engine: First Order Motion Model key points and generator, in torch or ONNX Runtime.

Key points come from the kp detector (batches of driving frames), are normalised against the reference frame
outside the graphs (``animate.motion``), then the generator renders batches. Both backends share the same pre-
and post-processing; the ONNX graphs are exported once per (card, checkpoint) and cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from faceexpr_cli.animate.engines import ENGINES, Engine, EngineOptions, Motion, to_uint8
from faceexpr_cli.console import log
from faceexpr_cli.errors import UsageError

KP_INPUTS = ["image"]
KP_OUTPUTS = ["kp_value", "kp_jacobian"]
GEN_INPUTS = ["source", "kp_driving", "jacobian_driving", "kp_source", "jacobian_source"]
GEN_OUTPUTS = ["prediction"]


def _batches(frames: Iterable[np.ndarray], size: int):
    batch: list[np.ndarray] = []
    for f in frames:
        batch.append(f)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def to_tensor_batch(images: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [0, 1]."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


@ENGINES.register("fomm")
class FommEngine(Engine):
    name = "fomm"
    size = 256
    device_backends = ("torch", "onnx")

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        import torch

        from faceexpr_cli.animate.checkpoints import (
            card_in,
            config_frame_size,
            load_fomm_checkpoint,
            read_checkpoint,
        )
        from faceexpr_cli.builders import build_model
        from faceexpr_cli.builders.fomm import card_for_config
        from faceexpr_cli.weights import find_weights

        self.card = card_for_config(options.config)
        if options.checkpoint != "random":
            path = find_weights(self.card, explicit=options.checkpoint)
            data = read_checkpoint(path)
            carried = card_in(data)
            if carried is not None and options.config is None:  # our own checkpoints say what they are
                self.card = carried
            self.model = build_model(self.card, tiny=options.tiny).eval()
            load_fomm_checkpoint(self.model, path, self.card.name, data=data)
            self.weights = str(path)
        else:
            self.model = build_model(self.card, tiny=options.tiny).eval()
            log.warning("fomm: random weights (--checkpoint random): the output shows the pipeline, not a face")
            self.weights = "random"
        card_size = int(self.card.input.size) if self.card.input and isinstance(self.card.input.size, int) else 256
        # --size, else the original YAML's dataset_params.frame_shape, else the card's input size
        self.size = int(options.extra.get("size") or config_frame_size(options.config) or card_size)
        self.resized = self.size != card_size
        if self.resized and self.card.input is not None:  # the card travels with exports: it says the real size
            self.card = self.card.model_copy(
                update={"input": self.card.input.model_copy(update={"size": self.size})})
        self.device = torch.device(options.device if options.backend == "torch" else "cpu")
        self.model.to(self.device)
        self._kp = self._gen = None
        if options.backend == "onnx":
            self._open_onnx()
        elif options.backend != "torch":
            raise UsageError(f"unknown backend '{options.backend}'", "use torch or onnx")
        self.source: np.ndarray | None = None
        self.source_motion: Motion | None = None

    # -- backends ---------------------------------------------------------------------------------------
    def _open_onnx(self) -> None:
        """Both parts through fx's one export path (cached per card + weights) and its session factory."""
        from faceexpr_cli.config.cards import list_cards
        from faceexpr_cli.onnx.cache import cached_predictors
        from faceexpr_cli.onnx.export import ExportOptions, ModelSource
        from faceexpr_cli.onnx.session import SessionConfig
        from faceexpr_cli.onnx.sources import differs_from_shipped

        # An original FOMM YAML or our checkpoint's card may change the number of key points, and --size or a
        # frame_shape the frame size: their graphs take the sizes the built model really has; the shipped card's
        # shapes are checked as written.
        derive = self.card.name not in list_cards() or differs_from_shipped(self.card) or self.resized
        weights = None if self.weights == "random" else Path(self.weights)
        source = ModelSource(self.card, weights=weights, model=self.model, derive_shapes=derive)
        session = SessionConfig(device=self.options.device,
                                allow_cpu_fallback=self.options.allow_cpu_fallback)
        parts, self.onnx_dir = cached_predictors(source, session, ExportOptions(tiny=self.options.tiny, latency_runs=1))
        self._kp, self._gen = parts["kp_detector"], parts["generator"]

    def keypoints(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = to_tensor_batch(images)
        if self._kp is not None:
            out = self._kp.run({KP_INPUTS[0]: x})
            return out[KP_OUTPUTS[0]], out[KP_OUTPUTS[1]]
        import torch

        with torch.no_grad():
            value, jac = self.model.kp_detector(torch.from_numpy(x).to(self.device))
        return value.cpu().numpy(), jac.cpu().numpy()

    def generate(self, kp_driving: np.ndarray, jac_driving: np.ndarray) -> np.ndarray:
        assert self.source is not None and self.source_motion is not None
        b = len(kp_driving)
        src = np.repeat(self.source, b, axis=0)
        kp_s = np.repeat(self.source_motion.points, b, axis=0)
        jac_s = np.repeat(self.source_motion.jacobians, b, axis=0)
        if self._gen is not None:
            feed = dict(zip(GEN_INPUTS, (src, kp_driving, jac_driving, kp_s, jac_s), strict=True))
            return to_uint8(self._gen.run({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feed.items()})
                            [GEN_OUTPUTS[0]])
        import torch

        args = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)
                for a in (src, kp_driving, jac_driving, kp_s, jac_s)]
        with torch.no_grad():
            return to_uint8(self.model.generator(*args))

    # -- the engine interface ----------------------------------------------------------------------------
    def set_source(self, image: np.ndarray, what: str) -> Motion:
        self.source = to_tensor_batch(image[None])
        value, jac = self.keypoints(image[None])
        self.source_motion = Motion(value, jac)
        return self.source_motion

    def driving_motion(self, frames: Iterable[np.ndarray], what: str) -> Motion:
        values, jacs = [], []
        for batch in _batches(frames, max(1, self.options.batch)):
            v, j = self.keypoints(batch)
            values.append(v)
            jacs.append(j)
        if not values:
            raise UsageError(f"{what}: has no frames")
        return Motion(np.concatenate(values), np.concatenate(jacs))

    def retarget(self, source: Motion, driving: Motion, reference: Motion, relative: bool,
                 adapt_scale: bool) -> Motion:
        import torch

        from faceexpr_cli.animate.motion import MotionOptions, normalize_kp

        def t(m: Motion):
            return torch.from_numpy(m.points), torch.from_numpy(m.jacobians)

        opts = MotionOptions(relative=relative, relative_jacobian=relative, adapt_scale=adapt_scale)
        value, jac = normalize_kp(t(source), t(driving), t(reference), opts)
        return Motion(value.numpy().astype(np.float32), jac.numpy().astype(np.float32))

    def render(self, targets: Motion) -> np.ndarray:
        return self.generate(targets.points, targets.jacobians)

    def describe(self) -> dict:
        info = {**super().describe(), "card": self.card.name, "weights": self.weights, "size": self.size}
        if self._kp is not None:
            info.update(onnx_graphs=str(self.onnx_dir), providers=self._kp.providers)
        return info
