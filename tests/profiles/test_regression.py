"""RegressionState: sums exact per group, merges lawful."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpulse.profiles import RegressionState, build_regression

finite = st.floats(-1e6, 1e6)
rows_st = st.lists(st.tuples(finite, finite), max_size=50)


def arrays(rows):
    return np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float)


class TestRegressionState:
    """Error sums equal numpy's; build and merge agree with a single update."""

    def test_sums_vs_numpy(self):
        rng = np.random.default_rng(0)
        y, p = rng.normal(size=1000), rng.normal(size=1000)
        s = RegressionState()
        s.update(y, p)
        e = p - y
        assert s.n == 1000
        assert s.sum_error == pytest.approx(e.sum(), rel=1e-12)
        assert s.sum_abs_error == pytest.approx(np.abs(e).sum(), rel=1e-12)
        assert s.sum_sq_error == pytest.approx((e**2).sum(), rel=1e-12)
        assert s.mean_true == pytest.approx(y.mean(), rel=1e-12)
        assert s.m2_true / s.n == pytest.approx(y.var(), rel=1e-12)

    @settings(max_examples=150, deadline=None)
    @given(rows=rows_st, n_groups=st.integers(1, 5), seed=st.integers(0, 99))
    def test_build_equals_per_group_update(self, rows, n_groups, seed):
        y, p = arrays(rows)
        g = np.random.default_rng(seed).integers(0, n_groups, len(y))
        for i, built in enumerate(build_regression(y, p, g, n_groups)):
            single = RegressionState()
            single.update(y[g == i], p[g == i])
            assert built == single

    @settings(max_examples=150, deadline=None)
    @given(parts=st.lists(rows_st, min_size=1, max_size=5), seed=st.integers(0, 99))
    def test_merge_order_does_not_matter(self, parts, seed):
        states = []
        for part in parts:
            s = RegressionState()
            s.update(*arrays(part))
            states.append(s)
        whole = RegressionState()
        whole.update(*arrays([r for part in parts for r in part]))
        for k in range(2):
            random.Random(seed + k).shuffle(states)
            acc = RegressionState()
            for s in states:
                acc.merge(s)
            assert acc.n == whole.n
            for name in ("sum_error", "sum_abs_error", "sum_sq_error", "sum_ape", "m2_true"):
                assert getattr(acc, name) == pytest.approx(getattr(whole, name), rel=1e-9, abs=1e-3)
            assert acc.mean_true == pytest.approx(whole.mean_true, rel=1e-9, abs=1e-6, nan_ok=True)

    def test_commutative_exactly(self):
        a, b = RegressionState(), RegressionState()
        a.update(np.array([1.0, 2.5]), np.array([0.0, 3.0]))
        b.update(np.array([7.0]), np.array([6.0]))
        ab, ba = a.copy(), b.copy()
        ab.merge(b)
        ba.merge(a)
        assert ab == ba
