"""The expression transformer: one L2-normalised expression token per face image.

A learned query cross-attends to [subject embedding ; patch tokens + positional + learnable delta positional],
so that who the person is comes from the subject row and what the face does has to come from the patches. The
subject-invariant variant drops the subject row (no subject input at all). All frames of all clips go through as
one batch; nothing here loops over frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def patch_count(image_size: int | list[int] | tuple[int, int], patch_size: int) -> tuple[int, int]:
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {patch_size}")
    return h // patch_size, w // patch_size


class ExpressionTransformer(nn.Module):
    """``forward(patch_tokens (B,N,Dt), pos (1|B,N,Dt), subject_ids (B,) int64) -> (B, dim)`` unit vectors.

    ``delta_pos`` is shared with the reconstruction model in joint training (``positional(pos)``), so the
    reconstruction loss shapes it too, as in the seed.
    """

    def __init__(self, dim: int = 384, heads: int = 4, layers: int = 4, ff_dim: int = 768,
                 max_subjects: int = 501, image_size: int | list[int] = 518, patch_size: int = 14,
                 token_dim: int = 384, dropout: float = 0.1, subject_invariant: bool = False,
                 norm_first: bool = False):
        super().__init__()
        gh, gw = patch_count(image_size, patch_size)
        self.num_patches = gh * gw
        self.dim = dim
        self.subject_invariant = subject_invariant
        self.max_subjects = max_subjects
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.delta_pos = nn.Parameter(torch.zeros(1, self.num_patches, token_dim))
        self.in_proj = nn.Linear(token_dim, dim) if token_dim != dim else nn.Identity()
        self.subjects = None if subject_invariant else nn.Embedding(max_subjects, dim)
        if self.subjects is not None:
            nn.init.normal_(self.subjects.weight, std=0.02)
        layer = nn.TransformerDecoderLayer(dim, heads, ff_dim, dropout, batch_first=True, norm_first=norm_first)
        self.decoder = nn.TransformerDecoder(layer, layers)

    def positional(self, pos: torch.Tensor) -> torch.Tensor:
        """The tokenizer's positional embeddings plus the learned delta."""
        return pos + self.delta_pos

    def forward(self, patch_tokens: torch.Tensor, pos: torch.Tensor,
                subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        b = patch_tokens.shape[0]
        memory = self.in_proj(patch_tokens + self.positional(pos))
        if self.subjects is not None:
            if subject_ids is None:
                raise ValueError("this expression transformer needs subject_ids (it is not subject-invariant)")
            memory = torch.cat([self.subjects(subject_ids).unsqueeze(1), memory], dim=1)
        out = self.decoder(self.query.expand(b, -1, -1), memory)
        return F.normalize(out[:, 0], dim=-1)
