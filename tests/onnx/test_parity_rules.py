"""The parity rule at its boundary, the report fields of a comparison, and the timer, on hand-made arrays and a fake
clock (values derived by hand in the comments)."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from faceexpr_cli.onnx import parity
from faceexpr_cli.onnx.parity import OutputDiff, ParityCheck, compare, time_call, to_numpy


def _one(ref, got, atol, rtol) -> OutputDiff:
    (diff,) = compare({"y": np.asarray(ref)}, {"y": np.asarray(got)}, atol, rtol)
    return diff


def test_a_difference_exactly_at_atol_passes_and_just_past_it_fails():
    # |0.5 - 0| = 0.5 = atol + 0 * |0|: excess exactly 0 passes (numpy's allclose is <=)
    at = _one([0.0, 1.0], [0.5, 1.0], 0.5, 0.0)
    assert at.ok is True and at.worst_excess == 0.0 and at.max_abs == 0.5
    past = _one([0.0, 1.0], [0.5 + 2**-20, 1.0], 0.5, 0.0)
    assert past.ok is False and past.worst_excess == pytest.approx(2**-20)


def test_the_relative_tolerance_scales_with_the_reference():
    # ref 2, got 3: |d| = 1 = 0 + 0.5 * 2, exactly at the bound
    at = _one([2.0], [3.0], 0.0, 0.5)
    assert at.ok is True and at.worst_excess == 0.0
    # rtol 0.25: the bound is 0.5, excess 1 - 0.5 = 0.5
    past = _one([2.0], [3.0], 0.0, 0.25)
    assert past.ok is False and past.worst_excess == pytest.approx(0.5)
    # both together: bound 0.25 + 0.25 * 2 = 0.75, excess 1 - 0.75 = 0.25
    both = _one([2.0], [3.0], 0.25, 0.25)
    assert both.ok is False and both.worst_excess == pytest.approx(0.25)
    # a negative reference counts by its magnitude: bound 0.5 * |-2| = 1
    assert _one([-2.0], [-3.0], 0.0, 0.5).ok is True


def test_max_abs_and_max_rel_fields():
    d = _one([2.0, 0.0], [3.0, 1e-6], 0.0, 10.0)
    assert d.name == "y" and d.shape == [2]
    assert d.max_abs == pytest.approx(1.0)
    # rel = max(1 / (2 + 1e-6), 1e-6 / (0 + 1e-6)) = 1.0 from the zero reference
    assert d.max_rel == pytest.approx(1.0, rel=1e-9)
    assert _one([4.0], [5.0], 1.0, 0.0).max_rel == pytest.approx(1 / (4 + 1e-6), rel=1e-12)


def test_shape_mismatch_reports_the_graphs_shape_and_infinite_differences():
    d = _one(np.zeros((2, 3)), np.zeros((3, 2)), 1.0, 1.0)
    assert d.ok is False and d.shape == [3, 2]
    assert d.max_abs == d.max_rel == d.worst_excess == math.inf


def test_an_empty_output_passes_with_zero_differences():
    d = _one(np.zeros((0, 4)), np.zeros((0, 4)), 0.0, 0.0)
    assert d == OutputDiff("y", [0, 4], 0.0, 0.0, 0.0, True)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_non_finite_values_fail_with_infinite_differences():
    for ref, got in (([1.0], [np.nan]), ([np.inf], [np.inf]), ([1.0], [-np.inf])):
        d = _one(ref, got, 1e9, 1e9)
        assert d.ok is False and d.max_abs == d.max_rel == d.worst_excess == math.inf, (ref, got)


def test_every_output_is_compared_in_reference_order():
    ref = {"a": np.zeros(2), "b": np.ones(2)}
    got = {"b": np.ones(2) + 1.0, "a": np.zeros(2)}
    diffs = compare(ref, got, 0.1, 0.0)
    assert [d.name for d in diffs] == ["a", "b"] and [d.ok for d in diffs] == [True, False]
    assert diffs[1].max_abs == 1.0


def _diff(name: str, excess: float) -> OutputDiff:
    return OutputDiff(name, [1], 0.0, 0.0, excess, excess <= 0)


def test_parity_check_ok_worst_and_dict():
    check = ParityCheck("random", 2, 1e-4, 1e-3, {"x": "noise"}, [_diff("a", -1.0), _diff("b", -0.5)])
    assert check.ok is True and check.worst().name == "b"  # all pass: the closest to failing
    failing = ParityCheck("sample", 1, 0.0, 0.0, {}, [_diff("a", 3.0), _diff("b", -0.5), _diff("c", 5.0)])
    assert failing.ok is False and failing.worst().name == "c"
    one_bad = ParityCheck("s", 1, 0.0, 0.0, {}, [_diff("a", 2.0), _diff("b", -0.1)])
    assert one_bad.worst().name == "a"
    assert ParityCheck("empty", 1, 0.0, 0.0).worst() is None and ParityCheck("empty", 1, 0.0, 0.0).ok is True
    d = failing.to_dict()
    assert d["ok"] is False and d["check"] == "sample" and d["batch"] == 1 and d["atol"] == 0.0
    assert [o["name"] for o in d["outputs"]] == ["a", "b", "c"] and d["outputs"][0]["worst_excess"] == 3.0
    assert check.to_dict()["ok"] is True and check.to_dict()["inputs_from"] == {"x": "noise"}


def test_worst_prefers_a_failing_output_over_a_larger_passing_excess():
    # ok is set independently of worst_excess here, so only the "failing first" rule can pick "bad"
    check = ParityCheck("s", 1, 0.0, 0.0, {}, [OutputDiff("bad", [1], 0, 0, -2.0, False),
                                               OutputDiff("good", [1], 0, 0, -1.0, True)])
    assert check.worst().name == "bad"


def test_to_numpy_detaches_widens_bfloat16_and_passes_arrays_through():
    t = torch.tensor([1.5, 2.5], requires_grad=True)
    out = to_numpy(t * 2)
    assert isinstance(out, np.ndarray) and out.tolist() == [3.0, 5.0]
    bf = to_numpy(torch.tensor([1.0, -2.0], dtype=torch.bfloat16))
    assert bf.dtype == np.float32 and bf.tolist() == [1.0, -2.0]
    assert to_numpy(torch.tensor([1, 2], dtype=torch.int64)).dtype == np.int64
    arr = np.arange(3)
    assert to_numpy(arr) is arr
    assert to_numpy([1, 2]).tolist() == [1, 2]


class _Clock:
    """perf_counter for time_call: it only moves when the timed function runs."""

    def __init__(self, steps):
        self.now = 0.0
        self.steps = list(steps)
        self.calls = 0

    def perf_counter(self) -> float:
        return self.now

    def fn(self) -> None:
        self.calls += 1
        self.now += self.steps.pop(0) if self.steps else 0.0


def test_time_call_warms_up_then_reports_median_best_and_runs(monkeypatch):
    # 2 warm-up calls (not timed), then 3 timed ones of 1.2344 ms, 3 ms, 2 ms
    clock = _Clock([5.0, 5.0, 0.0012344, 0.003, 0.002])
    monkeypatch.setattr(parity, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    got = time_call(clock.fn, runs=3, warmup=2)
    assert clock.calls == 5
    assert got == {"median_ms": 2.0, "best_ms": 1.234, "runs": 3}  # rounded to 3 decimals


def test_time_call_defaults_and_warm_up_bounds(monkeypatch):
    clock = _Clock([])
    monkeypatch.setattr(parity, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    assert time_call(clock.fn)["runs"] == 10 and clock.calls == 12  # default 10 runs after 2 warm-up calls
    for runs, warmup, calls, timed in ((1, 2, 2, 1), (2, 2, 3, 2), (3, 2, 5, 3), (0, 2, 2, 1), (5, 0, 5, 5),
                                       (5, 3, 8, 5)):
        # warm-up: min(warmup, max(1, runs - 1)); timed: max(1, runs)
        clock.calls = 0
        assert time_call(clock.fn, runs=runs, warmup=warmup)["runs"] == timed, (runs, warmup)
        assert clock.calls == calls, (runs, warmup)


def test_time_call_stops_once_the_budget_is_passed(monkeypatch):
    clock = _Clock([0.0, 0.0] + [5.0] * 10)  # warm-up free, then 5 s a call
    monkeypatch.setattr(parity, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    got = time_call(clock.fn, runs=10, budget_s=10.0)
    assert got["runs"] == 3  # 5 s and 10 s spent are not past 10 s; 15 s is
    assert got["median_ms"] == 5000.0 and got["best_ms"] == 5000.0
    clock.steps = [0.0, 0.0] + [5.0] * 10
    assert time_call(clock.fn, runs=10, budget_s=9.0)["runs"] == 2
    clock.steps = [0.0, 0.0] + [7.0] * 30
    assert time_call(clock.fn, runs=10)["runs"] == 3  # the default budget is 20 s: 7, 14, 21


def test_time_call_really_times(monkeypatch):
    import time

    got = time_call(lambda: time.sleep(0.002), runs=2, warmup=1)
    assert got["runs"] == 2 and 2.0 <= got["best_ms"] <= got["median_ms"] < 1000


def test_a_non_finite_output_is_written_to_the_report_as_json_false(tmp_path):
    """Bug fixed: ``ok`` of a NaN output was a numpy bool, which report.json (``default=str``) wrote as the string
    "False", truthy to anyone reading the report."""
    import json

    from faceexpr_cli.onnx.staging import write_json

    check = ParityCheck("random", 1, 1e-4, 1e-3, {}, compare({"y": np.ones(2)}, {"y": np.array([1.0, np.nan])},
                                                             1e-4, 1e-3))
    write_json(tmp_path / "r.json", check.to_dict())
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["ok"] is False and written["outputs"][0]["ok"] is False
    assert type(compare({"y": np.ones(1)}, {"y": np.ones(1)}, 0.0, 0.0)[0].ok) is bool
