"""Building blocks shared by the FOMM networks, laid out so the original checkpoints' keys load as they are.

Every block keeps the attribute names (``conv``, ``norm``, ``conv1``, ``norm2``, ...) and the registration order of
the original First Order Motion Model, because strict ``load_state_dict`` and Adam state indices depend on them.
BatchNorm is the plain ``nn.BatchNorm2d``: its state_dict keys equal those of the original synchronized BatchNorm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """A (h, w, 2) grid over [-1, 1] with the last axis ordered (x, y), the convention of ``grid_sample``."""
    x = torch.arange(w, dtype=like.dtype, device=like.device)
    y = torch.arange(h, dtype=like.dtype, device=like.device)
    x = 2 * (x / (w - 1)) - 1
    y = 2 * (y / (h - 1)) - 1
    xx = x.view(1, w).expand(h, w)
    yy = y.view(h, 1).expand(h, w)
    return torch.stack([xx, yy], dim=-1)


def kp2gaussian(value: torch.Tensor, h: int, w: int, kp_variance: float) -> torch.Tensor:
    """Keypoints (..., K, 2) -> Gaussian bumps (..., K, h, w) centred on them."""
    grid = coordinate_grid(h, w, value)
    diff = grid - value.unsqueeze(-2).unsqueeze(-2)
    return torch.exp(-0.5 * (diff**2).sum(-1) / kp_variance)


def inverse2x2(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of (..., 2, 2) matrices; ``torch.inverse`` has no ONNX op."""
    a, b = m[..., 0, 0], m[..., 0, 1]
    c, d = m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    row0 = torch.stack([d, -b], dim=-1)
    row1 = torch.stack([-c, a], dim=-1)
    return torch.stack([row0, row1], dim=-2) / det.unsqueeze(-1).unsqueeze(-1)


class ResBlock2d(nn.Module):
    """Pre-activation residual block: norm -> relu -> conv, twice, plus the input."""

    def __init__(self, in_features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest x2 upsampling, then conv -> norm -> relu."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class DownBlock2d(nn.Module):
    """conv -> norm -> relu, then 2x2 average pooling."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """conv -> norm -> relu at the same resolution."""

    def __init__(self, in_features: int, out_features: int, groups: int = 1, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


def _width(block_expansion: int, max_features: int, level: int) -> int:
    return min(max_features, block_expansion * (2**level))


class Encoder(nn.Module):
    """Hourglass encoder; returns every level (input included) for the decoder's skips."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(in_features if i == 0 else _width(block_expansion, max_features, i),
                        _width(block_expansion, max_features, i + 1))
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: upsample, then concatenate the encoder level of the same size."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            factor = 1 if i == num_blocks - 1 else 2
            blocks.append(UpBlock2d(factor * _width(block_expansion, max_features, i + 1),
                                    _width(block_expansion, max_features, i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        out = levels[-1]
        for i, block in enumerate(self.up_blocks):
            out = torch.cat([block(out), levels[-2 - i]], dim=1)
        return out


class Hourglass(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def gaussian_kernel(channels: int, scale: float) -> torch.Tensor:
    """The anti-alias kernel the original builds for ``scale``: (channels, 1, k, k), sums to 1 per channel."""
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    t = torch.arange(size, dtype=torch.float32)
    g1 = torch.exp(-((t - (size - 1) / 2) ** 2) / (2 * sigma**2))
    kernel = g1.view(size, 1) * g1.view(1, size)
    kernel = kernel / kernel.sum()
    return kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1)


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then nearest subsampling, so downscaled inputs keep their low frequencies.

    The kernel is a buffer named ``weight``: checkpoints carry their own (possibly trained or perturbed) copy, which
    must be loaded, not rebuilt. For integer factors the blur and the subsampling are one strided conv (the same
    pixels that nearest interpolation picks), which exports to a single ONNX Conv.
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.scale = float(scale)
        self.groups = channels
        kernel = gaussian_kernel(channels, scale) if self.scale != 1.0 else torch.ones(channels, 1, 1, 1)
        self.register_buffer("weight", kernel)
        self.pad = kernel.shape[-1] // 2
        inv = 1 / self.scale
        self.stride = int(round(inv)) if abs(inv - round(inv)) < 1e-9 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        out = F.pad(x, (self.pad, self.pad, self.pad, self.pad))
        if self.stride:
            out = F.conv2d(out, self.weight, groups=self.groups, stride=self.stride)
            h, w = x.shape[2] // self.stride, x.shape[3] // self.stride
            return out[:, :, :h, :w]
        out = F.conv2d(out, self.weight, groups=self.groups)
        return F.interpolate(out, scale_factor=(self.scale, self.scale), mode="nearest")
