"""The joint run's losses, batched over clips: tokens come in as (B, T, D), images as (B*T, 3, H, W).

Each function matches the seed's per-clip definition averaged over clips, computed without a Python loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error in [0, 1] pixels."""
    return F.mse_loss(pred.float(), target.float())


def temporal_loss(tokens: torch.Tensor, coherence: float = 0.7, contrast: float = 0.3,
                  stride: int = 5) -> torch.Tensor:
    """coherence * mean(1 - cos(t_i, t_i+1)) + contrast * mean(|cos(t_i, t_i+stride)|).

    Neighbouring frames should agree; frames ``stride`` apart should not be forced together (the seed's dual
    objective). The contrast term is left out for clips of ``stride`` frames or fewer.
    """
    tokens = tokens.float()
    near = F.cosine_similarity(tokens[:, :-1], tokens[:, 1:], dim=-1)
    loss = coherence * (1 - near).mean()
    if tokens.shape[1] > stride:
        far = F.cosine_similarity(tokens[:, :-stride], tokens[:, stride:], dim=-1)
        loss = loss + contrast * far.abs().mean()
    return loss


def diversity_loss(tokens: torch.Tensor, stride: int = 5) -> torch.Tensor:
    """Mean off-diagonal cosine similarity of every ``stride``-th token of each clip, clamped at 0 per clip."""
    picked = F.normalize(tokens[:, ::stride].float(), dim=-1)
    k = picked.shape[1]
    if k < 2:
        return tokens.new_zeros(())
    sim = picked @ picked.transpose(1, 2)
    off = (sim.sum(dim=(1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(-1)) / (k * (k - 1))
    return off.clamp(min=0).mean()


def prediction_loss(pred: torch.Tensor, tokens: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Predictor output t against the real token t+1 (the last prediction has no target)."""
    pred, target = pred[:, :-1].float(), tokens[:, 1:].float()
    if kind == "cosine":
        return (1 - F.cosine_similarity(pred, target, dim=-1)).mean()
    return F.mse_loss(pred, target)


def weighted_total(parts: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Sum of weight * part over the parts the schedule weighs (others are only logged)."""
    total = None
    for name, w in weights.items():
        term = w * parts[name]
        total = term if total is None else total + term
    assert total is not None
    return total
