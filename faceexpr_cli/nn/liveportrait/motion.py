"""Motion extractor (M): an image -> head pose bins, translation, expression deformation, scale and the canonical
key points. The release keeps the backbone under ``detector.``; raw head outputs here, decoding in ``camera``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from faceexpr_cli.nn.liveportrait.convnextv2 import ConvNeXtV2

BACKBONES = {"convnextv2_tiny": ((3, 3, 9, 3), (96, 192, 384, 768))}


class MotionExtractor(nn.Module):
    def __init__(self, num_kp: int = 21, backbone: str = "convnextv2_tiny", depths: Sequence[int] | None = None,
                 dims: Sequence[int] | None = None, num_bins: int = 66, in_chans: int = 3):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown motion extractor backbone '{backbone}' (known: {', '.join(BACKBONES)})")
        d0, w0 = BACKBONES[backbone]
        self.num_kp = num_kp
        self.detector = ConvNeXtV2(in_chans, tuple(depths or d0), tuple(dims or w0), num_kp=num_kp,
                                   num_bins=num_bins)

    def forward(self, image: torch.Tensor):
        """(B, 3, H, W) in [0, 1] -> pitch, yaw, roll (B, bins) logits, t (B, 3), exp (B, 3K), scale (B, 1),
        kp (B, 3K)."""
        return self.detector(image)
