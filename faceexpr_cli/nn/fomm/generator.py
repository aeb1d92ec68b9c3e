"""FOMM occlusion-aware generator: encode the source, warp its features by the dense motion, mask occlusions, decode.

``forward`` takes plain tensors and returns only the frame, which is what inference and ONNX export need;
``forward_all`` also returns the intermediate maps (masks, per-keypoint warps, occlusion, deformation) for training
visualisation and parity checks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from faceexpr_cli.nn.fomm.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from faceexpr_cli.nn.fomm.dense_motion import DenseMotionNetwork


def warp(inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """Sample ``inp`` at the (B, h, w, 2) deformation, resizing the deformation bilinearly when sizes differ."""
    h, w = inp.shape[2], inp.shape[3]
    if deformation.shape[1] != h or deformation.shape[2] != w:
        grid = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False)
        deformation = grid.permute(0, 2, 3, 1)
    return F.grid_sample(inp, deformation, mode="bilinear", padding_mode="zeros", align_corners=False)


class OcclusionAwareGenerator(nn.Module):
    def __init__(self, num_channels: int, num_kp: int, block_expansion: int, max_features: int,
                 num_down_blocks: int, num_bottleneck_blocks: int, estimate_occlusion_map: bool = False,
                 dense_motion_params: dict[str, Any] | None = None, estimate_jacobian: bool = False):
        super().__init__()
        if dense_motion_params is not None:
            self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                                                           estimate_occlusion_map=estimate_occlusion_map,
                                                           **dense_motion_params)
        else:
            self.dense_motion_network = None
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))

        def width(level: int) -> int:
            return min(max_features, block_expansion * (2**level))

        # Registration order (down, up, bottleneck) is the original's: it fixes the state_dict order and the
        # parameter order that saved Adam states index.
        self.down_blocks = nn.ModuleList(DownBlock2d(width(i), width(i + 1)) for i in range(num_down_blocks))
        self.up_blocks = nn.ModuleList(
            UpBlock2d(width(num_down_blocks - i), width(num_down_blocks - i - 1)) for i in range(num_down_blocks)
        )
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(width(num_down_blocks), kernel_size=(3, 3), padding=(1, 1)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels

    def forward_all(self, source: torch.Tensor, kp_driving: torch.Tensor, jacobian_driving: torch.Tensor,
                    kp_source: torch.Tensor, jacobian_source: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        result: dict[str, torch.Tensor] = {}
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(source, kp_driving, jacobian_driving, kp_source, jacobian_source)
            result.update(motion)
            out = warp(out, motion["deformation"])
            occlusion = motion.get("occlusion_map")
            if occlusion is not None:
                if occlusion.shape[2:] != out.shape[2:]:
                    occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear", align_corners=False)
                out = out * occlusion
            result["deformed"] = warp(source, motion["deformation"])
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        result["prediction"] = torch.sigmoid(self.final(out))
        return result

    def forward(self, source: torch.Tensor, kp_driving: torch.Tensor, jacobian_driving: torch.Tensor,
                kp_source: torch.Tensor, jacobian_source: torch.Tensor) -> torch.Tensor:
        """Source (B, C, H, W), driving and source key points and Jacobians -> the animated frame (B, C, H, W)."""
        return self.forward_all(source, kp_driving, jacobian_driving, kp_source, jacobian_source)["prediction"]
