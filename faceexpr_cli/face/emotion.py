"""Facial emotion from face crops: the FER2013 mini-Xception (``models/emotion-minixception.yaml``), torch or ONNX.

    from faceexpr_cli.face.emotion import EmotionPredictor
    emo = EmotionPredictor("onnx")                       # or "torch"; weights from the cache (fx download weights)
    result = emo.predict(crops)                          # RGB uint8 crops of any size
    result = emo.predict_frame(frame, boxes)             # a frame and its face boxes (x0, y0, x1, y1) or Faces
    result.top(), result.probabilities, result.logits   # columns in result.labels order

Both backends run the same card part on the same arrays: each crop is resized (antialiased bilinear) to the card's
64 x 64, turned grey and scaled to [-1, 1] by the shared ``onnx.preprocess.prepare_images``. The ONNX graph is
exported once per weights through fx's exporter (parity-checked against PyTorch within the card's tolerance) and
cached under ``$FX_HOME/cache/onnx``; its session comes from fx's session factory, so ``device="cuda"`` on a
CPU-only build fails at once instead of running silently on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.config.cards import ModelCard, load_card
from faceexpr_cli.errors import DataError, UsageError
from faceexpr_cli.registry import Registry

EMOTION_CARD = "emotion-minixception"

ENGINES: Registry[Callable[..., Any]] = Registry("emotion backend")


@dataclass
class Emotions:
    """One row per face: probabilities and logits, columns in ``labels`` order."""

    labels: list[str]
    probabilities: np.ndarray  # (N, C) float32, rows sum to 1
    logits: np.ndarray  # (N, C) float32

    def top(self) -> list[str]:
        """The most likely label of each face."""
        return [self.labels[i] for i in self.probabilities.argmax(axis=1)] if len(self.probabilities) else []

    def as_dicts(self) -> list[dict[str, float]]:
        return [dict(zip(self.labels, map(float, row), strict=True)) for row in self.probabilities]


def crop_faces(frame: np.ndarray, boxes: Any, scale: float = 1.0) -> list[np.ndarray]:
    """Square crops of ``frame`` around each box (side = longest box side x ``scale``), edges repeated past the
    frame's border. ``boxes``: an ``(N, 4)`` array of x0, y0, x1, y1 or ``Face`` records."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise DataError(f"expected an RGB frame (H, W, 3), got shape {frame.shape}")
    rows = [getattr(b, "bbox", b) for b in boxes] if not isinstance(boxes, np.ndarray) else boxes
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    crops = []
    for x0, y0, x1, y1 in arr:
        if not np.all(np.isfinite([x0, y0, x1, y1])) or x1 <= x0 or y1 <= y0:
            raise DataError(f"a face box without area or with a non-finite corner: {[x0, y0, x1, y1]}")
        side = max(1, int(round(max(x1 - x0, y1 - y0) * scale)))
        left = int(round((x0 + x1) / 2 - side / 2))
        top = int(round((y0 + y1) / 2 - side / 2))
        ys = np.clip(np.arange(top, top + side), 0, frame.shape[0] - 1)
        xs = np.clip(np.arange(left, left + side), 0, frame.shape[1] - 1)
        crops.append(frame[ys[:, None], xs[None, :]])
    return crops


@ENGINES.register("torch")
def _torch_engine(model: Any, card: ModelCard, *, device: str, tiny: bool, **_: Any):
    from faceexpr_cli.onnx.predictor import TorchPredictor

    return TorchPredictor(model, card, device=device, tiny=tiny)


@ENGINES.register("onnx")
def _onnx_engine(model: Any, card: ModelCard, *, device: str, tiny: bool, allow_cpu_fallback: bool = False,
                 threads: int = 0):
    from faceexpr_cli.onnx.cache import cached_predictors
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource
    from faceexpr_cli.onnx.session import SessionConfig

    session = SessionConfig(device=device, allow_cpu_fallback=allow_cpu_fallback, intra_op_threads=threads)
    # No onnxslim pass: on a graph this small it saves nothing that ONNX Runtime's own optimiser does not, and
    # it would double the one-time export.
    opts = ExportOptions(tiny=tiny, latency_runs=1, simplify=False)
    parts, _ = cached_predictors(ModelSource(card, model=model), session, opts)
    return parts[card.onnx.parts[0].name]


class EmotionPredictor:
    """Batched emotion scores for face crops; the model loads once, on construction.

    ``weights``: a path to the ``.hdf5`` (else the cached file of the card's weight source). ``random_init=True``
    (tests) skips the weights; without it a missing file is a ``WeightsNotFoundError`` naming the download command.
    ``threads`` sets ONNX Runtime's intra-op threads (0: its default); torch uses ``torch.set_num_threads``.
    """

    def __init__(self, backend: str = "torch", *, device: str = "cpu", weights: str | Path | None = None,
                 random_init: bool = False, tiny: bool = False, batch_size: int = 32,
                 card: ModelCard | str = EMOTION_CARD, allow_cpu_fallback: bool = False, threads: int = 0):
        from faceexpr_cli.builders import build_model
        from faceexpr_cli.onnx.sources import load_weights
        from faceexpr_cli.weights import find_weights

        if batch_size < 1:
            raise UsageError(f"batch size {batch_size}: must be at least 1")
        self.card = card if isinstance(card, ModelCard) else load_card(card)
        engine = ENGINES.get(backend)
        self.backend = backend
        self.batch_size = batch_size
        self.model = build_model(self.card, tiny=tiny).eval()
        if not random_init:
            load_weights(self.model, find_weights(self.card, explicit=weights), self.card)
        self.labels: list[str] = list(getattr(self.model, "labels", [])) or [
            str(i) for i in range(self.model.num_classes)]
        self.predictor = engine(self.model, self.card, device=device, tiny=tiny,
                                allow_cpu_fallback=allow_cpu_fallback, threads=threads)
        self._image, self._logits, self._probs = (*self.predictor.input_names, *self.predictor.output_names)

    def prepare(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """RGB uint8 crops (any sizes, or one ``(N, H, W, 3)`` array) -> the model's ``[N, 1, 64, 64]`` batch."""
        if isinstance(crops, np.ndarray) and crops.ndim == 4:
            return self.predictor.prepare_images(crops)
        if isinstance(crops, np.ndarray) and crops.ndim == 3:
            crops = [crops]
        if not len(crops):
            return np.zeros((0, *self._input_shape()), np.float32)
        return np.concatenate([self.predictor.prepare_images(np.asarray(c)) for c in crops])

    def _input_shape(self) -> tuple[int, ...]:
        from faceexpr_cli.onnx.preprocess import contract_size

        h, w = contract_size(self.card.input) or (64, 64)
        return (1, h, w)

    def run(self, batch: np.ndarray) -> Emotions:
        """A prepared batch (``prepare``'s output) through the model, ``batch_size`` rows at a time."""
        logits, probs = [], []
        for start in range(0, len(batch), self.batch_size):
            out = self.predictor.run({self._image: np.ascontiguousarray(batch[start:start + self.batch_size])})
            logits.append(out[self._logits])
            probs.append(out[self._probs])
        width = len(self.labels)
        return Emotions(self.labels, np.concatenate(probs) if probs else np.zeros((0, width), np.float32),
                        np.concatenate(logits) if logits else np.zeros((0, width), np.float32))

    def predict(self, crops: Sequence[np.ndarray] | np.ndarray) -> Emotions:
        """Emotion scores of face crops (RGB uint8, any size)."""
        return self.run(self.prepare(crops))

    def predict_frame(self, frame: np.ndarray, boxes: Any, scale: float = 1.0) -> Emotions:
        """Emotion scores of the faces in ``frame`` at ``boxes`` (see ``crop_faces``)."""
        return self.predict(crop_faces(frame, boxes, scale))
