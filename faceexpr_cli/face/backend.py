"""The face backend interface and its registry.

A backend is a class registered by name in ``BACKENDS`` (modules under ``faceexpr_cli.face.backends`` register
themselves when the registry is first looked up). Every backend answers the same three questions about an RGB
image - where are the faces, where are their 68 landmarks, who are they - and writes the answers into ``Face``
records, so the tracker and the pipelines never branch on the backend's name. Models load lazily, on the first
call that needs them, so building a backend to list its options costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from faceexpr_cli.errors import UsageError
from faceexpr_cli.face.types import Face
from faceexpr_cli.registry import Registry
from faceexpr_cli.safety import check_number

BACKENDS: Registry[type[FaceBackend]] = Registry("face backend", discover="faceexpr_cli.face.backends")


def check_option(backend: str, key: str, value: Any, *, integer: bool = False, minimum: float | None = None,
                 maximum: float | None = None, hint: str | None = None) -> Any:
    """A backend option (``--face-opt key=value``) checked once when the backend is built, so a bad value is one
    usage error before a batch starts, never an error (or an empty ``no_face``) row per video."""
    flag = f"--face-opt {key} (face backend '{backend}')"
    if value is None:
        return None
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise UsageError(f"{flag} must be a whole number, got {value!r}", hint)
    if isinstance(value, bool):
        raise UsageError(f"{flag} must be a number, got {value!r}", hint)
    return check_number(value, flag, minimum=minimum, maximum=maximum, hint=hint)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UsageError(f"face backends take H x W x 3 uint8 RGB images, got {image.shape} {image.dtype}")
    # dlib's descriptor and predictors reject strided views (a crop, a flipped or rotated frame)
    return np.ascontiguousarray(image)


class FaceBackend:
    """Base class. Subclasses implement ``_detect`` and whichever of ``_landmarks``/``_embed`` they support.

    ``max_side`` (optional) makes ``detect`` run on a copy whose long side is at most that many pixels and
    map the boxes back: detection cost falls with the square of the size while faces above ~80 px gain nothing.
    """

    name: ClassVar[str] = ""
    card: ClassVar[str] = ""  # the model card under models/ that states the licence
    embedding_dim: ClassVar[int | None] = None
    # cosine similarity of unit embeddings above which two faces may be the same person (track association)
    same_person_similarity: ClassVar[float] = 0.5
    has_landmarks: ClassVar[bool] = False

    def __init__(self, *, max_side: int | None = None, score_threshold: float | None = None, **opts: Any):
        if opts:
            raise UsageError(f"unknown option(s) for face backend '{self.name}': {', '.join(sorted(opts))}")
        self.max_side = check_option(self.name, "max_side", max_side, integer=True, minimum=16)
        self.score_threshold = check_option(self.name, "score_threshold", score_threshold)

    # -- the public interface -------------------------------------------------------------------------
    def detect(self, image_rgb: np.ndarray, *, keypoints: bool = True) -> list[Face]:
        """Faces with box, score and (when ``keypoints`` and the backend can) 5 key points, best first."""
        image = _check_image(image_rgb)
        scale = 1.0
        if self.max_side and max(image.shape[:2]) > self.max_side:
            import cv2

            scale = self.max_side / max(image.shape[:2])
            small = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
            faces = [f.scaled(image.shape[1] / small.shape[1], image.shape[0] / small.shape[0])
                     for f in self._detect(small, keypoints=keypoints)]
        else:
            faces = self._detect(image, keypoints=keypoints)
        if self.score_threshold is not None:
            faces = [f for f in faces if f.score >= self.score_threshold]
        return sorted(faces, key=lambda f: -f.score)

    def landmarks(self, image_rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """Fill ``landmarks68`` (and ``kps5``) of each face, in place; returns the same list."""
        if not faces:
            return faces
        return self._landmarks(_check_image(image_rgb), faces)

    def embed(self, image_rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """Fill ``embedding`` (L2-normalised) of each face, in place; returns the same list."""
        if not faces:
            return faces
        return self._embed(_check_image(image_rgb), faces)

    def analyze(self, image_rgb: np.ndarray, landmarks: bool = True, embed: bool = False) -> list[Face]:
        """Detect, then optionally landmarks and embeddings, in one call."""
        faces = self.detect(image_rgb, keypoints=not (landmarks and self.has_landmarks))
        if landmarks and self.has_landmarks:
            self.landmarks(image_rgb, faces)
        if embed:
            self.embed(image_rgb, faces)
        return faces

    def prepare(self) -> FaceBackend:
        """Load the models now, so a missing model fails before a batch starts rather than on every item."""
        return self

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "card": self.card, "landmarks68": self.has_landmarks,
                "embedding_dim": self.embedding_dim}

    # -- what subclasses provide ---------------------------------------------------------------------
    def _detect(self, image: np.ndarray, *, keypoints: bool) -> list[Face]:
        raise NotImplementedError

    def _landmarks(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        raise UsageError(f"face backend '{self.name}' has no 68-point landmarks", "use --face-backend dlib")

    def _embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        raise UsageError(f"face backend '{self.name}' has no identity embedding",
                         "use --face-backend dlib or insightface")


DEFAULT = "default"  # the name option defaults carry; resolved by ``default_backend`` before anything records it


@dataclass(frozen=True)
class DefaultChoice:
    name: str  # a registered backend: "auto" or "dlib"
    reason: str  # one line for fx doctor


def default_backend() -> DefaultChoice:
    """``auto`` when the MediaPipe files are in the weights cache (and match the card), else ``dlib``.

    Decided from the cache alone and silently: with an empty cache every command behaves as before, with no
    warning (only an explicit ``--face-backend auto`` warns that it falls back to dlib)."""
    from faceexpr_cli.face.backends.auto_backend import mediapipe_missing
    from faceexpr_cli.face.backends.mediapipe_backend import CARD

    why = mediapipe_missing()
    if why is None:
        from faceexpr_cli.paths import weights_dir

        return DefaultChoice("auto", f"MediaPipe weights cached in {weights_dir() / CARD}")
    return DefaultChoice("dlib", f"MediaPipe weights not cached: run `fx download weights {CARD}` for auto")


def resolve_backend_name(name: str | None) -> str:
    """The registry name a backend option means: ``default`` (or nothing) becomes ``default_backend().name``, so
    output folders record - and resumes compare - a real backend."""
    return default_backend().name if name in (None, "", DEFAULT) else name


def get_backend(name: str = DEFAULT, **opts: Any) -> FaceBackend:
    """A face backend by registry name, with its options (e.g. ``get_backend("dlib", detector="cnn")``);
    ``default`` is ``auto`` when the MediaPipe weights are cached, else ``dlib`` (see ``default_backend``)."""
    return BACKENDS.get(resolve_backend_name(name))(**opts)


def backend_names() -> list[str]:
    return BACKENDS.names()
