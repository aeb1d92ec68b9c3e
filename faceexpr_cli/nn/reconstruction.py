"""The reconstruction model: a face image back from (expression token, subject).

Learned patch queries plus positional embeddings cross-attend to [subject ; expression] (``nn.TransformerDecoder``),
then attend to each other (``nn.TransformerEncoder``); a small CNN turns the patch grid back into an RGB image at
the input resolution in [0, 1]. The decoder upsamples by the patch size in stages (bilinear + conv), and the last
stage is a sub-pixel convolution, which keeps the full-resolution work to one cheap layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from faceexpr_cli.nn.expression import patch_count


class ConvDecoder(nn.Module):
    """(B, C, gh, gw) -> (B, 3, gh*prod(factors), gw*prod(factors)) in [0, 1]."""

    def __init__(self, in_dim: int, channels: list[int], factors: list[int]):
        super().__init__()
        if len(channels) != len(factors):
            raise ValueError(f"decoder_channels {channels} and upsample {factors} must have the same length")
        self.stem = nn.Conv2d(in_dim, channels[0], 1)
        stages = []
        for i, f in enumerate(factors[:-1]):
            stages += [nn.Upsample(scale_factor=f, mode="bilinear", align_corners=False),
                       nn.Conv2d(channels[i], channels[i + 1], 3, padding=1), nn.GroupNorm(1, channels[i + 1]),
                       nn.GELU()]
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Conv2d(channels[-1], 3 * factors[-1] ** 2, 3, padding=1),
                                  nn.PixelShuffle(factors[-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.stages(self.stem(x))))


class ReconstructionModel(nn.Module):
    """``forward(expression (B,De), subject_ids (B,), pos (1|B,N,Dt)) -> images (B,3,H,W)`` in [0, 1].

    ``pos`` is the tokenizer's positional table; ``delta_pos`` and ``subjects`` are tied to the expression
    transformer's in joint training (the seed's sharing), yet saved with this model so that it stands alone.
    """

    def __init__(self, dim: int = 384, heads: int = 4, cross_layers: int = 2, self_layers: int = 2,
                 ff_dim: int = 768, max_subjects: int = 501, image_size: int | list[int] = 518,
                 patch_size: int = 14, token_dim: int = 384, expression_dim: int = 384,
                 decoder_channels: list[int] = (256, 128), upsample: list[int] = (2, 7), dropout: float = 0.1,
                 norm_first: bool = False):
        super().__init__()
        self.grid = patch_count(image_size, patch_size)
        if math.prod(upsample) != patch_size:
            raise ValueError(f"upsample factors {list(upsample)} must multiply to the patch size {patch_size}")
        n = self.grid[0] * self.grid[1]
        self.dim = dim
        self.max_subjects = max_subjects
        self.queries = nn.Parameter(torch.randn(1, n, dim) * 0.02)
        self.delta_pos = nn.Parameter(torch.zeros(1, n, token_dim))
        self.pos_proj = nn.Linear(token_dim, dim) if token_dim != dim else nn.Identity()
        self.expr_proj = nn.Linear(expression_dim, dim) if expression_dim != dim else nn.Identity()
        self.subjects = nn.Embedding(max_subjects, dim)
        nn.init.normal_(self.subjects.weight, std=0.02)
        cross = nn.TransformerDecoderLayer(dim, heads, ff_dim, dropout, batch_first=True, norm_first=norm_first)
        self.cross = nn.TransformerDecoder(cross, cross_layers)
        own = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, batch_first=True, norm_first=norm_first)
        self.refine = nn.TransformerEncoder(own, self_layers, enable_nested_tensor=False)
        self.decoder = ConvDecoder(dim, list(decoder_channels), list(upsample))

    def forward(self, expression: torch.Tensor, subject_ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        b = expression.shape[0]
        queries = (self.queries + self.pos_proj(pos + self.delta_pos)).expand(b, -1, -1)
        memory = torch.stack([self.subjects(subject_ids), self.expr_proj(expression)], dim=1)
        x = self.refine(self.cross(queries, memory))
        x = x.transpose(1, 2).reshape(b, self.dim, self.grid[0], self.grid[1])
        return self.decoder(x)
