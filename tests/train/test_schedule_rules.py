"""The piecewise-linear schedule at and just past each of its boundaries, its defaults and its saved state."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from faceexpr_cli.train.schedule import CombinedSchedule, Ramp


def test_ramp_warmup_part_is_linear_from_initial():
    r = Ramp(initial=1.0, warmup=3.0, final=0.0)
    # 1 + (3 - 1) * step / 4
    assert r.at(0, 4, 10) == pytest.approx(1.0)
    assert r.at(1, 4, 10) == pytest.approx(1.5)
    assert r.at(3, 4, 10) == pytest.approx(2.5)
    assert r.at(4, 4, 10) == pytest.approx(3.0)  # the boundary: exactly the warm-up value


def test_ramp_decay_part_and_its_end():
    r = Ramp(initial=0.0, warmup=2.0, final=1.0)
    # decay from 2 to 1 over steps 4..10 (span 6): 2 - step_past_warmup / 6
    assert r.at(5, 4, 10) == pytest.approx(2.0 - 1 / 6)
    assert r.at(7, 4, 10) == pytest.approx(1.5)
    assert r.at(9, 4, 10) == pytest.approx(2.0 - 5 / 6)
    assert r.at(10, 4, 10) == pytest.approx(1.0)
    assert r.at(11, 4, 10) == pytest.approx(1.0)  # past the end it stays at the final value
    assert r.at(100, 4, 10) == pytest.approx(1.0)


def test_no_warmup_starts_at_the_warmup_value():
    r = Ramp(initial=5.0, warmup=2.0, final=0.0)
    assert r.at(0, 0, 4) == pytest.approx(2.0)  # no division by the zero warm-up length
    assert r.at(1, 0, 4) == pytest.approx(1.5)


def test_a_decay_of_no_length_jumps_to_the_final_value():
    r = Ramp(initial=0.0, warmup=2.0, final=1.0)
    # total == warmup: the span is taken as one step, so one step past the warm-up is the final value
    assert r.at(3, 3, 3) == pytest.approx(2.0)
    assert r.at(4, 3, 3) == pytest.approx(1.0)
    assert r.at(4, 3, 2) == pytest.approx(1.0)  # total before the warm-up end: same rule


def _spec(total_steps=None, warmup_steps=2, min_lr=0.0):
    ramp = SimpleNamespace(initial=0.0, warmup=1.0, final=0.5)
    weight = SimpleNamespace(initial=1.0, warmup=0.0, final=4.0)
    return SimpleNamespace(warmup_steps=warmup_steps, total_steps=total_steps, lr=ramp, min_lr=min_lr,
                           weights={"temporal": weight})


def test_from_spec_takes_total_steps_or_max_steps():
    s = CombinedSchedule.from_spec(_spec(total_steps=None), max_steps=12)
    assert (s.warmup_steps, s.total_steps, s.min_lr, s.step) == (2, 12, 0.0, 0)
    assert s.lr == Ramp(0.0, 1.0, 0.5) and s.weights == {"temporal": Ramp(1.0, 0.0, 4.0)}
    t = CombinedSchedule.from_spec(_spec(total_steps=6), max_steps=12)
    assert t.total_steps == 6
    # step 4 of a 2 -> 6 decay is half way: lr 1 -> 0.5 gives 0.75, the weight 0 -> 4 gives 2
    assert t.lr_at(4) == pytest.approx(0.75)
    assert t.weights_at(4) == {"temporal": pytest.approx(2.0)}
    assert t.weights_at(1) == {"temporal": pytest.approx(0.5)}


def test_defaults_no_floor_no_weights_step_zero():
    s = CombinedSchedule(warmup_steps=0, total_steps=4, lr=Ramp(0.0, 0.2, 0.0))
    assert s.min_lr == 0.0 and s.weights == {} and s.step == 0
    assert s.lr_at(4) == 0.0  # no floor by default
    assert s.weights_at(2) == {}
    assert s.state_dict()["step"] == 0


def test_the_floor_applies_only_below_it():
    s = CombinedSchedule(warmup_steps=0, total_steps=4, lr=Ramp(0.0, 1.0, 0.0), min_lr=0.3)
    assert s.lr_at(1) == pytest.approx(0.75)  # above the floor: the ramp's value
    assert s.lr_at(3) == pytest.approx(0.3)  # 0.25 is below it
    assert s.lr_at(4) == pytest.approx(0.3)


def test_apply_sets_every_param_group_and_records_the_step():
    s = CombinedSchedule(warmup_steps=2, total_steps=4, lr=Ramp(0.0, 1.0, 0.0),
                         weights={"a": Ramp(2.0, 0.0, 0.0), "b": Ramp(1.0, 1.0, 3.0)})
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 9.0}], lr=7.0)
    lr, weights = s.apply(opt, 1)
    assert lr == pytest.approx(0.5) and s.step == 1
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.5), pytest.approx(0.5)]
    assert weights == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    lr, weights = s.apply(opt, 3)
    assert lr == pytest.approx(0.5) and weights == {"a": pytest.approx(0.0), "b": pytest.approx(2.0)}


def test_state_dict_records_every_setting_and_load_restores_the_step():
    s = CombinedSchedule(warmup_steps=3, total_steps=9, lr=Ramp(0.1, 0.2, 0.3), min_lr=0.05,
                         weights={"w": Ramp(1.0, 2.0, 3.0)}, step=7)
    assert s.state_dict() == {"step": 7, "warmup_steps": 3, "total_steps": 9,
                              "lr": {"initial": 0.1, "warmup": 0.2, "final": 0.3}, "min_lr": 0.05,
                              "weights": {"w": {"initial": 1.0, "warmup": 2.0, "final": 3.0}}}
    fresh = CombinedSchedule(warmup_steps=0, total_steps=1, lr=Ramp(0.0, 0.0, 0.0))
    fresh.load_state_dict({"step": "5"})
    assert fresh.step == 5 and isinstance(fresh.step, int)
    assert fresh.warmup_steps == 0  # only the step is restored: the values follow the run's own settings
