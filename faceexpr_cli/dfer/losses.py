"""Fine-tuning losses: soft-target cross-entropy with label smoothing, mixup / cutmix on clips, class-balanced
sampling weights, and seed 004's combined loss ``alpha * CE + (1 - alpha) * MSE`` over ``num_classes`` class
outputs followed by ``num_regression`` regression outputs."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def soft_targets(labels: torch.Tensor, classes: int, smoothing: float) -> torch.Tensor:
    off = smoothing / classes
    return F.one_hot(labels, classes).float() * (1 - smoothing) + off


def mix(video: torch.Tensor, targets: torch.Tensor, regression: torch.Tensor | None, rng: np.random.Generator,
        mixup: float, cutmix: float, prob: float):
    """Mixup (whole clips blended) or cutmix (one box, the same in every frame, pasted from another clip): the
    batch is paired with itself reversed, targets are blended by the share each clip contributes."""
    if (mixup <= 0 and cutmix <= 0) or rng.random() >= prob or video.shape[0] < 2:
        return video, targets, regression
    use_cutmix = cutmix > 0 and (mixup <= 0 or rng.random() < 0.5)
    lam = float(rng.beta(cutmix, cutmix) if use_cutmix else rng.beta(mixup, mixup))
    other = video.flip(0)
    if use_cutmix:
        h, w = video.shape[-2:]
        cut = np.sqrt(1 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = np.clip([cy - ch // 2, cy + ch // 2], 0, h)
        x0, x1 = np.clip([cx - cw // 2, cx + cw // 2], 0, w)
        video = video.clone()
        video[..., y0:y1, x0:x1] = other[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        video = video * lam + other * (1 - lam)
    targets = targets * lam + targets.flip(0) * (1 - lam)
    if regression is not None:
        regression = regression * lam + regression.flip(0) * (1 - lam)
    return video, targets, regression


def combined_loss(outputs: torch.Tensor, targets: torch.Tensor, regression: torch.Tensor | None,
                  num_classes: int, alpha: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``alpha * CE(outputs[:, :C], soft targets) + (1 - alpha) * MSE(outputs[:, C:], regression)``."""
    logits = outputs[:, :num_classes].float()
    ce = torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
    parts = {"ce": ce}
    if regression is None or outputs.shape[1] == num_classes:
        return ce, parts
    mse = F.mse_loss(outputs[:, num_classes:].float(), regression.float())
    parts["mse"] = mse
    return alpha * ce + (1 - alpha) * mse, parts


def balanced_weights(labels: list[int], classes: int) -> np.ndarray:
    """Per-clip probabilities that give every present class the same share of draws."""
    counts = np.bincount(np.asarray(labels), minlength=classes).astype(np.float64)
    w = 1.0 / counts[np.asarray(labels)]
    return w / w.sum()
