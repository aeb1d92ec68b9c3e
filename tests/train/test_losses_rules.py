"""The losses against values worked out by hand: stride boundaries, the diversity normaliser, MSE targets."""

from __future__ import annotations

import math

import pytest
import torch

from faceexpr_cli.train import losses as L


def unit(*xs: float) -> torch.Tensor:
    v = torch.tensor(xs, dtype=torch.float32)
    return v / v.norm()


def test_reconstruction_loss_is_float_mse_of_the_difference():
    pred = torch.tensor([[0.0, 1.0], [0.5, 0.5]], dtype=torch.float16)
    target = torch.tensor([[1.0, 1.0], [0.0, 0.5]], dtype=torch.float64)
    out = L.reconstruction_loss(pred, target)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx((1.0 + 0.0 + 0.25 + 0.0) / 4)


def test_temporal_contrast_starts_one_frame_past_the_stride():
    same = unit(1, 0, 0).expand(1, 5, 3)  # 5 identical frames
    # T == stride: no pair 5 apart, only the coherence term (0 for a still face)
    assert L.temporal_loss(same).item() == pytest.approx(0.0)
    six = unit(1, 0, 0).expand(1, 6, 3)  # T == stride + 1: one pair (0, 5), |cos| = 1
    assert L.temporal_loss(six).item() == pytest.approx(0.3)
    assert L.temporal_loss(six, stride=6).item() == pytest.approx(0.0)
    assert L.temporal_loss(six, stride=2).item() == pytest.approx(0.3)


def test_temporal_weights_and_values_by_hand():
    a, b = unit(1, 0), unit(1, 1)  # cos(a, b) = 1/sqrt(2)
    seq = torch.stack([a, b, a, b])[None]
    c = 1 / math.sqrt(2)
    # neighbours: 3 pairs, each 1 - c; frames 2 apart (stride 2): (a, a), (b, b) -> |cos| = 1
    assert L.temporal_loss(seq, coherence=2.0, contrast=0.5, stride=2).item() == pytest.approx(2.0 * (1 - c) + 0.5)
    # stride 3: pair (a, b) -> c
    assert L.temporal_loss(seq, coherence=1.0, contrast=1.0, stride=3).item() == pytest.approx((1 - c) + c)
    # the contrast term takes the absolute value: opposite tokens 1 apart count +1, not -1
    opp = torch.stack([a, -a])[None]
    assert L.temporal_loss(opp, coherence=0.0, contrast=1.0, stride=1).item() == pytest.approx(1.0)
    assert L.temporal_loss(opp, coherence=1.0, contrast=0.0, stride=1).item() == pytest.approx(2.0)


def test_diversity_needs_two_picked_tokens():
    one = unit(1, 0).expand(2, 5, 2)  # stride 5 picks only frame 0
    out = L.diversity_loss(one)
    assert out.shape == () and out.item() == 0.0
    two = unit(1, 0).expand(1, 6, 2)  # frames 0 and 5, identical: mean off-diagonal cos = 1
    assert L.diversity_loss(two).item() == pytest.approx(1.0)


def test_diversity_mean_over_off_diagonal_pairs():
    a, b, c = unit(1, 0, 0), unit(1, 1, 0), unit(0, 0, 1)
    seq = torch.stack([a, b, c])[None]
    # stride 1: k = 3, pairs (a,b) = 1/sqrt2, (a,c) = 0, (b,c) = 0, each counted twice over k(k-1) = 6
    assert L.diversity_loss(seq, stride=1).item() == pytest.approx(2 * (1 / math.sqrt(2)) / 6)
    # the tokens are normalised first: scaling a token changes nothing
    assert L.diversity_loss(seq * torch.tensor([3.0, 0.5, 2.0])[None, :, None], stride=1).item() == pytest.approx(
        2 * (1 / math.sqrt(2)) / 6)
    # stride 2 picks a and c only: orthogonal
    assert L.diversity_loss(seq, stride=2).item() == pytest.approx(0.0)


def test_prediction_mse_against_the_next_token():
    tokens = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]])
    pred = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [9.0, 9.0]]])  # the last prediction has no target
    # pred 0 vs token 1: (0, 1) -> 1; pred 1 vs token 2: (0, 4) -> 4; mean over 4 numbers
    assert L.prediction_loss(pred, tokens).item() == pytest.approx(5 / 4)
    assert L.prediction_loss(pred, tokens, "mse").item() == pytest.approx(5 / 4)
    # cosine: 1 - cos((1,1),(1,0)) = 1 - 1/sqrt2; 1 - cos((0,0),(0,2)) = 1 (a zero vector has cos 0)
    assert L.prediction_loss(pred, tokens, "cosine").item() == pytest.approx((1 - 1 / math.sqrt(2) + 1) / 2)


def test_weighted_total_single_term_and_zero_weight():
    parts = {"a": torch.tensor(2.0), "b": torch.tensor(5.0)}
    assert L.weighted_total(parts, {"b": 3.0}).item() == pytest.approx(15.0)
    assert L.weighted_total(parts, {"a": 0.0, "b": 1.0}).item() == pytest.approx(5.0)
    assert L.weighted_total(parts, {"a": 1.0, "b": -1.0}).item() == pytest.approx(-3.0)
    with pytest.raises(AssertionError):
        L.weighted_total(parts, {})
