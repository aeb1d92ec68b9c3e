"""Dense motion in 3-D (part of W): K+1 sparse motions (identity plus one per key point) blended by a softmax mask
that a 3-D hourglass predicts, and an occlusion map from the same trunk."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceexpr_cli.nn.liveportrait.blocks import Hourglass3d, coordinate_grid_3d, kp2gaussian_3d


class DenseMotionNetwork(nn.Module):
    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, num_kp: int,
                 feature_channel: int, reshape_depth: int, compress: int, estimate_occlusion_map: bool = True):
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass3d(block_expansion, (num_kp + 1) * (compress + 1), num_blocks, max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.estimate_occlusion_map = estimate_occlusion_map
        if estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, kernel_size=7, padding=3)

    def sparse_motions(self, feature: torch.Tensor, kp_driving: torch.Tensor,
                       kp_source: torch.Tensor) -> torch.Tensor:
        """(B, K+1, D, H, W, 3): where each driving-space voxel samples the source, per key point."""
        b, _, d, h, w = feature.shape
        identity = coordinate_grid_3d(d, h, w, kp_source).view(1, 1, d, h, w, 3)
        k = self.num_kp
        to_source = identity - kp_driving.view(b, k, 1, 1, 1, 3) + kp_source.view(b, k, 1, 1, 1, 3)
        return torch.cat([identity.expand(b, 1, d, h, w, 3), to_source], dim=1)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor):
        """-> deformation (B, D, H, W, 3) and occlusion map (B, 1, H, W) (or None)."""
        b, _, d, h, w = feature.shape
        k1 = self.num_kp + 1
        feature = F.relu(self.norm(self.compress(feature)))
        motions = self.sparse_motions(feature, kp_driving, kp_source)
        repeated = feature.unsqueeze(1).expand(b, k1, *feature.shape[1:]).reshape(b * k1, -1, d, h, w)
        deformed = F.grid_sample(repeated, motions.reshape(b * k1, d, h, w, 3), align_corners=False)
        deformed = deformed.view(b, k1, -1, d, h, w)
        heat = kp2gaussian_3d(kp_driving, d, h, w) - kp2gaussian_3d(kp_source, d, h, w)
        heat = torch.cat([torch.zeros_like(heat[:, :1]), heat], dim=1).unsqueeze(2)
        trunk = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w))
        mask = F.softmax(self.mask(trunk), dim=1).unsqueeze(2)  # (B, K+1, 1, D, H, W)
        deformation = (motions.permute(0, 1, 5, 2, 3, 4) * mask).sum(dim=1).permute(0, 2, 3, 4, 1)
        occlusion = None
        if self.estimate_occlusion_map:
            occlusion = torch.sigmoid(self.occlusion(trunk.reshape(b, -1, h, w)))
        return deformation, occlusion
