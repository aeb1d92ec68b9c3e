"""DINOv2 ViT-S/14 and ViT-B/14 in plain torch: patch tokens and their positional embeddings.

The expression models need the patch tokens *and* the positional embeddings at the input's grid, so this module
returns both; the positional table is interpolated (bicubic) when the input grid differs from the trained one.
Parameter names follow the research release (``blocks.N.attn.qkv`` ...), and ``convert_dinov2_state_dict`` maps
the ``facebook/dinov2-*`` (transformers) layouts onto them, so either published checkpoint loads by key mapping.
Images go in as RGB in [0, 1]; ImageNet normalisation happens inside, so no consumer has to repeat it.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, layerscale_init: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim, layerscale_init)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layerscale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2(nn.Module):
    """``forward(images (B,3,H,W) in [0,1]) -> (patch_tokens (B, H/14*W/14, D), pos_embed (1, N, D))``.

    ``frozen`` (the default) turns off gradients and keeps the module in eval mode even inside a training model,
    because the tokenizer is a fixed feature extractor here. ``interpolate_offset`` 0 resizes the positional
    table to the exact grid (transformers' behaviour); 0.1 reproduces the research release's scale-factor rule.
    """

    def __init__(self, image_size: int = 518, patch_size: int = 14, dim: int = 384, depth: int = 12,
                 heads: int = 6, mlp_ratio: float = 4.0, num_registers: int = 0, layerscale_init: float = 1e-5,
                 interpolate_offset: float = 0.0, interpolate_antialias: bool = False, frozen: bool = True):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of the patch size {patch_size}")
        self.patch_size = patch_size
        self.dim = dim
        self.grid = image_size // patch_size
        self.interpolate_offset = interpolate_offset
        self.interpolate_antialias = interpolate_antialias
        self.patch_embed = PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid * self.grid, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_registers, dim)) if num_registers else None
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, layerscale_init) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._init_weights()
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.eval()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def train(self, mode: bool = True) -> DinoV2:
        return super().train(mode and not self.frozen)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"input {height}x{width} is not a multiple of the patch size {self.patch_size}")
        return height // self.patch_size, width // self.patch_size

    def positional(self, gh: int, gw: int) -> torch.Tensor:
        """The patch positional embeddings for a gh x gw grid, (1, gh*gw, D)."""
        table = self.pos_embed[:, 1:]
        if (gh, gw) == (self.grid, self.grid):
            return table
        src = table.reshape(1, self.grid, self.grid, self.dim).permute(0, 3, 1, 2).float()
        if self.interpolate_offset:
            scale = ((gh + self.interpolate_offset) / self.grid, (gw + self.interpolate_offset) / self.grid)
            out = F.interpolate(src, scale_factor=scale, mode="bicubic", antialias=self.interpolate_antialias)
        else:
            out = F.interpolate(src, size=(gh, gw), mode="bicubic", align_corners=False,
                                antialias=self.interpolate_antialias)
        return out.to(table.dtype).permute(0, 2, 3, 1).reshape(1, gh * gw, self.dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gh, gw = self.grid_size(images.shape[-2], images.shape[-1])
        x = self.patch_embed((images - self.mean) / self.std)
        pos = self.positional(gh, gw)
        cls = self.cls_token + self.pos_embed[:, :1]
        parts = [cls.expand(x.shape[0], -1, -1)]
        if self.register_tokens is not None:
            parts.append(self.register_tokens.expand(x.shape[0], -1, -1))
        x = torch.cat([*parts, x + pos], dim=1)
        for block in self.blocks:
            x = block(x)
        skip = 1 + (self.register_tokens.shape[1] if self.register_tokens is not None else 0)
        return self.norm(x)[:, skip:], pos


# ---- checkpoint layouts -------------------------------------------------------------------------------------

_PREFIXES = ("module.", "backbone.", "dinov2.", "model.", "encoder.model.")
_HF_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_CHUNKED = re.compile(r"^blocks\.\d+\.(\d+)\.(.+)$")
_HF_RENAMES = {
    "norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
    "attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj",
}
_HF_QKV = {"attention.attention.query": 0, "attention.attention.key": 1, "attention.attention.value": 2,
           "attention.q_proj": 0, "attention.k_proj": 1, "attention.v_proj": 2}
_HF_TOP = {
    "embeddings.cls_token": "cls_token", "embeddings.position_embeddings": "pos_embed",
    "embeddings.register_tokens": "register_tokens", "embeddings.mask_token": "mask_token",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias",
}
_IGNORED = ("mask_token", "head.", "classifier.", "pooler.")


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    """'research' (blocks.N.attn.qkv), 'transformers' (encoder.layer.N...), or 'unknown'."""
    keys = [_strip(k) for k in state]
    if any(k.startswith("encoder.layer.") for k in keys):
        return "transformers"
    if any(k.startswith("blocks.") for k in keys):
        return "research"
    return "unknown"


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p) and not key.startswith("encoder.layer"):
                key, changed = key[len(p):], True
    return key


def convert_dinov2_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any supported DINOv2 checkpoint -> this module's parameter names (mask token and heads dropped).

    Raises ``ValueError`` naming the first key it cannot place (e.g. the SwiGLU MLP of ViT-g, not supported).
    """
    layout = detect_layout(state)
    if layout == "unknown":
        raise ValueError("not a DINOv2 checkpoint (no 'blocks.N.' or 'encoder.layer.N.' keys)")
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], dict[int, torch.Tensor]] = {}
    for raw, value in state.items():
        key = _strip(raw)
        if layout == "research":
            m = _CHUNKED.match(key)
            key = f"blocks.{m.group(1)}.{m.group(2)}" if m else key
        else:
            key = _hf_key(key, value, qkv)
            if key is None:
                continue
        if key.startswith(_IGNORED):
            continue
        out[key] = value
    for (layer, kind), parts in sorted(qkv.items()):
        if sorted(parts) != [0, 1, 2]:
            raise ValueError(f"layer {layer}: query/key/value {kind} incomplete")
        out[f"blocks.{layer}.attn.qkv.{kind}"] = torch.cat([parts[0], parts[1], parts[2]], dim=0)
    return out


def _hf_key(key: str, value: torch.Tensor, qkv: dict) -> str | None:
    if key in _HF_TOP:
        return _HF_TOP[key]
    m = _HF_LAYER.match(key)
    if not m:
        if key.startswith(_IGNORED):
            return None
        raise ValueError(f"unexpected DINOv2 key '{key}'")
    layer, rest = int(m.group(1)), m.group(2)
    name, _, kind = rest.rpartition(".")
    if name in _HF_QKV:
        qkv.setdefault((layer, kind), {})[_HF_QKV[name]] = value
        return None
    if name in ("layer_scale1", "layer_scale2") and kind == "lambda1":
        return f"blocks.{layer}.ls{name[-1]}.gamma"
    if name in _HF_RENAMES:
        return f"blocks.{layer}.{_HF_RENAMES[name]}.{kind}"
    raise ValueError(f"unexpected DINOv2 key '{key}' (SwiGLU/ViT-g checkpoints are not supported)")
