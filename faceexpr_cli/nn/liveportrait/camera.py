"""Camera and key point math of LivePortrait: head pose bins -> degrees, Euler angles -> rotation, the implicit
key points x = s (x_c R + exp) + t, and driving motion mapped onto a source.

Conventions are the release's: 66 bins of 3 degrees from -97.5 (expected value of the softmax), R = (R_z R_y R_x)^T
applied to row vectors, translation added to x and y only.
"""

from __future__ import annotations

import math

import torch

# expression key points LivePortrait's "lip" and "eyes" animation regions move
LIP_POINTS = (6, 12, 14, 17, 19, 20)
EYE_POINTS = (11, 13, 15, 16, 18)
REGIONS = ("all", "exp", "pose", "lip", "eyes")
FIELDS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """(B, bins) logits -> (B, 1) degrees: sum(softmax * index) * 3 - 97.5."""
    idx = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, dim=1) * idx).sum(dim=1, keepdim=True) * 3 - 97.5


def decode(raw, num_kp: int) -> dict[str, torch.Tensor]:
    """The motion extractor's raw outputs -> pitch/yaw/roll (B, 1) degrees, t (B, 3), exp and kp (B, K, 3),
    scale (B, 1)."""
    pitch, yaw, roll, t, exp, scale, kp = raw
    b = t.shape[0]
    return {"pitch": bins_to_degrees(pitch), "yaw": bins_to_degrees(yaw), "roll": bins_to_degrees(roll),
            "t": t, "exp": exp.reshape(b, num_kp, 3), "scale": scale, "kp": kp.reshape(b, num_kp, 3)}


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(B, 1) or (B,) degrees -> (B, 3, 3), to be applied to row vectors (x @ R)."""
    x, y, z = (a.reshape(-1, 1) * (math.pi / 180) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    b = x.shape[0]
    rot_x = torch.cat([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], 1).view(b, 3, 3)
    rot_y = torch.cat([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1).view(b, 3, 3)
    rot_z = torch.cat([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], 1).view(b, 3, 3)
    return (rot_z @ rot_y @ rot_x).transpose(1, 2)


def transform_keypoint(info: dict[str, torch.Tensor]) -> torch.Tensor:
    """x = scale * (kp @ R + exp) + (tx, ty, 0): the implicit key points in the image's space."""
    rot = rotation_matrix(info["pitch"], info["yaw"], info["roll"])
    return compose(info["kp"], rot, info["exp"], info["scale"], info["t"])


def compose(kp: torch.Tensor, rot: torch.Tensor, exp: torch.Tensor, scale: torch.Tensor,
            t: torch.Tensor) -> torch.Tensor:
    x = (kp @ rot + exp) * scale.reshape(-1, 1, 1)
    t2 = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)
    return x + t2.view(-1, 1, 3)


def drive(source: dict[str, torch.Tensor], driving: dict[str, torch.Tensor],
          reference: dict[str, torch.Tensor] | None, region: str = "all") -> torch.Tensor:
    """Driven key points x_d for the source: relative to ``reference`` (the driver's first frame) when given, else
    absolute. ``region`` limits what moves: all | exp | pose | lip | eyes (LivePortrait's animation regions)."""
    if region not in REGIONS:
        raise ValueError(f"unknown animation region '{region}' (use {', '.join(REGIONS)})")
    b = driving["t"].shape[0]

    def rep(v: torch.Tensor) -> torch.Tensor:
        return v.expand(b, *v.shape[1:])

    rel = reference is not None
    rot_s = rep(rotation_matrix(source["pitch"], source["yaw"], source["roll"]))
    rot_d = rotation_matrix(driving["pitch"], driving["yaw"], driving["roll"])
    if region in ("all", "pose"):
        if rel:
            rot_r = rotation_matrix(reference["pitch"], reference["yaw"], reference["roll"])
            rot = rot_d @ rot_r.transpose(1, 2) @ rot_s
        else:
            rot = rot_d
    else:
        rot = rot_s
    exp_s = rep(source["exp"])
    moved = exp_s + (driving["exp"] - reference["exp"]) if rel else rep(driving["exp"]).clone()
    if region in ("all", "exp"):
        exp = moved
    elif region in ("lip", "eyes"):
        idx = list(LIP_POINTS if region == "lip" else EYE_POINTS)
        exp = exp_s.clone()
        exp[:, idx] = moved[:, idx]
    else:
        exp = exp_s
    if region == "all":
        scale = rep(source["scale"]) * driving["scale"] / reference["scale"] if rel else driving["scale"]
        t = rep(source["t"]) + driving["t"] - reference["t"] if rel else driving["t"]
    else:
        scale, t = rep(source["scale"]), rep(source["t"])
    t = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)  # the driven z is never added
    return compose(rep(source["kp"]), rot, exp, scale, t)
