"""A small temporal transformer over per-frame features (``dfer-tokens``): cheap enough to train on a CPU.

The features are what fx already computes per frame (the expression tokens of a joint run, DINOv2 tokens, the
emotion model's logits); the model adds learned temporal positions, runs pre-norm blocks across time, mean-pools
and classifies. Clips shorter or longer than ``frames`` use the first ``T`` positions (``T <= frames``).
"""

from __future__ import annotations

import torch
from torch import nn

from faceexpr_cli.nn.videomae import Block, _init_weights


class TemporalTokens(nn.Module):
    """(B, T, feature_dim) -> (logits, probabilities)."""

    def __init__(self, feature_dim: int = 7, frames: int = 16, dim: int = 128, depth: int = 2, heads: int = 4,
                 mlp_ratio: float = 2.0, eps: float = 1e-6, num_classes: int = 7, num_regression: int = 0):
        super().__init__()
        self.feature_dim, self.frames, self.dim, self.depth = feature_dim, frames, dim, depth
        self.num_classes, self.num_regression = num_classes, num_regression
        self.proj = nn.Linear(feature_dim, dim)
        self.pos = nn.Parameter(torch.zeros(1, frames, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, eps) for _ in range(depth))
        self.fc_norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.pos, std=0.02)

    def outputs(self, features: torch.Tensor) -> torch.Tensor:
        t = features.shape[1]
        x = self.proj(features) + self.pos[:, :t].to(features.dtype)
        for block in self.blocks:
            x = block(x)
        return self.head(self.fc_norm(x.mean(1)))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.outputs(features)
        if self.num_regression:
            logits = logits[:, :-self.num_regression]
        return logits, logits.softmax(-1)

    def layer_id(self, name: str) -> int:
        if name.startswith(("proj", "pos")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.depth + 1
