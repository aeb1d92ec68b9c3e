"""Which per-face features `fx extract-feats` writes, what each needs, and the per-face maths.

``tokens`` (the expression model, needs ``--model``), ``mesh`` (MediaPipe's 468 points with the head pose taken
out, plus ``head_pose`` and ``apertures``; needs the mediapipe backend), ``emotion`` (the 7 FER2013
probabilities of ``face.emotion.EmotionPredictor``) and ``landmarks`` (the active backend's 68 points, in crop
square units). Weights are checked here, before any video is touched, so a missing file is one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceexpr_cli.errors import UsageError

FEATURES = ("tokens", "mesh", "emotion", "landmarks")
EMOTION_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
APERTURES = ("right_eye", "left_eye", "mouth")
MESH_BACKENDS = ("mediapipe", "auto")  # the backends whose faces carry extra["mesh468"] and extra["head_pose"]
_FLIP = np.diag([1.0, -1.0, -1.0])  # mesh frame (y down, z into the screen) <-> canonical (y up, z out)


def parse_features(text: str | list[str] | tuple[str, ...] | None, has_model: bool) -> tuple[str, ...]:
    """The features in canonical order; default ``tokens`` with a model, ``mesh,emotion`` without."""
    if text is None or text == "" or text == []:
        return ("tokens",) if has_model else ("mesh", "emotion")
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    for n in names:
        if n not in FEATURES:
            raise UsageError(f"unknown feature '{n}'", f"use a comma-separated subset of {','.join(FEATURES)}")
    if not names:
        raise UsageError("--features is empty", f"use a comma-separated subset of {','.join(FEATURES)}")
    if "tokens" in names and not has_model:
        raise UsageError("--features tokens needs --model", "pass a `fx train joint` run or its export with "
                                                            "--model, or leave tokens out")
    return tuple(f for f in FEATURES if f in names)


def resolve_backend(features: tuple[str, ...], face_backend: str | None) -> str:
    """``mesh`` picks mediapipe when the user left the backend alone and refuses any other explicit one; without
    mesh the face layer's default (``auto`` when the MediaPipe weights are cached, else ``dlib``)."""
    from faceexpr_cli.face.backend import DEFAULT, resolve_backend_name

    if face_backend in ("", DEFAULT):
        face_backend = None
    if "mesh" in features:
        if face_backend is None:
            return "mediapipe"
        if face_backend not in MESH_BACKENDS:
            raise UsageError(f"--features mesh needs --face-backend mediapipe or auto, not '{face_backend}'",
                             "leave --face-backend out (mesh picks mediapipe), or drop mesh")
        return face_backend
    return resolve_backend_name(face_backend)


def check_weights(features: tuple[str, ...], face_backend: str) -> None:
    """A missing weight file is one line naming its download command, before any work."""
    from faceexpr_cli.weights import find_weights

    if "mesh" in features or face_backend == "mediapipe":
        from faceexpr_cli.config.cards import load_card

        for ws in load_card("face-mediapipe").weights:
            find_weights("face-mediapipe", source=ws.name)
    if "emotion" in features:
        find_weights("emotion-minixception")


def normalise_mesh(mesh468: np.ndarray, pose: Any) -> np.ndarray:
    """The mesh in the canonical face's frame (centimetres, y up, z out of the face): the similarity transform
    of ``pose`` (``face.mediapipe.pose.HeadPose``: mesh ~ s R canon + t) undone, so rows compare expressions,
    not head rotation, position or size."""
    target = np.asarray(mesh468, np.float64)[:, :3] @ _FLIP
    t = _FLIP @ np.asarray(pose.translation, np.float64)
    return ((target - t) @ np.asarray(pose.rotation, np.float64) / float(pose.scale)).astype(np.float32)


def head_pose_row(pose: Any, crop: np.ndarray) -> np.ndarray:
    """pitch, yaw, roll (degrees), the canonical origin's x, y and the scale (pixels per canonical cm), the last
    three in crop-square units (over the crop's side, x and y from its corner) like the landmarks."""
    x0, y0, x1, _ = (float(v) for v in crop)
    side = x1 - x0
    tx, ty = float(pose.translation[0]), float(pose.translation[1])
    return np.array([pose.pitch, pose.yaw, pose.roll, (tx - x0) / side, (ty - y0) / side, pose.scale / side],
                    np.float32)


def landmarks_in_crop(points68: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """68 points from source pixels to the crop square's [0, 1] units."""
    x0, y0, x1, _ = (float(v) for v in crop)
    return ((np.asarray(points68, np.float64)[:, :2] - [x0, y0]) / (x1 - x0)).astype(np.float32)


def face_rows(face: Any, crop: np.ndarray, features: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The per-face feature values of one face record that the backend's ``landmarks`` filled."""
    out: dict[str, np.ndarray] = {}
    if "mesh" in features:
        pose = face.extra["head_pose"]
        out["mesh"] = normalise_mesh(face.extra["mesh468"], pose)
        out["head_pose"] = head_pose_row(pose, crop)
        ap = face.extra["apertures"]
        out["apertures"] = np.array([ap[k] for k in APERTURES], np.float32)
    if "landmarks" in features:
        out["landmarks"] = landmarks_in_crop(face.landmarks68, crop)
    return out


def empty_rows(features: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Each array's per-row shape (for a trajectory's empty slots)."""
    shapes: dict[str, tuple[int, ...]] = {}
    if "mesh" in features:
        shapes.update(mesh=(468, 3), head_pose=(6,), apertures=(3,))
    if "emotion" in features:
        shapes["emotion"] = (len(EMOTION_LABELS),)
    if "landmarks" in features:
        shapes["landmarks"] = (68, 2)
    return shapes


def load_emotion(device: str = "cpu", batch_size: int = 32):
    """The emotion model, torch on the CPU by default (3 ms a face; no one-time ONNX export)."""
    from faceexpr_cli.face.emotion import EmotionPredictor

    emo = EmotionPredictor("torch", device=device if device.startswith("cuda") else "cpu", batch_size=batch_size)
    if tuple(emo.labels) != EMOTION_LABELS:
        raise UsageError(f"the emotion card's labels {emo.labels} are not {list(EMOTION_LABELS)}")
    return emo
