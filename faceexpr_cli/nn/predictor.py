"""The expression predictor: a causal transformer that predicts the next frame's expression token.

Output position t is the prediction for frame t+1, computed from frames 0..t only (a causal mask), so one forward
pass over a clip trains every prefix at once and a live loop (the seed's 30-frame webcam buffer) reads the last row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ExpressionPredictor(nn.Module):
    """``forward(tokens (B,T,D)) -> (B,T,D)`` unit vectors; T may be anything up to ``max_len``."""

    def __init__(self, token_dim: int = 384, dim: int = 384, heads: int = 4, layers: int = 2,
                 ff_dim: int = 768, max_len: int = 64, dropout: float = 0.1, norm_first: bool = False):
        super().__init__()
        self.max_len = max_len
        self.in_proj = nn.Linear(token_dim, dim)
        self.time = nn.Parameter(torch.randn(1, max_len, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_proj = nn.Linear(dim, token_dim)
        mask = torch.triu(torch.full((max_len, max_len), float("-inf")), diagonal=1)
        self.register_buffer("causal", mask, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        x = self.in_proj(tokens) + self.time[:, :t]
        x = self.encoder(x, mask=self.causal[:t, :t], is_causal=True)
        return F.normalize(self.out_proj(x), dim=-1)
