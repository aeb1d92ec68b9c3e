"""Head pose from the 468-point mesh: a weighted Procrustes (Umeyama) fit of MediaPipe's canonical face to it.

The canonical face is MediaPipe's own (``geometry_pipeline_metadata_landmarks.binarypb`` of its face-geometry
module: 468 vertices in centimetres, x to the image right on a
frontal face, y up, z out of the face, plus the 33 weighted landmarks its pipeline fits with). ``canonical_face.npz`` beside this file holds those
numbers, read once by ``read_geometry_metadata`` from the ``@mediapipe/face_mesh`` 0.4.1657299874 npm package
(``npm pack``; bytes 3737848-3757224 of ``face_mesh_solution_packed_assets.data``; Apache-2.0, Google). The mesh model's output is orthographic (x, y in pixels, z in the same units, y down, z into
the screen), so one similarity transform - scale, rotation, translation - maps the canonical face onto it.

Angles (degrees, the canonical face's axes; 0, 0, 0 is a face looking into the camera): ``yaw`` positive when the
face turns to the image right (its nose moves right, as ``Face.yaw`` counts), ``pitch`` positive when it looks
up, ``roll`` positive when it tilts clockwise on screen (the eye line falls to the image right).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

CANONICAL_FILE = Path(__file__).with_name("canonical_face.npz")
_FLIP = np.diag([1.0, -1.0, -1.0])  # mesh frame (y down, z into the screen) <-> canonical (y up, z out)
_FACE_CM = 17.7  # the canonical face's height, chin to forehead top: residuals are stated in face heights


@dataclass(frozen=True)
class HeadPose:
    rotation: np.ndarray  # (3, 3): canonical face -> mesh frame with y up, z towards the camera
    translation: np.ndarray  # (3,) image pixels (x, y down, z) of the canonical origin
    scale: float  # image pixels per canonical centimetre
    yaw: float
    pitch: float
    roll: float
    rms: float  # fit residual over the fitted points, in face-size units (canonical scale)

    def to_dict(self) -> dict[str, float | list]:
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2),
                "scale": round(self.scale, 4), "rms": round(self.rms, 4),
                "rotation": np.round(self.rotation, 5).tolist(), "translation": np.round(self.translation, 2).tolist()}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: bytes) -> list[tuple[int, int, object]]:
    """Protocol-buffer wire format as (field, wire type, value): enough to read one known message."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 5:
            value, i = struct.unpack_from("<f", buf, i)[0], i + 4
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def read_geometry_metadata(buf: bytes) -> dict[str, np.ndarray]:
    """MediaPipe's GeometryPipelineMetadata: canonical_mesh (1: vertex_buffer x, y, z, u, v per vertex = 3,
    index_buffer = 4) and procrustes_landmark_basis (2: landmark_id = 1, weight = 2)."""
    top = _fields(buf)
    mesh = next(v for f, w, v in top if f == 1 and w == 2)
    verts = [v for f, w, v in _fields(mesh) if f == 3 and w == 5]
    tris = [v for f, w, v in _fields(mesh) if f == 4 and w == 0]
    ids, weights = [], []
    for f, w, v in top:
        if f == 2 and w == 2:
            ref = dict((ff, vv) for ff, _, vv in _fields(v))
            ids.append(ref.get(1, 0))
            weights.append(ref.get(2, 0.0))
    vt = np.asarray(verts, dtype=np.float32).reshape(-1, 5)
    return {"vertices": vt[:, :3], "uv": vt[:, 3:], "triangles": np.asarray(tris, dtype=np.int32).reshape(-1, 3),
            "basis_ids": np.asarray(ids, dtype=np.int32), "basis_weights": np.asarray(weights, dtype=np.float32)}


@cache
def canonical_face() -> dict[str, np.ndarray]:
    with np.load(CANONICAL_FILE) as data:
        return {k: data[k] for k in data.files}


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
            ) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R (det +1) and translation t minimising sum w |dst - (s R src + t)|^2 (Umeyama 1991)."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    rot = u @ np.diag(d) @ vt
    var = float(w @ (xs ** 2).sum(1))
    scale = float((sig * d).sum() / var)
    return scale, rot, mu_d - scale * rot @ mu_s


def euler_angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from R = Rz Ry Rx (y up), signs as the module docstring says."""
    yaw = np.degrees(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    return float(yaw), float(-pitch), float(-roll)


def head_pose(mesh: np.ndarray, *, all_points: bool = False) -> HeadPose:
    """The canonical face fitted to a mesh (468, 3) in image pixels; on the 33 weighted landmarks by default."""
    canon = canonical_face()
    target = np.asarray(mesh, dtype=np.float64)[:, :3] @ _FLIP
    if all_points:
        ids, w = np.arange(len(canon["vertices"])), None
    else:
        ids, w = canon["basis_ids"], canon["basis_weights"]
    src = canon["vertices"][ids].astype(np.float64)
    scale, rot, t = umeyama(src, target[ids], w)
    fitted = scale * src @ rot.T + t
    rms = float(np.sqrt(((fitted - target[ids]) ** 2).sum(1).mean())) / scale / _FACE_CM
    yaw, pitch, roll = euler_angles(rot)
    return HeadPose(rotation=rot, translation=_FLIP @ t, scale=scale, yaw=yaw, pitch=pitch, roll=roll, rms=rms)

