"""dfer-tokens: a temporal transformer over per-frame features learns a temporal pattern that no single frame
shows (rising vs falling vs flat), on a CPU in a second or two."""

from __future__ import annotations

import torch

from faceexpr_cli.builders import build_model


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    t = torch.linspace(-1, 1, 8)
    slope = torch.tensor([1.0, -1.0, 0.0])[y]
    level = torch.rand(n, 1, generator=g) * 2 - 1  # the frame values overlap between classes
    x = torch.randn(n, 8, 7, generator=g) * 0.1 + (level + slope[:, None] * t)[..., None]
    return x, y


def test_learns_a_temporal_pattern_and_accepts_shorter_clips():
    torch.manual_seed(0)
    m = build_model("dfer-tokens", tiny=True, num_classes=3, frames=8, dim=32)
    xtr, ytr = _data(256, 0)
    xte, yte = _data(128, 1)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for _ in range(100):
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.cross_entropy(m.outputs(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        acc = (m(xte)[0].argmax(1) == yte).float().mean().item()
        short = m(xte[:, :5])
    assert acc >= 0.9, acc
    assert short[1].shape == (128, 3) and torch.allclose(short[1].sum(1), torch.ones(128))
