"""VideoMAE's ViT (Tong et al., 2022): tubelet embedding, fixed sinusoidal positions, pre-norm blocks with separate
q/v biases, mean pooling + ``fc_norm`` + a linear head.

Parameter names follow the original VideoMAE release (``patch_embed.proj``, ``blocks.N.attn.qkv``, ``fc_norm``,
``head``), so its checkpoints load as they are; ``builders/videomae.py`` maps Hugging Face names onto these.
The position table is not a parameter (as in both releases): it is built for the preset's frames and size and
interpolated trilinearly when a clip has another grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sinusoid_table(positions: int, dim: int) -> torch.Tensor:
    """(1, positions, dim): sin on even channels, cos on odd, wavelength 10000^(2 * (j // 2) / dim)."""
    pos = torch.arange(positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()[None]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float, qkv_bias: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _init_weights(m: nn.Module) -> None:
    """VideoMAE's init (truncated normal 0.02, zero bias): from-scratch runs train much faster than with torch's
    default fan-in init."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class VideoMAE(nn.Module):
    """Clips (B, T, 3, H, W) RGB in [0, 1] -> (logits, probabilities); ImageNet normalisation happens inside."""

    def __init__(self, image_size: int = 224, frames: int = 16, patch_size: int = 16, tubelet: int = 2,
                 dim: int = 768, depth: int = 12, heads: int = 12, mlp_ratio: float = 4.0, eps: float = 1e-12,
                 num_classes: int = 7, mean_pooling: bool = True, qkv_bias: bool = True, head_dropout: float = 0.0,
                 num_regression: int = 0):
        super().__init__()
        if image_size % patch_size or frames % tubelet:
            raise ValueError(f"image_size {image_size} / frames {frames} must be multiples of the patch "
                             f"{patch_size} / tubelet {tubelet}")
        self.image_size, self.frames, self.patch_size, self.tubelet = image_size, frames, patch_size, tubelet
        self.dim, self.depth, self.num_classes = dim, depth, num_classes
        self.num_regression = num_regression  # the last outputs of the head are regression values, not classes
        self.grid = (frames // tubelet, image_size // patch_size, image_size // patch_size)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, dim, (tubelet, patch_size, patch_size), (tubelet, patch_size, patch_size))
        self.register_buffer("pos_table", sinusoid_table(math.prod(self.grid), dim), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, eps, qkv_bias) for _ in range(depth))
        self.norm = nn.Identity() if mean_pooling else nn.LayerNorm(dim, eps=eps)
        self.fc_norm = nn.LayerNorm(dim, eps=eps) if mean_pooling else None
        self.head_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(dim, num_classes) if num_classes else nn.Identity()
        self.apply(_init_weights)
        if isinstance(self.head, nn.Linear):  # VideoMAE's init_scale: a small head starts near uniform
            self.head.weight.data.mul_(0.001)

    def positions(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """(1, N, dim) for a token grid (t, h, w): the preset's table, trilinearly resized for another grid."""
        if tuple(grid) == self.grid:
            return self.pos_table
        t0, h0, w0 = self.grid
        table = self.pos_table.reshape(1, t0, h0, w0, self.dim).permute(0, 4, 1, 2, 3)
        table = F.interpolate(table, size=tuple(grid), mode="trilinear", align_corners=False)
        return table.permute(0, 2, 3, 4, 1).reshape(1, -1, self.dim)

    def embed(self, video: torch.Tensor, normalise: bool = True) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """(B, T, 3, H, W) -> tokens (B, N, dim) with positions added, and the token grid."""
        x = video.permute(0, 2, 1, 3, 4)
        if normalise:
            x = (x - self.mean) / self.std
        x = self.patch_embed.proj(x)
        grid = (x.shape[2], x.shape[3], x.shape[4])
        x = x.flatten(2).transpose(1, 2)
        return x + self.positions(grid).to(x.dtype), grid

    def features(self, video: torch.Tensor, keep: torch.Tensor | None = None, normalise: bool = True) -> torch.Tensor:
        """Encoder tokens (B, N, dim); ``keep`` (B, N) bool keeps only the visible tokens (pretraining)."""
        x, _ = self.embed(video, normalise)
        if keep is not None:
            x = x[keep].reshape(x.shape[0], -1, x.shape[-1])
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def pooled(self, video: torch.Tensor) -> torch.Tensor:
        x = self.features(video)
        return self.fc_norm(x.mean(1)) if self.fc_norm is not None else x[:, 0]

    def outputs(self, video: torch.Tensor) -> torch.Tensor:
        """Every head output: class logits, then ``num_regression`` regression values."""
        return self.head(self.head_dropout(self.pooled(video)))

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.outputs(video)
        if self.num_regression:
            logits = logits[:, :-self.num_regression]
        return logits, logits.softmax(-1)

    def layer_id(self, name: str) -> int:
        """Depth of a parameter for layer-wise learning-rate decay: embeddings 0, block i -> i + 1, head last."""
        if name.startswith("patch_embed"):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.depth + 1
