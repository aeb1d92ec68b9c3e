"""Masked video pretraining (VideoMAE with MAE-DFER's joint appearance + motion target).

Tube masking hides the same spatial patches in every tubelet of a clip (90% by default), so a patch cannot be
copied from its temporal neighbour. The encoder sees the visible tokens only; a narrow decoder gets them back
with a shared mask token at every hidden place and predicts, for each hidden token, two targets:

- appearance: the tubelet's pixels, normalised per patch (mean 0, variance 1, as VideoMAE's ``normlize_target``);
- motion: the differences between consecutive frames inside the tubelet, normalised the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceexpr_cli.nn.videomae import Block, VideoMAE, sinusoid_table


def tube_mask(batch: int, grid: tuple[int, int, int], ratio: float, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, N) bool, True = hidden: the same round(ratio * h * w) spatial patches in every time step."""
    t, h, w = grid
    hidden = int(round(ratio * h * w))
    if not 0 < hidden < h * w:
        raise ValueError(f"mask ratio {ratio} hides {hidden} of {h * w} patches per frame: keep at least one of each")
    noise = torch.rand(batch, h * w, generator=generator)
    order = noise.argsort(dim=1)
    spatial = torch.zeros(batch, h * w, dtype=torch.bool)
    spatial.scatter_(1, order[:, :hidden], True)
    return spatial[:, None, :].expand(batch, t, h * w).reshape(batch, -1).to(device)


def _patches(x: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, N, tubelet, p, p, C) in token order (t, h, w)."""
    b, t, c, h, w = x.shape
    x = x.reshape(b, t // tubelet, tubelet, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)
    return x.reshape(b, (t // tubelet) * (h // patch) * (w // patch), tubelet, patch, patch, c)


def _norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=True, keepdim=True)
    return (x - mean) / (var + eps).sqrt()


def mae_targets(video: torch.Tensor, tubelet: int, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: (appearance (B, N, tubelet*p*p*3), motion (B, N, (tubelet-1)*p*p*3)), each normalised per patch.

    ``video`` is (B, T, 3, H, W) in [0, 1]; pixels are ImageNet-normalised first, as the encoder sees them."""
    from faceexpr_cli.nn.videomae import IMAGENET_MEAN, IMAGENET_STD

    mean = video.new_tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
    std = video.new_tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    tubes = _patches((video - mean) / std, tubelet, patch)  # (B, N, tt, p, p, C)
    b, n = tubes.shape[:2]
    appearance = _norm(tubes.reshape(b, n, tubelet, -1)).reshape(b, n, -1)
    diff = tubes[:, :, 1:] - tubes[:, :, :-1]
    motion = _norm(diff.reshape(b, n, tubelet - 1, -1)).reshape(b, n, -1)
    return appearance, motion


class VideoMAEPretrainer(nn.Module):
    """Encoder (a ``VideoMAE`` without head) + decoder with an appearance head and a motion head."""

    def __init__(self, encoder: VideoMAE, decoder_dim: int = 384, decoder_depth: int = 4, decoder_heads: int = 6,
                 mlp_ratio: float = 4.0, eps: float = 1e-6):
        super().__init__()
        if encoder.tubelet < 2:
            raise ValueError("the motion target needs tubelets of 2 or more frames")
        self.encoder = encoder
        p, tt = encoder.patch_size, encoder.tubelet
        self.encoder_to_decoder = nn.Linear(encoder.dim, decoder_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        n = encoder.pos_table.shape[1]
        self.register_buffer("decoder_pos", sinusoid_table(n, decoder_dim), persistent=False)
        self.decoder_blocks = nn.ModuleList(Block(decoder_dim, decoder_heads, mlp_ratio, eps)
                                            for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=eps)
        self.head_appearance = nn.Linear(decoder_dim, tt * p * p * 3)
        self.head_motion = nn.Linear(decoder_dim, (tt - 1) * p * p * 3)

    def forward(self, video: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions for the hidden tokens, in token order: (B, M, appearance), (B, M, motion)."""
        b = video.shape[0]
        visible = self.encoder.features(video, keep=~hidden)
        x = self.encoder_to_decoder(visible)
        pos = self.decoder_pos.expand(b, -1, -1).to(x.dtype)
        d = x.shape[-1]
        pos_vis = pos[~hidden].reshape(b, -1, d)
        pos_hid = pos[hidden].reshape(b, -1, d)
        x = torch.cat([x + pos_vis, self.mask_token.to(x.dtype) + pos_hid], dim=1)
        for block in self.decoder_blocks:
            x = block(x)
        x = self.decoder_norm(x[:, -pos_hid.shape[1]:])
        return self.head_appearance(x), self.head_motion(x)


def mae_loss(model: VideoMAEPretrainer, video: torch.Tensor, hidden: torch.Tensor,
             motion_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MSE on the hidden tokens: appearance + motion_weight * motion."""
    enc = model.encoder
    appearance, motion = mae_targets(video.float(), enc.tubelet, enc.patch_size)
    b = video.shape[0]
    want_a = appearance[hidden].reshape(b, -1, appearance.shape[-1])
    want_m = motion[hidden].reshape(b, -1, motion.shape[-1])
    pred_a, pred_m = model(video, hidden)
    parts = {"appearance": F.mse_loss(pred_a.float(), want_a), "motion": F.mse_loss(pred_m.float(), want_m)}
    return parts["appearance"] + motion_weight * parts["motion"], parts
