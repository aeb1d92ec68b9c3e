"""FOMM multi-scale patch discriminator (pix2pix-like), with spectral norm as in the original's ``sn: True``.

``torch.nn.utils.spectral_norm`` (not the parametrization API) is used on purpose: its ``weight_orig`` /
``weight_u`` / ``weight_v`` names are the ones in the original checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceexpr_cli.nn.fomm.blocks import kp2gaussian


class DiscDownBlock(nn.Module):
    def __init__(self, in_features: int, out_features: int, norm: bool = False, kernel_size: int = 4,
                 pool: bool = False, sn: bool = False):
        super().__init__()
        conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        return F.avg_pool2d(out, (2, 2)) if self.pool else out


class Discriminator(nn.Module):
    def __init__(self, num_channels: int = 3, block_expansion: int = 64, num_blocks: int = 4,
                 max_features: int = 512, sn: bool = False, use_kp: bool = False, num_kp: int = 10,
                 kp_variance: float = 0.01, **_: object):
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            in_f = num_channels + num_kp * int(use_kp) if i == 0 else min(max_features, block_expansion * 2**i)
            blocks.append(DiscDownBlock(in_f, min(max_features, block_expansion * 2 ** (i + 1)), norm=i != 0,
                                        pool=i != num_blocks - 1, sn=sn))
        self.down_blocks = nn.ModuleList(blocks)
        conv = nn.Conv2d(blocks[-1].conv.out_channels, 1, kernel_size=1)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.use_kp = use_kp
        self.kp_variance = kp_variance

    def forward(self, x: torch.Tensor, kp: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        out = x
        if self.use_kp:
            assert kp is not None, "this discriminator looks at key points: pass them"
            out = torch.cat([out, kp2gaussian(kp, x.shape[2], x.shape[3], self.kp_variance)], dim=1)
        features = []
        for block in self.down_blocks:
            out = block(out)
            features.append(out)
        return features, self.conv(out)


def scale_key(scale: float) -> str:
    """The original's ModuleDict key for a scale: ``str(scale)`` with '.' as '-' (1 -> '1', 0.5 -> '0-5')."""
    return str(scale).replace(".", "-")


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, scales=(), **kwargs):
        super().__init__()
        self.scales = list(scales)
        self.discs = nn.ModuleDict({scale_key(s): Discriminator(**kwargs) for s in self.scales})

    def forward(self, pyramid: dict[str, torch.Tensor], kp: torch.Tensor | None = None) -> dict[str, object]:
        """``pyramid`` maps 'prediction_<scale>' to images; returns feature maps and prediction maps per scale."""
        out: dict[str, object] = {}
        for key, disc in self.discs.items():
            scale = key.replace("-", ".")
            image = pyramid.get(f"prediction_{scale}")
            if image is None:  # pyramids keyed by the canonical number ('1' for 1.0)
                image = pyramid[f"prediction_{float(scale):g}"]
            features, prediction = disc(image, kp)
            out[f"feature_maps_{scale}"] = features
            out[f"prediction_map_{scale}"] = prediction
        return out
