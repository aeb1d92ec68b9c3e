"""Speech -> expression per frame (SadTalker's ExpNet, seed 003): an audio encoder over each frame's 0.2 s mel window,
joined with the clip's first-frame expression and a blink value, then an optional temporal convolution.

Inputs: ``mel`` (B, T, bands, window) normalised log-mel windows, ``reference`` (B, K) the first frame's expression
coefficients, ``blink`` (B, T) eye closure in [0, 1]. Outputs: ``expression`` (B, T, K) and ``offsets`` (B, T, P, 2),
the landmark offsets from the neutral face that the expression decodes to through the run's PCA basis (buffers
``basis_mean`` and ``basis_components``, filled by the trainer and saved with the weights).
"""

from __future__ import annotations

import torch
from torch import nn


def _out(size: int, stride: int) -> int:
    return (size + 2 - 3) // stride + 1


class AudioEncoder(nn.Module):
    """(N, bands, window) -> (N, dim): strided 3x3 convolutions (the first halves the bands only), then a linear."""

    def __init__(self, bands: int = 80, window: int = 16, channels: tuple[int, ...] = (32, 64, 128, 256),
                 dim: int = 512):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, h, w = 1, bands, window
        for i, c in enumerate(channels):
            stride = (2, 1) if i == 0 else (2, 2)
            layers += [nn.Conv2d(c_in, c, 3, stride, 1), nn.ReLU(inplace=True)]
            h, w, c_in = _out(h, stride[0]), _out(w, stride[1]), c
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Sequential(nn.Conv2d(c_in, dim, (h, w)), nn.ReLU(inplace=True))
        self.dim = dim

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.proj(self.convs(mel.unsqueeze(1))).flatten(1)


class Audio2Expression(nn.Module):
    def __init__(self, mel_bands: int = 80, mel_window: int = 16, channels: tuple[int, ...] = (32, 64, 128, 256),
                 audio_dim: int = 512, expression_dim: int = 64, hidden: int = 256, smooth: int = 5,
                 points: int = 68, dropout: float = 0.0):
        super().__init__()
        if smooth < 1 or smooth % 2 == 0:
            raise ValueError(f"smooth must be an odd kernel size >= 1, got {smooth}")
        self.mel_bands, self.mel_window, self.expression_dim, self.points = mel_bands, mel_window, expression_dim, points
        self.audio = AudioEncoder(mel_bands, mel_window, tuple(channels), audio_dim)
        self.fuse = nn.Sequential(nn.Linear(audio_dim + expression_dim + 1, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout))
        # temporal smoothing: a convolution over neighbouring frames (kernel 1 = every frame on its own)
        self.temporal = nn.Conv1d(hidden, hidden, smooth, padding=smooth // 2)
        self.head = nn.Linear(hidden, expression_dim)
        self.register_buffer("basis_mean", torch.zeros(points * 2))
        self.register_buffer("basis_components", torch.zeros(expression_dim, points * 2))

    def forward(self, mel: torch.Tensor, reference: torch.Tensor, blink: torch.Tensor):
        b, t = mel.shape[0], mel.shape[1]
        audio = self.audio(mel.reshape(b * t, mel.shape[2], mel.shape[3])).reshape(b, t, -1)
        ref = reference[:, None, :].expand(b, t, reference.shape[-1])
        h = self.fuse(torch.cat([audio, ref, blink[..., None]], dim=-1))
        h = h + torch.relu(self.temporal(h.transpose(1, 2)).transpose(1, 2))
        expression = self.head(h)
        return expression, self.decode(expression)

    def decode(self, expression: torch.Tensor) -> torch.Tensor:
        """(..., K) coefficients -> (..., P, 2) offsets from the neutral face (normalised face frame)."""
        flat = expression @ self.basis_components + self.basis_mean
        return flat.reshape(*expression.shape[:-1], self.points, 2)

    def set_basis(self, mean, components) -> None:
        with torch.no_grad():
            self.basis_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.basis_components.copy_(torch.as_tensor(components, dtype=torch.float32))
