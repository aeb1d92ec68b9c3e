"""Thin-plate-spline warps in torch: fitting (outside exported graphs) and the warp itself (exportable).

A TPS maps output coordinates to source coordinates, ``f(z) = A z + b + sum_i w_i U(|z - c_i|)`` with
``U(r) = r^2 log r^2``, so it interpolates control points exactly and bends as little as possible between them.
``fit_tps`` solves the (N+3)-square system with ``torch.linalg.solve`` (no ONNX op; run it beside the graph);
``TPSWarp`` evaluates the field on a coarse grid, upsamples it and samples the image with 4-D ``grid_sample``.
Coordinates are normalised to [-1, 1] with (x, y) order, the ``grid_sample`` convention (align_corners=False).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def tps_kernel(d2: torch.Tensor) -> torch.Tensor:
    """U for squared distances: r^2 log r^2, with U(0) = 0."""
    return d2 * torch.log(d2 + 1e-9)


def fit_tps(control: torch.Tensor, values: torch.Tensor, regularization: float = 0.0):
    """Coefficients of the TPS taking ``control`` (B, N, 2) to ``values`` (B, N, 2).

    Returns ``weights`` (B, N, 2) and ``affine`` (B, 3, 2) (rows: constant, x, y). ``regularization`` > 0 trades
    exact interpolation for smoothness (it is added to the kernel's diagonal).
    """
    b, n, _ = control.shape
    dtype = torch.float64  # the system is ill-conditioned in float32 when points crowd together
    c = control.to(dtype)
    k = tps_kernel(((c.unsqueeze(2) - c.unsqueeze(1)) ** 2).sum(-1))
    if regularization:
        k = k + regularization * torch.eye(n, dtype=dtype, device=c.device)
    p = torch.cat([torch.ones(b, n, 1, dtype=dtype, device=c.device), c], dim=2)
    top = torch.cat([k, p], dim=2)
    bottom = torch.cat([p.transpose(1, 2), torch.zeros(b, 3, 3, dtype=dtype, device=c.device)], dim=2)
    system = torch.cat([top, bottom], dim=1)
    rhs = torch.cat([values.to(dtype), torch.zeros(b, 3, 2, dtype=dtype, device=c.device)], dim=1)
    coef = torch.linalg.solve(system, rhs).to(control.dtype)
    return coef[:, :n], coef[:, n:]


def normalized_grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(h, w, 2) pixel-centre coordinates in [-1, 1] (align_corners=False convention), (x, y) order."""
    x = (torch.arange(w, dtype=like.dtype, device=like.device) * 2 + 1) / w - 1
    y = (torch.arange(h, dtype=like.dtype, device=like.device) * 2 + 1) / h - 1
    return torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w)], dim=-1)


def tps_transform(points: torch.Tensor, control: torch.Tensor, weights: torch.Tensor,
                  affine: torch.Tensor) -> torch.Tensor:
    """Evaluate the TPS at (B, M, 2) points."""
    # |z - c|^2 = |z|^2 + |c|^2 - 2 z.c: one matmul instead of a (B, M, N, 2) difference tensor.
    d2 = (points**2).sum(-1, keepdim=True) + (control**2).sum(-1).unsqueeze(1) - 2 * torch.matmul(
        points, control.transpose(1, 2))
    d2 = torch.clamp(d2, min=0.0)
    return affine[:, :1] + torch.matmul(points, affine[:, 1:]) + torch.matmul(tps_kernel(d2), weights)


class TPSWarp(nn.Module):
    """Warp images by a fitted TPS, blended with the identity outside ``region`` so the background stays still.

    The spline is evaluated on a ``grid_size`` x ``grid_size`` grid and upsampled bilinearly to the image: the
    field is smooth, and the cost then stays the same at every image size.
    """

    def __init__(self, num_points: int = 104, grid_size: int = 96):
        super().__init__()
        self.num_points = num_points
        self.grid_size = grid_size

    def forward(self, image: torch.Tensor, control: torch.Tensor, weights: torch.Tensor, affine: torch.Tensor,
                region: torch.Tensor) -> torch.Tensor:
        """image (B, C, H, W); control, weights (B, N, 2); affine (B, 3, 2); region (B, 1, H, W) in [0, 1]."""
        b, _, h, w = image.shape
        gh = gw = self.grid_size
        coarse = normalized_grid(gh, gw, image).reshape(1, gh * gw, 2).expand(b, gh * gw, 2)
        moved = tps_transform(coarse, control, weights, affine) - coarse
        flow = moved.reshape(b, gh, gw, 2).permute(0, 3, 1, 2)
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False) * region
        grid = normalized_grid(h, w, image).unsqueeze(0) + flow.permute(0, 2, 3, 1)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
