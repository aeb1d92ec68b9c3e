"""A 2-D convolution with spectral normalisation stored the way ``torch.nn.utils.spectral_norm`` stores it.

The release's SPADE decoder holds ``weight_orig``, ``weight_u`` and ``weight_v`` per normalised conv. As in torch's
implementation, eval uses the stored ``u`` and ``v`` as they are (sigma = u . W v, no power iteration), so a
checkpoint gives the same output as the original in eval; in training one power iteration per call updates u, v.
Being a plain module (no forward pre-hook), it traces and exports to ONNX as a constant-folded weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SNConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 dilation: int = 1, bias: bool = True, eps: float = 1e-12):
        super().__init__()
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight_orig, a=5 ** 0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("weight_u", F.normalize(torch.randn(out_channels), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(torch.randn(in_channels * kernel_size ** 2), dim=0, eps=eps))
        self.padding, self.dilation, self.eps = padding, dilation, eps

    def weight(self) -> torch.Tensor:
        w = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                v = F.normalize(torch.mv(w.t(), u), dim=0, eps=self.eps)
                u = F.normalize(torch.mv(w, v), dim=0, eps=self.eps)
                self.weight_u.copy_(u)
                self.weight_v.copy_(v)
            u, v = u.clone(), v.clone()
        sigma = torch.dot(u, torch.mv(w, v))
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding, dilation=self.dilation)
