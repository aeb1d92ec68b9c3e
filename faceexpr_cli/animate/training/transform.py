"""Random smooth warps for FOMM's equivariance losses: a random affine plus a random TPS-like bump field.

Key points found on a warped frame, mapped back through the warp, must land on the key points of the original
frame (value equivariance), and their Jacobians must compose with the warp's Jacobian to the original Jacobians
(Jacobian equivariance). The field follows the original's definition (L1 distances to a grid of control points,
kernel ``d^2 log d``, one scalar bump added to both coordinates); its Jacobian is computed in closed form here
rather than by autograd, which keeps the loss simple under DDP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faceexpr_cli.nn.fomm.blocks import coordinate_grid

_EPS = 1e-6


class RandomTPS:
    def __init__(self, batch: int, sigma_affine: float, sigma_tps: float, points_tps: int,
                 device: torch.device | str = "cpu", generator: torch.Generator | None = None):
        noise = torch.randn(batch, 2, 3, generator=generator) * sigma_affine
        self.theta = (noise + torch.eye(2, 3).view(1, 2, 3)).to(device)
        grid = coordinate_grid(points_tps, points_tps, torch.zeros(1))
        self.control = grid.reshape(1, 1, -1, 2).to(device)  # (1, 1, P, 2)
        self.params = (torch.randn(batch, 1, points_tps**2, generator=generator) * sigma_tps).to(device)
        self.batch = batch

    def _bumps(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        diff = coords.unsqueeze(2) - self.control  # (B, N, P, 2)
        dist = diff.abs().sum(-1)
        return diff, dist

    def warp_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) in [-1, 1] -> warped (B, N, 2)."""
        a, t = self.theta[:, :, :2], self.theta[:, :, 2]
        out = torch.matmul(coords, a.transpose(1, 2)) + t.unsqueeze(1)
        _, dist = self._bumps(coords)
        bump = (dist**2 * torch.log(dist + _EPS) * self.params).sum(-1, keepdim=True)  # (B, N, 1)
        return out + bump

    def jacobian(self, coords: torch.Tensor) -> torch.Tensor:
        """d warp / d coords at (B, N, 2): (B, N, 2, 2)."""
        a = self.theta[:, :, :2].unsqueeze(1)  # (B, 1, 2, 2)
        diff, dist = self._bumps(coords)
        dphi = 2 * dist * torch.log(dist + _EPS) + dist**2 / (dist + _EPS)  # (B, N, P)
        grad = (dphi.unsqueeze(-1) * torch.sign(diff) * self.params.unsqueeze(-1)).sum(2)  # (B, N, 2)
        return a + grad.unsqueeze(2).expand(-1, -1, 2, -1)

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        b, _, h, w = frame.shape
        grid = coordinate_grid(h, w, frame).reshape(1, h * w, 2).expand(b, -1, -1)
        warped = self.warp_coordinates(grid).reshape(b, h, w, 2)
        return F.grid_sample(frame, warped, mode="bilinear", padding_mode="reflection", align_corners=False)
