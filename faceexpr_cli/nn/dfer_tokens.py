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


class FrameFeatureClassifier(nn.Module):
    """Clips (B, T, 3, H, W) RGB in [0, 1] -> per-frame features of a frozen image model -> ``TemporalTokens``.

    The extractor here is the FER mini-Xception (``emotion-minixception``): each frame is made grey
    (0.299 R + 0.587 G + 0.114 B), resized to ``extractor_size`` and scaled to [-1, 1], as that model expects; its
    7 logits are the frame's features. Only the temporal model trains."""

    def __init__(self, extractor: nn.Module, temporal: TemporalTokens, extractor_size: int = 64,
                 image_size: int = 64, frames: int = 16):
        super().__init__()
        self.extractor = extractor.requires_grad_(False)
        self.temporal = temporal
        self.extractor_size, self.image_size, self.frames = extractor_size, image_size, frames
        self.depth, self.num_classes = temporal.depth, temporal.num_classes
        self.register_buffer("grey", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FrameFeatureClassifier:
        super().train(mode)
        self.extractor.eval()  # frozen: BatchNorm keeps its statistics
        return self

    def features(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        x = (video.flatten(0, 1) * self.grey).sum(1, keepdim=True)
        if x.shape[-1] != self.extractor_size or x.shape[-2] != self.extractor_size:
            x = torch.nn.functional.interpolate(x, size=(self.extractor_size, self.extractor_size), mode="bilinear",
                                                align_corners=False, antialias=True)
        with torch.no_grad():
            logits = self.extractor(x * 2 - 1)[0]
        return logits.reshape(b, t, -1)

    def outputs(self, video: torch.Tensor) -> torch.Tensor:
        return self.temporal.outputs(self.features(video))

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.temporal(self.features(video))

    def layer_id(self, name: str) -> int:
        return self.temporal.layer_id(name.removeprefix("temporal.")) if name.startswith("temporal.") else 0
