"""auto: the best offline combination - MediaPipe detection and 468-point mesh, dlib's 128-d identity embedding.

dlib's recognition network aligns the face from 68 points; here they are the mesh's (``mesh.MESH_TO_68``), so the
embedding is dlib's own and compares with dlib's (same-person rule unchanged). When the MediaPipe files are not in
the weights cache, ``auto`` is plain dlib and says so once per process, naming ``fx download weights
face-mediapipe``; nothing is fetched at run time.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.errors import WeightsNotFoundError
from faceexpr_cli.face.backend import BACKENDS, FaceBackend
from faceexpr_cli.face.backends.dlib_backend import DlibBackend
from faceexpr_cli.face.backends.mediapipe_backend import CARD, DETECTORS, MediaPipeBackend
from faceexpr_cli.face.types import Face

_warned: set[str] = set()


def mediapipe_missing(detector: str = "full") -> str | None:
    """Why the MediaPipe models cannot be used (None: they are in the cache and match the card)."""
    from faceexpr_cli.weights import find_weights

    try:
        for source in (DETECTORS[detector][0], "face_mesh"):
            find_weights(CARD, source=source)
    except WeightsNotFoundError as exc:
        return exc.message
    return None


@BACKENDS.register("auto")
class AutoBackend(FaceBackend):
    """Options: those of ``mediapipe`` (``detector``, ``runtime``, ``min_score``, ``nms_iou``, ``refine``) and
    dlib's ``jitters`` for the embedding; ``max_side`` and ``score_threshold`` apply to whichever detects."""

    name = "auto"
    card = "face-auto"
    embedding_dim: ClassVar[int | None] = DlibBackend.embedding_dim
    same_person_similarity: ClassVar[float] = DlibBackend.same_person_similarity
    has_landmarks = True

    def __init__(self, *, jitters: int = 1, max_side: int | None = None, score_threshold: float | None = None,
                 **mediapipe_opts: Any):
        super().__init__(max_side=max_side, score_threshold=score_threshold)
        common = {"max_side": max_side, "score_threshold": score_threshold}
        self.mediapipe = MediaPipeBackend(**mediapipe_opts, **common)
        self.dlib = DlibBackend(jitters=jitters, **common)
        self._primary: FaceBackend | None = None

    @property
    def primary(self) -> FaceBackend:
        """mediapipe when its weights are here, else dlib (decided once, on first use)."""
        if self._primary is None:
            why = mediapipe_missing(self.mediapipe.detector)
            self._primary = self.mediapipe if why is None else self.dlib
            if why is not None and "auto" not in _warned:
                _warned.add("auto")
                log.warning("face backend auto: %s; using dlib (run `fx download weights face-mediapipe` for "
                            "MediaPipe detection and landmarks)", why)
        return self._primary

    def prepare(self) -> AutoBackend:
        self.primary.prepare()
        from faceexpr_cli.face.backends.dlib_backend import _model

        _model("recognition")
        return self

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "detection": self.primary.name, "embedding": "dlib"}

    def detect(self, image_rgb: np.ndarray, *, keypoints: bool = True) -> list[Face]:
        return self.primary.detect(image_rgb, keypoints=keypoints)

    def landmarks(self, image_rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        return self.primary.landmarks(image_rgb, faces)

    def embed(self, image_rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        missing = [f for f in faces if f.landmarks68 is None]
        if missing:
            self.landmarks(image_rgb, missing)
        return self.dlib.embed(image_rgb, faces)
