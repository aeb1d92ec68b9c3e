"""FOMM key point detector: an hourglass whose heatmaps give K points by soft-argmax, each with a 2x2 Jacobian.

Returns a plain ``(value, jacobian)`` tuple rather than a dict so the module exports to ONNX as it is. Without
Jacobian estimation the Jacobians are identities, which is what the original's translation-only motion means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceexpr_cli.nn.fomm.blocks import AntiAliasInterpolation2d, Hourglass, coordinate_grid


class KPDetector(nn.Module):
    def __init__(self, block_expansion: int, num_kp: int, num_channels: int, max_features: int, num_blocks: int,
                 temperature: float, estimate_jacobian: bool = False, scale_factor: float = 1,
                 single_jacobian_map: bool = False, pad: int = 0):
        super().__init__()
        self.predictor = Hourglass(block_expansion, in_features=num_channels, max_features=max_features,
                                   num_blocks=num_blocks)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        self.num_kp = num_kp
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=(7, 7),
                                      padding=pad)
            # Start from identity Jacobians: zero weights, bias (1, 0, 0, 1) per map.
            with torch.no_grad():
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))
        else:
            self.jacobian = None
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) in [0, 1] -> key points (B, K, 2) in [-1, 1] (x, y) and Jacobians (B, K, 2, 2)."""
        x = self.down(image) if self.scale_factor != 1 else image
        features = self.predictor(x)
        logits = self.kp(features)
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.reshape(b, k, h * w) / self.temperature, dim=2).reshape(b, k, h, w)
        grid = coordinate_grid(h, w, heatmap)
        value = (heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3))
        if self.jacobian is None:
            eye = torch.eye(2, dtype=value.dtype, device=value.device)
            return value, eye.expand(b, k, 2, 2)
        jmap = self.jacobian(features).reshape(b, self.num_jacobian_maps, 4, h, w)
        jacobian = (heatmap.unsqueeze(2) * jmap).reshape(b, k, 4, h * w).sum(dim=-1)
        return value, jacobian.reshape(b, k, 2, 2)
