"""What `fx live` does to each frame: follow the face, then tokens, next-token error, emotion, animate or swap.

Every model is optional and loads once, before the first frame. The face is followed by the landmark follower
that `fx animate` uses (a detection every few frames, the 68 points carried in between), so one detector pass
serves tokens, emotion, the animated portrait and the swapped face alike.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log

BUFFER = 30  # frames of tokens the next-token predictor sees (the seed's webcam buffer)


@dataclass
class LiveModels:
    model: str | None = None  # `fx train joint` run or its export: expression tokens
    predictor: str | None = None  # `fx train expression` run or export: next-token prediction
    backend: str | None = None  # torch | onnx for both (None: what each folder is)
    animate: str | None = None  # portrait to animate with the landmarks engine
    swap: str | None = None  # face photo whose identity the source's face gets (landmarks swap engine)
    emotion: str = "auto"  # auto (when the weights are cached) | on | off
    face_backend: str | None = None
    detect_every: int = 5
    margin: float = 0.3
    device: str = "cpu"


@dataclass
class FrameResult:
    box: list[float] | None = None
    token: np.ndarray | None = None
    prediction_error: float | None = None
    emotion: dict[str, float] | None = None
    shown: np.ndarray | None = None  # the frame to show / record
    extra: dict[str, Any] = field(default_factory=dict)


class _Predictor:
    """Next-token prediction over the last ``BUFFER`` tokens; ``error`` is 1 - cos(predicted, actual)."""

    def __init__(self, path: str, backend: str | None, device: str):
        from faceexpr_cli.extract.model import check_model_dir
        from faceexpr_cli.onnx.predictor import load_chain

        folder, kind = check_model_dir(path, backend)
        # a predictor run also holds the expression model it was trained on: only its last part is needed here
        self.part = load_chain(kind, folder, outputs=["next_expression"], device=device).predictors[-1]
        self.buffer: deque[np.ndarray] = deque(maxlen=BUFFER)
        self.expected: np.ndarray | None = None

    def step(self, token: np.ndarray | None) -> float | None:
        if token is None:  # the face is gone: the sequence restarts when it is back
            self.buffer.clear()
            self.expected = None
            return None
        error = None
        if self.expected is not None:
            a, b = self.expected, token
            error = float(1.0 - a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
        self.buffer.append(token.astype(np.float32))
        seq = np.stack(self.buffer)[None]
        self.expected = np.asarray(self.part.run({"expression": seq})["next_expression"])[0, -1]
        return error


class _Animator:
    """The portrait moved by the driver's landmark motion, relative to the first frame with a face."""

    def __init__(self, portrait: str, face_backend: str):
        from faceexpr_cli.animate.engines import EngineOptions, get_engine
        from faceexpr_cli.media import read_image

        self.engine = get_engine("landmarks", EngineOptions(face_backend=face_backend, batch=1))
        self.image = read_image(Path(portrait))
        self.source = self.engine.set_source(self.image, str(portrait))
        self.reference = None
        self.last = self.image

    def step(self, points: np.ndarray | None) -> np.ndarray:
        from faceexpr_cli.animate.engines import Motion

        if points is None:
            return self.last  # hold the last pose while the face is away
        if self.reference is None:
            self.reference = Motion(points[None].astype(np.float32))
        targets = self.engine.retarget(self.source, Motion(points[None].astype(np.float32)), self.reference,
                                       True, False)
        self.last = self.engine.render(targets)[0]
        return self.last


class _Swapper:
    """The source face's identity on the followed face, with the `fx swap` landmarks engine (one slot, so its
    temporal smoothing follows this face)."""

    def __init__(self, photo: str, face_backend: str):
        from faceexpr_cli.face import get_backend
        from faceexpr_cli.media import read_image
        from faceexpr_cli.swap.engines import SwapOptions, get_engine
        from faceexpr_cli.swap.faces import source_face

        self.engine = get_engine("landmarks", SwapOptions(face_backend=face_backend, batch=1))
        backend = get_backend(face_backend)
        self.engine.face_layer = backend
        image = read_image(Path(photo))
        self.engine.set_source(image, source_face(backend, image, str(photo)), str(photo))

    def step(self, image: np.ndarray, points: np.ndarray | None, t: float) -> np.ndarray:
        from faceexpr_cli.face.types import kps5_from_68
        from faceexpr_cli.swap.engines import DrivingFace

        if points is None:
            return image  # no face: the frame as it is
        face = DrivingFace(0, points.astype(np.float64), kps5_from_68(points), t)
        return self.engine.swap([image], [[face]])[0]


class FrameProcessor:
    def __init__(self, models: LiveModels):
        from faceexpr_cli.animate.landmarks import LandmarkFollower
        from faceexpr_cli.face import get_backend
        from faceexpr_cli.face.backend import resolve_backend_name

        self.models = models
        self.face_backend_name = resolve_backend_name(models.face_backend)
        self.follower = LandmarkFollower(get_backend(self.face_backend_name).prepare(),
                                         detect_every=models.detect_every)
        self.tokens = None
        if models.model:
            from faceexpr_cli.extract.model import ExpressionModel

            self.tokens = ExpressionModel.load(models.model, models.backend, device=models.device)
        self.predictor = None
        if models.predictor:
            if self.tokens is None:
                from faceexpr_cli.errors import UsageError

                raise UsageError("--predictor needs --model", "the predictor reads the expression model's tokens")
            self.predictor = _Predictor(models.predictor, models.backend, models.device)
        self.emotion = self._emotion(models.emotion)
        if models.animate and models.swap:
            from faceexpr_cli.errors import UsageError

            raise UsageError("--animate and --swap both set", "pick one: a portrait to move, or a face to swap in")
        self.animator = _Animator(models.animate, self.face_backend_name) if models.animate else None
        self.swapper = _Swapper(models.swap, self.face_backend_name) if models.swap else None

    @staticmethod
    def _emotion(mode: str):
        from faceexpr_cli.errors import UnknownNameError

        if mode not in ("auto", "on", "off"):
            raise UnknownNameError("--emotion mode", mode, ["auto", "off", "on"])
        if mode == "off":
            return None
        from faceexpr_cli.errors import WeightsNotFoundError
        from faceexpr_cli.face.emotion import EmotionPredictor

        try:
            return EmotionPredictor("onnx")
        except WeightsNotFoundError:
            if mode == "on":
                raise
            log.info("emotion: the model's weights are not cached (fx download weights emotion-minixception)")
            return None

    def describe(self) -> dict[str, Any]:
        return {"face_backend": self.face_backend_name,
                "model": self.tokens.describe() if self.tokens else None,
                "predictor": self.models.predictor, "emotion": self.emotion is not None,
                "animate": self.models.animate, "swap": self.models.swap}

    def process(self, image: np.ndarray, t: float = 0.0) -> FrameResult:
        points = self.follower.update(image)
        box = self.follower.boxes[-1] if points is not None else None
        result = FrameResult(box=None if box is None else [round(float(v), 2) for v in box])
        if box is not None and self.tokens is not None:
            from faceexpr_cli.crop.geometry import crop_square, square_around

            crop = crop_square(image, square_around(np.asarray(box, np.float64), self.models.margin),
                               self.tokens.size)
            result.token = self.tokens.tokens(crop[None])[0]
        if self.predictor is not None:
            result.prediction_error = self.predictor.step(result.token)
        if box is not None and self.emotion is not None:
            emo = self.emotion.predict_frame(image, np.asarray(box)[None])
            result.emotion = emo.as_dicts()[0]
        if self.animator is not None:
            result.shown = self.animator.step(points)
        elif self.swapper is not None:
            result.shown = self.swapper.step(image, points, t)
        else:
            result.shown = _draw_box(image, box)
        return result


def _draw_box(image: np.ndarray, box: list[float] | np.ndarray | None) -> np.ndarray:
    if box is None:
        return image
    import cv2

    out = image.copy()
    x0, y0, x1, y1 = (int(round(float(v))) for v in box[:4])
    cv2.rectangle(out, (x0, y0), (x1, y1), (40, 220, 90), 2)
    return out
