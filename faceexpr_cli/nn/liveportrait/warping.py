"""Warping module (W): the source's 3-D feature volume warped from source to driving key points, flattened to 2-D
and masked by the occlusion map."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from faceexpr_cli.nn.liveportrait.blocks import SameBlock2d
from faceexpr_cli.nn.liveportrait.dense_motion import DenseMotionNetwork


class WarpingNetwork(nn.Module):
    def __init__(self, num_kp: int = 21, block_expansion: int = 64, max_features: int = 512,
                 num_down_blocks: int = 2, reshape_channel: int = 32, estimate_occlusion_map: bool = True,
                 dense_motion_params: dict[str, Any] | None = None, flag_use_occlusion_map: bool = True,
                 upscale: int = 1):
        super().__init__()
        if dense_motion_params is None:
            raise ValueError("warping_module_params needs dense_motion_params")
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, feature_channel=reshape_channel,
                                                       estimate_occlusion_map=estimate_occlusion_map,
                                                       **dense_motion_params)
        width = block_expansion * 2 ** num_down_blocks
        self.third = SameBlock2d(max_features, width, lrelu=True)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)
        self.use_occlusion_map = flag_use_occlusion_map

    def forward(self, feature_3d: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor):
        """-> warped feature (B, C, H, W), occlusion map (B, 1, H, W), deformation (B, D, H, W, 3)."""
        deformation, occlusion = self.dense_motion_network(feature_3d, kp_driving, kp_source)
        out = F.grid_sample(feature_3d, deformation, align_corners=False)
        b, c, d, h, w = out.shape
        out = self.fourth(self.third(out.view(b, c * d, h, w)))
        if occlusion is not None and self.use_occlusion_map:
            out = out * occlusion
        if occlusion is None:
            occlusion = torch.ones_like(out[:, :1])
        return out, occlusion, deformation
