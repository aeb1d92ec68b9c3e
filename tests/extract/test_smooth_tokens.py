"""Token smoothing against a low-pass filter written out in the test (found by mutation testing)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceexpr_cli.extract.trajectories import smooth_tokens


def _low_pass(x: np.ndarray, t: np.ndarray, cutoff: float) -> np.ndarray:
    """First-order exponential low-pass at ``cutoff`` Hz on irregular samples, forwards and backwards, averaged."""
    def one_way(v, ts):
        out = [v[0].astype(np.float64)]
        for i in range(1, len(v)):
            dt = max(ts[i] - ts[i - 1], 1e-6)
            a = 1.0 / (1.0 + 1.0 / (2 * math.pi * cutoff * dt))
            out.append(a * v[i] + (1 - a) * out[-1])
        return np.stack(out)

    fwd = one_way(x, t)
    bwd = one_way(x[::-1], -t[::-1])[::-1]
    return (fwd + bwd) / 2


@pytest.fixture
def series():
    rng = np.random.default_rng(4)
    t = np.cumsum(rng.uniform(0.03, 0.09, 40))  # irregular sampling (a stride, dropped frames)
    x = rng.normal(0, 1, (40, 6)) * 3  # not unit length
    return x.astype(np.float32), t


@pytest.mark.parametrize("cutoff", [0.5, 2.0, 6.0])
def test_smoothing_is_the_zero_phase_low_pass_at_the_asked_cutoff(series, cutoff):
    x, t = series
    out = smooth_tokens(x, t, cutoff)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _low_pass(x, t, cutoff), rtol=1e-5, atol=1e-5)


def test_three_tokens_are_smoothed_two_are_kept(series):
    x, t = series
    np.testing.assert_allclose(smooth_tokens(x[:3], t[:3], 1.0), _low_pass(x[:3], t[:3], 1.0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(smooth_tokens(x[:3], t[:3], 1.0), x[:3])
    np.testing.assert_array_equal(smooth_tokens(x[:2], t[:2], 1.0), x[:2])


def test_unit_tokens_stay_on_the_sphere_others_keep_their_length(series):
    x, t = series
    unit = x / np.linalg.norm(x, axis=1, keepdims=True) * (1 + 5e-4)  # unit length up to float noise
    out = smooth_tokens(unit, t, 1.0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    ref = _low_pass(unit, t, 1.0)
    np.testing.assert_allclose(out, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)
    doubled = 2 * x / np.linalg.norm(x, axis=1, keepdims=True)  # length 2: not expression tokens, no projection
    np.testing.assert_allclose(smooth_tokens(doubled, t, 1.0), _low_pass(doubled, t, 1.0), rtol=1e-5, atol=1e-5)
