"""Fine-tuning pieces: label smoothing, mixup / cutmix targets, class-balanced draws, the combined CE + MSE loss,
warmup + cosine, layer-wise lr decay groups, test-view sampling, and k-fold discovery."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faceexpr_cli.dfer import losses as L
from faceexpr_cli.dfer.finetune import cosine_lr, param_groups
from faceexpr_cli.dfer.folds import find_folds
from faceexpr_cli.dfer.sampling import Sampling, view_starts, window
from faceexpr_cli.errors import DataError


def test_soft_targets_and_cross_entropy_match_torch():
    y = torch.tensor([0, 2, 1])
    t = L.soft_targets(y, 4, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(3)) and t[0, 0] == pytest.approx(0.9 + 0.025)
    logits = torch.randn(3, 4)
    ce, parts = L.combined_loss(logits, t, None, 4, 1.0)
    assert ce == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)), abs=1e-6)
    assert set(parts) == {"ce"}


def test_combined_loss_alpha_ce_plus_one_minus_alpha_mse():
    out = torch.randn(4, 3 + 2)  # 3 classes, 2 regression outputs (pitch, yaw)
    y = torch.tensor([0, 1, 2, 0])
    reg = torch.randn(4, 2)
    total, parts = L.combined_loss(out, L.soft_targets(y, 3, 0.0), reg, 3, 0.3)
    ce = torch.nn.functional.cross_entropy(out[:, :3], y)
    mse = ((out[:, 3:] - reg) ** 2).mean()
    assert float(total) == pytest.approx(float(0.3 * ce + 0.7 * mse), abs=1e-6)
    assert float(parts["mse"]) == pytest.approx(float(mse), abs=1e-6)


def test_mixup_blends_clips_and_targets_by_the_same_share():
    rng = np.random.default_rng(0)
    v = torch.stack([torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mv, mt, _ = L.mix(v, t, None, rng, mixup=0.8, cutmix=0.0, prob=1.0)
    lam = 1 - float(mv[0].mean())  # clip 0 (zeros) got (1 - lam) of clip 1 (ones)
    assert torch.allclose(mt[0], torch.tensor([lam, 1 - lam]), atol=1e-6)


def test_cutmix_pastes_one_box_in_every_frame_and_targets_follow_its_area():
    rng = np.random.default_rng(3)
    v = torch.stack([torch.zeros(4, 3, 16, 16), torch.ones(4, 3, 16, 16)])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mv, mt, _ = L.mix(v, t, None, rng, mixup=0.0, cutmix=1.0, prob=1.0)
    pasted = mv[0, :, 0]  # (frames, H, W) of clip 0: ones where the box is
    assert torch.equal(pasted, pasted[:1].expand_as(pasted))  # the same box in every frame
    share = float(pasted[0].mean())
    assert 0 < share < 1 and torch.allclose(mt[0], torch.tensor([1 - share, share]), atol=1e-6)
    same, same_t, _ = L.mix(v, t, None, rng, mixup=0.0, cutmix=0.0, prob=1.0)
    assert same is v and same_t is t


def test_class_balanced_weights_give_each_class_the_same_share():
    labels = [0] * 90 + [1] * 9 + [2] * 1
    w = L.balanced_weights(labels, 3)
    shares = [w[np.asarray(labels) == c].sum() for c in range(3)]
    assert np.allclose(shares, 1 / 3)


def test_warmup_then_cosine():
    assert cosine_lr(0, 1e-3, 1e-6, 10, 110) == pytest.approx(1e-4)
    assert cosine_lr(9, 1e-3, 1e-6, 10, 110) == pytest.approx(1e-3)
    assert cosine_lr(60, 1e-3, 1e-6, 10, 110) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5)
    assert cosine_lr(110, 1e-3, 1e-6, 10, 110) == pytest.approx(1e-6)
    mid = cosine_lr(35, 1.0, 0.0, 10, 110)
    assert mid == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))


def test_layer_wise_lr_decay_groups():
    from faceexpr_cli.builders import build_model

    m = build_model("videomae-base", tiny=True)  # depth 2: layers 0 (embedding), 1, 2, 3 (head)
    groups = param_groups(m, 0.05, 0.75)
    scale = {}
    for g in groups:
        scale.setdefault(g["layer"], g["lr_scale"])
        if g["weight_decay"] == 0:
            assert all(p.ndim == 1 for p in g["params"])  # biases, norms, q/v biases: no decay
    assert scale == {0: 0.75 ** 3, 1: 0.75 ** 2, 2: 0.75, 3: 1.0}
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))


def test_sampling_windows_and_test_views():
    assert window(10, 4, 4, 0).tolist() == [0, 4, 8, 9]  # a short clip repeats its last frame
    assert view_starts(100, 16, 4, 2) == [0, 100 - 61]
    s = Sampling(size=8, frames=4, stride=2, temporal_views=2, spatial_views=2)
    frames = np.zeros((20, 8, 16, 3), np.uint8)
    frames[:, :, 8:] = 255  # right half white: the two spatial crops differ
    views = s.test_views(frames)
    assert len(views) == 4 and views[0].shape == (4, 8, 8, 3)
    assert views[0].mean() == 0 and views[1].mean() == 255


def test_find_folds(tmp_path):
    for k in (1, 2):
        (tmp_path / f"split0{k}").mkdir()
        (tmp_path / f"split0{k}" / "train.csv").write_text("x")
        (tmp_path / f"split0{k}" / "test.csv").write_text("x")
    (tmp_path / "train_3.csv").write_text("x")  # no test file: not a fold
    folds = find_folds(tmp_path)
    assert [(k, tr.parent.name, te.name) for k, tr, te in folds] == [(1, "split01", "test.csv"),
                                                                     (2, "split02", "test.csv")]
    with pytest.raises(DataError):
        find_folds(tmp_path / "split01")
