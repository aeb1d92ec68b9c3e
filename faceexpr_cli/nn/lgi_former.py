"""MAE-DFER's encoder, the LGI-Former (Sun et al., 2023): a VideoMAE tubelet embedding whose tokens are split
into local regions (``region_size`` tokens in t x h x w), each with a learnable region ("messenger") token.

Each block: (1) self-attention inside every region (its tokens + its region token), (2) self-attention among the
region tokens of a clip (global), (3) cross-attention from every local token of the clip to the region tokens
(local-global interaction), then the MLP. Classification pools the region tokens (MAE-DFER's ``region`` type):
mean -> fc_norm -> head. Parameter names follow MAE-DFER's release, so its checkpoints load as they are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from faceexpr_cli.nn.videomae import IMAGENET_MEAN, IMAGENET_STD, Mlp, _init_weights, sinusoid_table


class GeneralAttention(nn.Module):
    """Attention with separate q and kv projections (self-attention when no context is given)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, dim * 2, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        ctx = x if context is None else context
        q = F.linear(x, self.q.weight, self.q_bias).reshape(b, n, self.heads, -1).transpose(1, 2)
        kv = F.linear(ctx, self.kv.weight, torch.cat([torch.zeros_like(self.v_bias), self.v_bias]))
        kv = kv.reshape(b, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ kv[0].transpose(-2, -1)
        out = attn.softmax(-1) @ kv[1]
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class LGBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float):
        super().__init__()
        self.first_attn_norm0 = nn.LayerNorm(dim, eps=eps)
        self.first_attn = GeneralAttention(dim, heads)
        self.second_attn_norm0 = nn.LayerNorm(dim, eps=eps)
        self.second_attn = GeneralAttention(dim, heads)
        self.third_attn_norm0 = nn.LayerNorm(dim, eps=eps)
        self.third_attn_norm1 = nn.LayerNorm(dim, eps=eps)
        self.third_attn = GeneralAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, b: int) -> torch.Tensor:
        """x: (B * R, 1 + S, C): per region its region token then its S local tokens."""
        br, s1, c = x.shape
        r = br // b
        x = x + self.first_attn(self.first_attn_norm0(x))
        msg = x[:, 0].reshape(b, r, c)
        msg = msg + self.second_attn(self.second_attn_norm0(msg))
        local = x[:, 1:].reshape(b, r * (s1 - 1), c)
        local = local + self.third_attn(self.third_attn_norm0(local), context=self.third_attn_norm1(msg))
        x = torch.cat([msg.reshape(br, 1, c), local.reshape(br, s1 - 1, c)], dim=1)
        return x + self.mlp(self.norm2(x))


class LGIFormer(nn.Module):
    """Clips (B, T, 3, H, W) RGB in [0, 1] -> (logits, probabilities)."""

    def __init__(self, image_size: int = 160, frames: int = 16, patch_size: int = 16, tubelet: int = 2,
                 dim: int = 512, depth: int = 16, heads: int = 8, mlp_ratio: float = 4.0, eps: float = 1e-6,
                 num_classes: int = 7, region_size: tuple[int, int, int] | list[int] = (2, 5, 10),
                 num_regression: int = 0, head_dropout: float = 0.0):
        super().__init__()
        self.image_size, self.frames, self.patch_size, self.tubelet = image_size, frames, patch_size, tubelet
        self.dim, self.depth, self.num_classes, self.num_regression = dim, depth, num_classes, num_regression
        self.grid = (frames // tubelet, image_size // patch_size, image_size // patch_size)
        self.region_size = tuple(int(v) for v in region_size)
        if any(g % r for g, r in zip(self.grid, self.region_size, strict=True)):
            raise ValueError(f"token grid {self.grid} is not divisible by region_size {self.region_size}")
        self.regions = tuple(g // r for g, r in zip(self.grid, self.region_size, strict=True))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, dim, (tubelet, patch_size, patch_size), (tubelet, patch_size, patch_size))
        self.register_buffer("pos_table", sinusoid_table(math.prod(self.grid), dim), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.lg_region_tokens = nn.Parameter(torch.zeros(math.prod(self.regions), dim))
        self.blocks = nn.ModuleList(LGBlock(dim, heads, mlp_ratio, eps) for _ in range(depth))
        self.norm = nn.Identity()
        self.fc_norm = nn.LayerNorm(dim, eps=eps)
        self.head_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(dim, num_classes) if num_classes else nn.Identity()
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.lg_region_tokens, std=0.02)
        if isinstance(self.head, nn.Linear):
            self.head.weight.data.mul_(0.001)

    def _regions(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) in (t, h, w) order -> (B * R, S, C) grouped by region."""
        b, _, c = x.shape
        (nt, nh, nw), (t, h, w) = self.regions, self.region_size
        x = x.reshape(b, nt, t, nh, h, nw, w, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
        return x.reshape(b * nt * nh * nw, t * h * w, c)

    def pooled(self, video: torch.Tensor) -> torch.Tensor:
        x = (video.permute(0, 2, 1, 3, 4) - self.mean) / self.std
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        b = x.shape[0]
        x = self._regions(x + self.pos_table.to(x.dtype))
        tokens = self.lg_region_tokens.to(x.dtype)[None].expand(b, -1, -1).reshape(-1, 1, self.dim)
        x = torch.cat([tokens, x], dim=1)
        for block in self.blocks:
            x = block(x, b)
        regions = self.norm(x[:, 0].reshape(b, -1, self.dim))
        return self.fc_norm(regions.mean(1))

    def outputs(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_dropout(self.pooled(video)))

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.outputs(video)
        if self.num_regression:
            logits = logits[:, :-self.num_regression]
        return logits, logits.softmax(-1)

    def layer_id(self, name: str) -> int:
        if name.startswith(("patch_embed", "lg_region_tokens")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.depth + 1
