"""The ``landmarks`` swap engine's graph: piecewise-affine warp, colour transfer and Laplacian-pyramid blend.

Everything that touches pixels runs here, in torch, and exports to ONNX with dynamic height and width; the
geometry (which triangle each pixel lies in and each triangle's affine map) is computed beside it
(``swap.mesh``), as the TPS fit is for ``fx animate``. Coordinates follow ``grid_sample`` (align_corners=False,
x then y, in [-1, 1]). Heights and widths must be multiples of ``2 ** levels`` (the pipeline pads crops).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    x = (torch.arange(w, dtype=like.dtype, device=like.device) * 2 + 1) / w - 1
    y = (torch.arange(h, dtype=like.dtype, device=like.device) * 2 + 1) / h - 1
    return torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w)], dim=-1)


def piecewise_affine(source: torch.Tensor, tri_index: torch.Tensor, affines: torch.Tensor) -> torch.Tensor:
    """Sample ``source`` (B, 3, Hs, Ws) at each output pixel through its triangle's affine map.

    ``tri_index`` (B, 1, H, W): the triangle number of each pixel (float, 0..K-1; pixels outside every triangle may
    hold any index, the mask hides them); ``affines`` (B, K, 6): rows ``a b c d e f`` mapping output (x, y) to
    source (a x + b y + c, d x + e y + f)."""
    b, _, h, w = tri_index.shape
    grid = _grid(h, w, source).reshape(1, h * w, 2)
    k = affines.shape[1]
    idx = tri_index.reshape(b, h * w).round().clamp(0, k - 1).long()
    m = torch.gather(affines, 1, idx.unsqueeze(-1).expand(b, h * w, 6))
    x, y = grid[..., 0], grid[..., 1]
    sx = m[..., 0] * x + m[..., 1] * y + m[..., 2]
    sy = m[..., 3] * x + m[..., 4] * y + m[..., 5]
    coords = torch.stack([sx, sy], dim=-1).reshape(b, h, w, 2)
    return F.grid_sample(source, coords, mode="bilinear", padding_mode="border", align_corners=False)


def _down(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 2)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def pyramid_blend(fg: torch.Tensor, bg: torch.Tensor, mask: torch.Tensor, levels: int) -> torch.Tensor:
    """Burt-Adelson blending: each band of the Laplacian pyramids mixed by the mask's Gaussian pyramid, so low
    frequencies (shading) cross the seam smoothly and high ones (skin detail) stay sharp on each side.

    Computed on the difference: the blend is linear in both images and the background's own pyramid collapses
    back to it exactly, so ``bg + collapse(bands of (fg - bg) x mask)`` is the same result with one pyramid
    instead of two (half the resampling)."""
    d, m = fg - bg, mask
    bands = []
    for _ in range(levels):
        d2 = _down(d)
        bands.append((d - _up(d2)) * m)
        d, m = d2, _down(m)
    out = d * m
    for band in reversed(bands):
        out = _up(out) + band
    return bg + out


class SwapBlend(nn.Module):
    """(source face image, driver crop, triangle map, affines, colour gain/bias, mask) -> the swapped crop.

    ``colour`` (B, 6): per channel gain then bias that move the warped source's skin statistics onto the driver's
    (computed, and smoothed over time, by the engine). ``mask`` (B, 1, H, W) in [0, 1]: where the source shows."""

    def __init__(self, levels: int = 4):
        super().__init__()
        self.levels = int(levels)

    def forward(self, source: torch.Tensor, frame: torch.Tensor, tri_index: torch.Tensor, affines: torch.Tensor,
                colour: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        warped = piecewise_affine(source, tri_index, affines)
        gain, bias = colour[:, :3, None, None], colour[:, 3:, None, None]
        warped = (warped * gain + bias).clamp(0, 1)
        return pyramid_blend(warped, frame, mask, self.levels).clamp(0, 1)

    def onnx_example_inputs(self, part, batch: int) -> dict[str, torch.Tensor]:
        """Valid inputs for the export check: triangle numbers in range, near-identity affines, a soft mask."""
        g = torch.Generator().manual_seed(0)
        h = w = 16 * 2 ** max(self.levels - 2, 0)
        k = 8
        affines = torch.tensor([1.0, 0, 0, 0, 1.0, 0]).repeat(batch, k, 1) + 0.05 * torch.randn(batch, k, 6,
                                                                                                  generator=g)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        mask = (1 - (xx**2 + yy**2)).clamp(0, 1)[None, None].expand(batch, 1, h, w).contiguous()
        tri = ((xx + 1) / 2 * (k - 1)).round()[None, None].expand(batch, 1, h, w).contiguous()
        return {"source": torch.rand(batch, 3, h + 8, w + 8, generator=g), "frame": torch.rand(batch, 3, h, w,
                                                                                                 generator=g),
                "tri_index": tri, "affines": affines,
                "colour": torch.tensor([1.0, 1.0, 1.0, 0, 0, 0]).repeat(batch, 1), "mask": mask}
