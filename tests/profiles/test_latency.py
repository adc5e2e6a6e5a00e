"""LatencyState: tail quantiles within REQ's error, exact counts and sums."""

from __future__ import annotations

import numpy as np
import pytest

from mlpulse.profiles import LatencyState, build_latency


class TestLatencyState:
    """p50/p99 match numpy within the sketch's error; invalid values are counted apart."""

    def test_p99_within_req_error(self):
        rng = np.random.default_rng(0)
        x = rng.lognormal(2, 0.8, 500_000)
        g = rng.integers(0, 100, len(x))
        acc = LatencyState()
        for s in build_latency(x, g, 100):
            acc.merge(s)
        data = np.sort(x)
        for q in (0.5, 0.9, 0.99, 0.999):
            got = acc.quantile(q)
            rank = np.searchsorted(data, got) / len(data)
            # REQ's RSE is relative to the distance from the top in HRA mode; 3 sigma.
            allowed = 3 * acc.relative_rank_error(q) * (1 - q) + 1e-6
            assert abs(rank - q) <= max(allowed, 3 * acc.relative_rank_error(q)), (q, rank)
            assert got == pytest.approx(np.quantile(x, q), rel=0.02)
        assert acc.count == len(x) and acc.sum == pytest.approx(x.sum(), rel=1e-12)
        assert acc.min == x.min() and acc.max == x.max()

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
            # Counts and sums exact; the sketches compact at random, so compare quantiles.
            assert built.to_dict() | {"req": b""} == single.to_dict() | {"req": b""}
            assert built.req.n == single.req.n
            if built.count:
                assert built.quantile(0.99) == pytest.approx(single.quantile(0.99), rel=0.05)
