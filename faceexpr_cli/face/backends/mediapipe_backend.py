"""mediapipe: BlazeFace detection (6 key points) and the 468-point 3D face mesh, MediaPipe's models without MediaPipe.

The four ``.tflite`` files of card ``face-mediapipe`` (``fx download weights face-mediapipe``) run in ONNX Runtime
by default (``runtime=onnx``: fx's torch interpreter's graph, exported once per file; ``runtime=torch`` runs that
interpreter eagerly, ~2.5x slower; ``runtime=litert`` uses Google's LiteRT, the reference, when it is
installed). Everything around the models - anchors, decoding, weighted NMS, the rotated mesh crop, the 68-point
map, apertures and head pose - lives in ``faceexpr_cli.face.mediapipe``. No identity embedding: the ``auto``
backend adds dlib's. Licence: Apache-2.0 (Google), so unlike dlib's 68-point model, commercial use is allowed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from faceexpr_cli.errors import UsageError
from faceexpr_cli.face.backend import BACKENDS, FaceBackend, check_option
from faceexpr_cli.face.mediapipe import anchors as anchor_mod
from faceexpr_cli.face.mediapipe import boxes as framing
from faceexpr_cli.face.mediapipe import decode, mesh
from faceexpr_cli.face.mediapipe.pose import head_pose
from faceexpr_cli.face.mediapipe.runners import RUNNERS, Runner
from faceexpr_cli.face.types import Face

CARD = "face-mediapipe"
DETECTORS = {"full": ("detector_full", anchor_mod.FULL_RANGE), "short": ("detector_short", anchor_mod.SHORT_RANGE)}
# The detector's mouth centre +- this fraction of the eye vector stands in for the mouth corners until the mesh
# runs (the ArcFace template's mouth width over its eye distance, halved), so faces straight from the detector
# carry 5 key points that follow them through scaling and the tracker's windows.
MOUTH_HALF_WIDTH = 0.415


@cache
def _load(path: Path, runtime: str) -> Runner:
    """Each model file is loaded once per process and runtime, shared by every backend object."""
    return RUNNERS[runtime](path)


@cache
def _anchors(detector: str) -> np.ndarray:
    return anchor_mod.generate_anchors(DETECTORS[detector][1])


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """The image scaled into a size x size square, centred, black bars; returns (square, scale, pad x, pad y)."""
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp)
    square = np.zeros((size, size, 3), dtype=np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    square[py:py + nh, px:px + nw] = small
    return square, scale, float(px), float(py)


def kps5_from_detector(kps6: np.ndarray) -> np.ndarray:
    """Eyes and nose as detected; mouth corners estimated on the eye line's direction from the mouth centre."""
    k = np.asarray(kps6, dtype=np.float32)
    half = (k[decode.KP_LEFT_EYE] - k[decode.KP_RIGHT_EYE]) * MOUTH_HALF_WIDTH
    mouth = k[decode.KP_MOUTH]
    return np.stack([k[decode.KP_RIGHT_EYE], k[decode.KP_LEFT_EYE], k[decode.KP_NOSE], mouth - half, mouth + half])


@BACKENDS.register("mediapipe")
class MediaPipeBackend(FaceBackend):
    """``detector``: ``full`` (192 px, faces near and far; default) or ``short`` (128 px, faces within ~2 m);
    ``min_score`` the detector's own threshold (0.5); ``refine`` extra mesh passes on a square made from the
    previous mesh (0: on upright faces a second pass moves the 68 points by under 0.2% of the face size);
    ``runtime``: ``onnx`` (default), ``torch`` or ``litert``."""

    name = "mediapipe"
    card = CARD
    has_landmarks = True
    embedding_dim: ClassVar[int | None] = None

    def __init__(self, *, detector: str = "full", runtime: str = "onnx", min_score: float = 0.5,
                 nms_iou: float = 0.3, refine: int = 0, **opts: Any):
        super().__init__(**opts)
        if detector not in DETECTORS:
            raise UsageError(f"unknown mediapipe detector '{detector}'", "use full or short")
        if runtime not in RUNNERS:
            raise UsageError(f"unknown mediapipe runtime '{runtime}'", f"use {' or '.join(RUNNERS)}")
        self.detector, self.runtime = detector, runtime
        self.min_score = check_option(self.name, "min_score", min_score, minimum=0.0, maximum=1.0)
        self.nms_iou = check_option(self.name, "nms_iou", nms_iou, minimum=0.0, maximum=1.0)
        self.refine = check_option(self.name, "refine", refine, integer=True, minimum=0, maximum=3)
        self._runners: dict[str, Runner] = {}

    def _runner(self, source: str) -> Runner:
        """The runner of one of the card's files; the cache is looked up once per backend object."""
        if source not in self._runners:
            from faceexpr_cli.weights import find_weights

            self._runners[source] = _load(find_weights(CARD, source=source), self.runtime)
        return self._runners[source]

    def prepare(self) -> MediaPipeBackend:
        self._runner(DETECTORS[self.detector][0])
        self._runner("face_mesh")
        return self

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "detector": self.detector, "runtime": self.runtime}

    def detect(self, image_rgb: np.ndarray, *, keypoints: bool = True) -> list[Face]:
        # the mesh always runs on the full image (never on max_side's thumbnail): its points then need no scaling
        faces = super().detect(image_rgb, keypoints=False)
        return self.landmarks(image_rgb, faces) if keypoints else faces

    def _detect(self, image: np.ndarray, *, keypoints: bool) -> list[Face]:
        source, opts = DETECTORS[self.detector]
        size = opts.input_size
        square, scale, px, py = letterbox(image, size)
        raw, logits = self._runner(source).run(square[None].astype(np.float32) / 127.5 - 1.0)[:2]
        anchors = _anchors(self.detector)
        keep = decode.above(logits[0], self.min_score)  # decode the few candidates, not all 896 / 2304 anchors
        boxes, scores, kps = decode.decode(raw[0].reshape(len(anchors), -1)[keep], logits[0].reshape(-1)[keep],
                                           anchors[keep], size)
        h, w = image.shape[:2]
        faces = []
        for d in decode.weighted_nms(boxes, scores, kps, min_score=self.min_score, iou_threshold=self.nms_iou):
            box = framing.box_from_detector((d.box * size - [px, py, px, py]) / scale)
            box = np.clip(box, 0, [w, h, w, h])
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue
            kps6 = (d.keypoints * size - [px, py]) / scale
            faces.append(Face(box, d.score, kps5=kps5_from_detector(kps6), extra={"kps5_source": "detector"}))
        return faces

    def _landmarks(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        rois = [mesh.roi_from_detection(framing.detector_box(f.bbox),
                                        *(f.kps5[:2] if f.kps5 is not None else ((0, 0), (1, 0)))) for f in faces]
        model = self._runner("face_mesh")
        for _ in range(1 + self.refine):
            crops = np.stack([mesh.crop(image, r) for r in rois]).astype(np.float32) / 255.0
            points, presence = model.run(crops)[:2]
            meshes = [mesh.mesh_to_image(p.reshape(-1, 3), r) for p, r in zip(points, rois, strict=True)]
            rois = [mesh.roi_from_mesh(m) for m in meshes]
        for face, m, logit in zip(faces, meshes, presence.reshape(len(faces), -1)[:, 0], strict=True):
            face.landmarks68 = mesh.to_68(m)
            face.kps5 = None
            face.__post_init__()  # kps5 from the 68 points, as every backend derives them
            pose = head_pose(m)
            h, w = image.shape[:2]
            face.bbox = np.clip(framing.box_from_pose(pose), 0, [w, h, w, h])
            face.extra.update({
                "kps5_source": "mesh",
                "mesh468": m,
                "mesh_score": float(1.0 / (1.0 + np.exp(-np.clip(logit, -100, 100)))),
                "apertures": mesh.apertures(m),
                "pose": np.array([pose.pitch, pose.yaw, pose.roll], dtype=np.float32),  # insightface's order
                "head_pose": pose,
            })
        return faces
