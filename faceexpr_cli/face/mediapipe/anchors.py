"""SSD anchors of the BlazeFace detectors, generated from MediaPipe's anchor options (not stored).

MediaPipe describes the anchors of an SSD head by a few numbers: the input size, one stride per feature layer,
the aspect ratios and whether each cell also gets an "interpolated" anchor between this layer's scale and the
next. Consecutive layers with the same stride share one grid, so their anchors sit together per cell, which is
the order of the model's output rows. BlazeFace uses fixed-size anchors (width = height = 1 in input units), so an
anchor reduces to its centre; the box regressors are then offsets in input pixels (decode.py).

- short range (128 px): strides 8, 16, 16, 16, two anchors per layer and cell -> 16x16x2 + 8x8x6 = 896 rows.
- full range (192 px): one stride-4 layer, one anchor per cell -> 48x48 = 2304 rows.
The counts are what the models' output shapes say (1x896x16 and 1x2304x16), which is how the options were chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorOptions:
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # aspect ratios (here only 1.0) plus one if an interpolated anchor is added
    offset: float = 0.5  # anchor centre inside its cell


SHORT_RANGE = AnchorOptions(input_size=128, strides=(8, 16, 16, 16), anchors_per_layer=2)
FULL_RANGE = AnchorOptions(input_size=192, strides=(4,), anchors_per_layer=1)


def generate_anchors(opts: AnchorOptions) -> np.ndarray:
    """Anchor centres (N, 2) as fractions of the input side (x, y), in the model's output row order."""
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(opts.strides):
        stride = opts.strides[layer]
        same = 1
        while layer + same < len(opts.strides) and opts.strides[layer + same] == stride:
            same += 1
        cells = -(-opts.input_size // stride)  # ceil: a partial cell still has anchors
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = (np.stack([xs, ys], axis=-1).reshape(-1, 1, 2) + opts.offset) / cells
        centres.append(np.repeat(grid, same * opts.anchors_per_layer, axis=1).reshape(-1, 2))
        layer += same
    return np.concatenate(centres).astype(np.float32)
