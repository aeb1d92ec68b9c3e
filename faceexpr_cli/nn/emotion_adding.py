"""Emotion adding (seed 003's fork): a 5-frame context of neutral expression coefficients -> emotional ones.

Both models predict a residual on the centre frame, so an untrained (zero) residual is the identity. At inference
the added component ``emotional - neutral`` is blended with ``alpha`` and, with ``ortho``, first made orthogonal
to the neutral expression (``blend``), as the fork does; ``alpha = 0`` returns the input unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def context_windows(x: torch.Tensor, context: int) -> torch.Tensor:
    """(B, T, K) -> (B, T, context, K): each frame with its neighbours, edge frames repeated."""
    half = context // 2
    idx = torch.arange(x.shape[1], device=x.device)[:, None] + torch.arange(-half, half + 1, device=x.device)
    idx = idx.clamp(0, x.shape[1] - 1)
    return x[:, idx]


class LinearEmotion(nn.Module):
    def __init__(self, expression_dim: int = 64, context: int = 5):
        super().__init__()
        if context < 1 or context % 2 == 0:
            raise ValueError(f"context must be odd, got {context}")
        self.context, self.expression_dim = context, expression_dim
        self.linear = nn.Linear(context * expression_dim, expression_dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, expression: torch.Tensor) -> torch.Tensor:
        win = context_windows(expression, self.context)
        return expression + self.linear(win.flatten(2))


class TransformerEmotion(nn.Module):
    def __init__(self, expression_dim: int = 64, context: int = 5, dim: int = 128, heads: int = 4, layers: int = 2,
                 ff_dim: int = 256, dropout: float = 0.0):
        super().__init__()
        if context < 1 or context % 2 == 0:
            raise ValueError(f"context must be odd, got {context}")
        self.context, self.expression_dim = context, expression_dim
        self.embed = nn.Linear(expression_dim, dim)
        self.pos = nn.Parameter(torch.zeros(context, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(dim, expression_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, expression: torch.Tensor) -> torch.Tensor:
        b, t, k = expression.shape
        win = context_windows(expression, self.context).reshape(b * t, self.context, k)
        h = self.encoder(self.embed(win) + self.pos)
        return expression + self.out(h[:, self.context // 2]).reshape(b, t, k)


def blend(neutral: torch.Tensor, emotional: torch.Tensor, alpha: float, ortho: bool) -> torch.Tensor:
    """neutral + alpha * added, the added component optionally orthogonal to ``neutral`` (per frame)."""
    added = emotional - neutral
    if ortho:
        norm = (neutral * neutral).sum(-1, keepdim=True).clamp_min(1e-12)
        added = added - (added * neutral).sum(-1, keepdim=True) / norm * neutral
    return neutral + alpha * added
