"""VGG19 feature extractor for perceptual losses, laid out like torchvision's ``vgg19().features``.

Keys are ``features.<index>.weight/bias`` with torchvision's indices, so the standard ImageNet VGG19 file
(``vgg19-dcbb9e9d.pth``) loads as it is (its ``classifier.*`` entries are skipped). Only layers up to relu5_1 are
built: FOMM's perceptual loss reads relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1.
"""

from __future__ import annotations

import torch
from torch import nn

# torchvision's VGG19 "E" configuration up to relu5_1: channels per conv, "M" for max pooling.
_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
# Output after these feature indices (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1).
TAPS = (1, 6, 11, 20, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """Images in [0, 1] (B, 3, H, W) -> the five relu feature maps, ImageNet normalisation inside."""

    def __init__(self, requires_grad: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _LAYERS:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if not requires_grad:
            for p in self.parameters():
                p.requires_grad_(False)

    def load_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Load a torchvision VGG19 state dict (classifier and layers past relu5_1 ignored), strictly otherwise."""
        own = self.state_dict()
        picked = {k: v for k, v in state.items() if k in own}
        missing = sorted(set(own) - set(picked))
        if missing:
            raise KeyError(f"VGG19 weights lack {len(missing)} keys, e.g. {missing[:3]}")
        self.load_state_dict(picked, strict=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = (x - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            out = layer(out)
            if i in TAPS:
                taps.append(out)
        return taps
