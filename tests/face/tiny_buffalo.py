"""Tiny ONNX models with insightface's buffalo input/output contracts, built with torch for the tests.

They are not trained; their weights are set by hand so the outputs are predictable: the detector fires on a
bright 32x32 cell of a dark image, the landmark models return a fixed face layout, the recognition model maps
different images to different vectors. That is enough to prove fx's routing, pre/post-processing and
coordinate handling against the real insightface code, offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

STRIDES = (8, 16, 32)
KPS_OFFSETS = [(-0.6, -0.4), (0.6, -0.4), (0.0, 0.1), (-0.5, 0.7), (0.5, 0.7)]  # stride units


class TinySCRFD(nn.Module):
    """9 outputs (scores, boxes, key points at strides 8/16/32, two anchors per cell), not batched."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kps_offsets", torch.tensor(KPS_OFFSETS, dtype=torch.float32).reshape(1, 10))

    def forward(self, x):
        bright = x.mean(1, keepdim=True)
        scores, boxes, kps = [], [], []
        for s in STRIDES:
            b = nn.functional.avg_pool2d(bright, s, s)  # (1, 1, H/s, W/s)
            logit = 20 * b - 10 if s == 32 else b * 0 - 30
            score = torch.sigmoid(logit).permute(0, 2, 3, 1)  # (1, h, w, 1)
            score = torch.cat([score, score], dim=3).reshape(-1, 1)
            n = score.shape[0]
            ones = torch.ones_like(score)
            boxes.append(ones.expand(n, 4) * 2.0)
            kps.append(ones.expand(n, 10) * self.kps_offsets)
            scores.append(score)
        return (*scores, *boxes, *kps)


class TinyLandmark(nn.Module):
    """192x192 input -> a fixed layout of ``n`` points (``dim`` values each) in [-1, 1], as the 2d106/3d68
    models emit; ``extra`` leading rows pad the output like 1k3d68's 3309 values."""

    def __init__(self, layout: np.ndarray, total: int):
        super().__init__()
        values = np.zeros(total, dtype=np.float32)
        values[total - layout.size:] = layout.reshape(-1)
        self.register_buffer("layout", torch.tensor(values.reshape(1, -1)))

    def forward(self, x):
        return self.layout + x.mean((1, 2, 3)).reshape(-1, 1) * 0


class TinyArcFace(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 8, stride=8)
        self.fc = nn.Linear(8 * 14 * 14, 512)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _export(model: nn.Module, shape: tuple[int, ...], path: Path, n_out: int, dynamic_hw: bool = False) -> None:
    names = [f"out{i}" for i in range(n_out)]
    axes = {"input.1": {2: "h", 3: "w"}} if dynamic_hw else None
    torch.onnx.export(model.eval(), torch.zeros(shape), str(path), input_names=["input.1"], output_names=names,
                      dynamic_axes=axes, opset_version=17, dynamo=False)


def face_layout_68() -> np.ndarray:
    """A plausible 68-point frontal layout in [-1, 1] (x, y, z), from insightface's own mean shape."""
    from insightface.data import get_object

    mean = np.asarray(get_object("meanshape_68.pkl"), dtype=np.float64)[:, :3]
    mean = mean - mean.mean(0)
    mean[:, :2] /= np.abs(mean[:, :2]).max() * 2.0  # fill the middle half of the crop
    mean[:, 1] *= -1 if mean[36, 1] > mean[8, 1] else 1  # y down: eyes above chin
    mean[:, 2] /= np.abs(mean[:, 2]).max() * 2.0
    return mean


def build_tiny_buffalo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _export(TinySCRFD(), (1, 3, 320, 320), root / "det_10g.onnx", 9, dynamic_hw=True)
    rng = np.random.default_rng(0)
    _export(TinyLandmark(rng.uniform(-0.5, 0.5, (106, 2)), 212), (1, 3, 192, 192), root / "2d106det.onnx", 1)
    _export(TinyLandmark(face_layout_68(), 3309), (1, 3, 192, 192), root / "1k3d68.onnx", 1)
    _export(TinyArcFace(), (1, 3, 112, 112), root / "w600k_r50.onnx", 1)
    return root
