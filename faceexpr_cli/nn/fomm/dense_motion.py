"""FOMM dense motion: K local affine motions plus the background, blended by predicted soft masks.

Around each key point the motion from driving to source is ``kp_src + J_src J_drv^-1 (z - kp_drv)``; an hourglass
looks at the source warped by every one of them (and at Gaussian difference heatmaps) and predicts which motion
holds where, and which source pixels are occluded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceexpr_cli.nn.fomm.blocks import (
    AntiAliasInterpolation2d,
    Hourglass,
    coordinate_grid,
    inverse2x2,
    kp2gaussian,
)


class DenseMotionNetwork(nn.Module):
    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, num_kp: int, num_channels: int,
                 estimate_occlusion_map: bool = False, scale_factor: float = 1, kp_variance: float = 0.01):
        super().__init__()
        self.hourglass = Hourglass(block_expansion, in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        if estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
        else:
            self.occlusion = None
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def heatmap_representation(self, h: int, w: int, kp_driving: torch.Tensor, kp_source: torch.Tensor):
        """(B, K+1, 1, h, w): driving minus source Gaussians, with a zero map for the background first."""
        heat = kp2gaussian(kp_driving, h, w, self.kp_variance) - kp2gaussian(kp_source, h, w, self.kp_variance)
        zeros = torch.zeros_like(heat[:, :1])
        return torch.cat([zeros, heat], dim=1).unsqueeze(2)

    def sparse_motions(self, h: int, w: int, kp_driving, jac_driving, kp_source, jac_source) -> torch.Tensor:
        """(B, K+1, h, w, 2) sampling grids: identity for the background, one local affine per key point."""
        b = kp_driving.shape[0]
        identity = coordinate_grid(h, w, kp_driving).view(1, 1, h, w, 2)
        local = identity - kp_driving.view(b, self.num_kp, 1, 1, 2)
        jac = torch.matmul(jac_source, inverse2x2(jac_driving))
        local = torch.matmul(jac.unsqueeze(2).unsqueeze(2), local.unsqueeze(-1)).squeeze(-1)
        to_source = local + kp_source.view(b, self.num_kp, 1, 1, 2)
        return torch.cat([identity.expand(b, 1, h, w, 2), to_source], dim=1)

    def deformed_sources(self, source: torch.Tensor, motions: torch.Tensor) -> torch.Tensor:
        """The source warped by each sparse motion: (B, K+1, C, h, w)."""
        b, c, h, w = source.shape
        n = self.num_kp + 1
        repeated = source.unsqueeze(1).expand(b, n, c, h, w).reshape(b * n, c, h, w)
        warped = F.grid_sample(repeated, motions.reshape(b * n, h, w, 2), mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        return warped.reshape(b, n, c, h, w)

    def forward(self, source: torch.Tensor, kp_driving: torch.Tensor, jac_driving: torch.Tensor,
                kp_source: torch.Tensor, jac_source: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.scale_factor != 1:
            source = self.down(source)
        b, _, h, w = source.shape
        heatmap = self.heatmap_representation(h, w, kp_driving, kp_source)
        motions = self.sparse_motions(h, w, kp_driving, jac_driving, kp_source, jac_source)
        deformed = self.deformed_sources(source, motions)
        features = self.hourglass(torch.cat([heatmap, deformed], dim=2).reshape(b, -1, h, w))
        mask = F.softmax(self.mask(features), dim=1)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)
        out = {"sparse_deformed": deformed, "mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features))
        return out
