"""Stitching and retargeting MLPs (S): small ReLU MLPs on flattened key points (and eye/lip ratios).

- stitching: (x_s, x_d) -> 3K + 2: a per-point offset plus a shared (tx, ty), so the driven face stays attached
  to the shoulders when pasted back;
- eye: (x_s, 3 eye ratios) -> 3K; lip: (x_s, 2 lip ratios) -> 3K: key point offsets that open or close them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class StitchingRetargetingNetwork(nn.Module):
    def __init__(self, input_size: int, hidden_sizes: Sequence[int], output_size: int):
        super().__init__()
        sizes = [input_size, *hidden_sizes]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class Stitcher(nn.Module):
    """The stitching MLP applied: x_d + offsets (first 3K values) + (tx, ty) on every point (last 2)."""

    def __init__(self, input_size: int, hidden_sizes: Sequence[int], output_size: int):
        super().__init__()
        self.net = StitchingRetargetingNetwork(input_size, hidden_sizes, output_size)

    def forward(self, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
        b, k, _ = x_s.shape
        delta = self.net(torch.cat([x_s.reshape(b, -1), x_d.reshape(b, -1)], dim=1))
        shift = torch.cat([delta[:, 3 * k:3 * k + 2], torch.zeros_like(delta[:, :1])], dim=1)
        return x_d + delta[:, :3 * k].reshape(b, k, 3) + shift.view(b, 1, 3)


class Retargeter(nn.Module):
    """Eye or lip retargeting: key point offsets (B, K, 3) from x_s and the ratios."""

    def __init__(self, input_size: int, hidden_sizes: Sequence[int], output_size: int):
        super().__init__()
        self.net = StitchingRetargetingNetwork(input_size, hidden_sizes, output_size)

    def forward(self, x_s: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        b, k, _ = x_s.shape
        return self.net(torch.cat([x_s.reshape(b, -1), ratio.reshape(b, -1)], dim=1)).reshape(b, k, 3)
