"""LatencyState: quantiles equal the reference DDSketch and lie within its relative accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from ddsketch import DDSketch

from mlpulse.profiles import LatencyState, build_latency
from mlpulse.profiles.latency import RELATIVE_ACCURACY


def _exact_quantile(x: np.ndarray, q: float) -> float:
    """DDSketch's rank rule on the exact data: the value at rank floor(q * (n - 1))."""
    data = np.sort(x)
    return float(data[int(np.floor(q * (len(data) - 1)))])


class TestLatencyState:
    """Quantiles match the reference implementation; counts and sums are exact."""

    QUANTILES = (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)

    def test_equals_reference_ddsketch(self):
        rng = np.random.default_rng(0)
        x = rng.lognormal(2, 0.8, 20_000)
        reference = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        for value in x:
            reference.add(float(value))
        s = LatencyState()
        s.update(x)
        for q in self.QUANTILES[1:-1]:
            assert s.quantile(q) == pytest.approx(reference.get_quantile_value(q), rel=1e-9)

    def test_within_relative_accuracy_after_merges(self):
        rng = np.random.default_rng(1)
        x = np.concatenate([rng.lognormal(2, 0.8, 300_000), rng.exponential(500, 1_000)])
        g = rng.integers(0, 100, len(x))
        states = build_latency(x, g, 100)
        acc = LatencyState()
        for s in states:
            acc.merge(s)
        many = LatencyState.merge_many(states)
        assert many == acc
        for q in self.QUANTILES:
            exact = _exact_quantile(x, q)
            assert abs(acc.quantile(q) - exact) <= RELATIVE_ACCURACY * exact * (1 + 1e-9), q
        assert acc.count == len(x) and acc.sum == pytest.approx(x.sum(), rel=1e-12)
        assert acc.min == x.min() and acc.max == x.max()

    def test_deterministic(self):
        x = np.random.default_rng(2).lognormal(1, 1, 5_000)
        a, b = LatencyState(), LatencyState()
        a.update(x)
        b.update(x)
        assert a.to_dict() == b.to_dict()

    def test_zero_latencies_and_tiny_values(self):
        s = LatencyState()
        s.update(np.array([0.0, 0.0, 0.0, 1e-12, 1e6]))
        assert s.quantile(0.5) == 0.0 and s.zeros == 4
        assert s.quantile(1.0) == pytest.approx(1e6, rel=RELATIVE_ACCURACY)

    def test_invalid_values(self):
        s = LatencyState()
        s.update(np.array([np.nan, -1.0, np.inf, 5.0]))
        assert (s.count, s.invalid, s.sum, s.min, s.max) == (1, 3, 5.0, 5.0, 5.0)

    def test_empty(self):
        s = LatencyState()
        assert np.isnan(s.quantile(0.99)) and np.isnan(s.mean) and s.count == 0
        s.merge(LatencyState())
        assert s == LatencyState()

    def test_build_equals_per_group_update(self):
        rng = np.random.default_rng(1)
        x = rng.exponential(10, 3000)
        x[::100] = np.nan
        g = rng.integers(0, 4, len(x))
        for i, built in enumerate(build_latency(x, g, 5)):
            single = LatencyState()
            single.update(x[g == i])
            assert built == single
