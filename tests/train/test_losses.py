"""Each loss on hand-made inputs, and the schedule's values at given steps."""

from __future__ import annotations

import pytest
import torch

from faceexpr_cli.config.schemas.train_joint import ScheduleSpec
from faceexpr_cli.train import losses as L
from faceexpr_cli.train.schedule import CombinedSchedule


def axis(i: int, d: int = 4) -> torch.Tensor:
    return torch.eye(d)[i]


def test_reconstruction_is_mse():
    pred, target = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert L.reconstruction_loss(pred, target).item() == pytest.approx(0.25)


def test_temporal_loss_coherence_and_contrast():
    same = axis(0).expand(1, 8, 4)  # a still face: coherent, but frames 5 apart are identical (|cos| = 1)
    assert L.temporal_loss(same).item() == pytest.approx(0.3)
    # frames alternate between two orthogonal tokens: every neighbour differs (1 - cos = 1), stride 5 is odd -> cos 0
    alt = torch.stack([axis(i % 2) for i in range(8)])[None]
    assert L.temporal_loss(alt).item() == pytest.approx(0.7)
    assert L.temporal_loss(same, coherence=1.0, contrast=0.0).item() == pytest.approx(0.0)
    short = axis(0).expand(1, 4, 4)  # no pair 5 apart: the contrast term is left out
    assert L.temporal_loss(short).item() == pytest.approx(0.0)


def test_diversity_loss_counts_every_fifth_token():
    same = axis(0).expand(2, 10, 4)
    assert L.diversity_loss(same).item() == pytest.approx(1.0)
    ortho = torch.stack([axis(i // 5) for i in range(10)])[None]  # tokens 0 and 5 differ
    assert L.diversity_loss(ortho).item() == pytest.approx(0.0)
    opposite = torch.stack([axis(0) * (1 if i < 5 else -1) for i in range(10)])[None]
    assert L.diversity_loss(opposite).item() == pytest.approx(0.0)  # clamped at 0, never rewarded below
    half = torch.cat([same[:1], ortho])  # per-clip values averaged over clips
    assert L.diversity_loss(half).item() == pytest.approx(0.5)


def test_prediction_loss_and_weighted_total():
    seq = torch.stack([axis(i % 4) for i in range(6)])[None]
    perfect = torch.cat([seq[:, 1:], seq[:, :1]], dim=1)  # output t = token t+1
    assert L.prediction_loss(perfect, seq).item() == pytest.approx(0.0)
    assert L.prediction_loss(perfect, seq, "cosine").item() == pytest.approx(0.0)
    assert L.prediction_loss(seq, seq, "cosine").item() == pytest.approx(1.0)
    parts = {"a": torch.tensor(2.0), "b": torch.tensor(3.0), "logged_only": torch.tensor(9.0)}
    assert L.weighted_total(parts, {"a": 0.5, "b": 2.0}).item() == pytest.approx(7.0)


def test_seed_schedule_values_at_given_steps():
    spec = ScheduleSpec()  # seed defaults: warm-up 3000 steps, LR 1e-6 -> 5e-5 -> 1e-6
    s = CombinedSchedule.from_spec(spec, max_steps=13000)
    assert s.lr_at(0) == pytest.approx(1e-6)
    assert s.lr_at(1500) == pytest.approx((1e-6 + 5e-5) / 2)
    assert s.lr_at(3000) == pytest.approx(5e-5)
    assert s.lr_at(8000) == pytest.approx((5e-5 + 1e-6) / 2)
    assert s.lr_at(13000) == pytest.approx(1e-6) and s.lr_at(99999) == pytest.approx(1e-6)
    w = s.weights_at(0)
    assert w == pytest.approx({"reconstruction": 0.1, "temporal": 0.4, "diversity": 0.3})
    assert s.weights_at(3000) == pytest.approx({"reconstruction": 0.2, "temporal": 0.3, "diversity": 0.2})
    assert s.weights_at(8000)["reconstruction"] == pytest.approx(0.35)
    assert s.weights_at(20000) == pytest.approx({"reconstruction": 0.5, "temporal": 0.2, "diversity": 0.2})


def test_schedule_floor_and_optimizer():
    spec = ScheduleSpec(warmup_steps=0, total_steps=10, lr={"initial": 0.0, "warmup": 1.0, "final": 0.0},
                        min_lr=0.1, weights={})
    s = CombinedSchedule.from_spec(spec, 10)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=5.0)
    lr, weights = s.apply(opt, 5)
    assert lr == pytest.approx(0.5) and opt.param_groups[0]["lr"] == pytest.approx(0.5) and weights == {}
    assert s.lr_at(10) == pytest.approx(0.1)  # the floor
    state = s.state_dict()
    fresh = CombinedSchedule.from_spec(spec, 10)
    fresh.load_state_dict(state)
    assert fresh.step == 5
