"""NumericState: exact counts and moments, KLL quantiles within bound, lawful merges."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpulse.errors import ConfigError
from mlpulse.profiles import KLL_K, NumericState, build_numeric

COUNT_FIELDS = ("count", "nulls", "nan", "pos_inf", "neg_inf", "rows")


def reference(values: np.ndarray, nulls: np.ndarray) -> dict:
    v = values[~nulls]
    f = v[np.isfinite(v)]
    return {
        "count": len(f), "nulls": int(nulls.sum()), "nan": int(np.isnan(v).sum()),
        "pos_inf": int((v == np.inf).sum()), "neg_inf": int((v == -np.inf).sum()),
        "rows": len(values), "finite": f,
    }


def assert_matches(state: NumericState, values: np.ndarray, nulls: np.ndarray) -> None:
    ref = reference(values, nulls)
    for name in COUNT_FIELDS:
        assert getattr(state, name) == ref[name], name
    f = ref["finite"]
    if len(f):
        assert state.min == f.min() and state.max == f.max()
        assert state.mean == pytest.approx(np.mean(f), rel=1e-9, abs=1e-12)
        assert state.variance == pytest.approx(np.var(f), rel=1e-9, abs=1e-9)
        assert_quantiles_within_bound(state, f)
    else:
        assert np.isnan(state.min) and np.isnan(state.mean) and np.isnan(state.variance)
        assert np.isnan(state.quantile(0.5))


def assert_quantiles_within_bound(state: NumericState, data: np.ndarray) -> None:
    """Each returned quantile's true rank lies within 2x the sketch's rank error of q."""
    data = np.sort(data)
    n = len(data)
    qs = np.linspace(0, 1, 21)
    bound = 2 * state.rank_error
    for q, x in zip(qs, state.quantiles(qs), strict=True):
        lo = np.searchsorted(data, x, side="left") / n  # fraction strictly below x
        hi = np.searchsorted(data, x, side="right") / n  # fraction at or below x
        assert lo - bound <= q <= hi + bound, (q, x, lo, hi, bound)


values_st = st.lists(
    st.one_of(
        st.floats(-1e9, 1e9, allow_nan=False),
        st.sampled_from([np.nan, np.inf, -np.inf, 0.0]),
    ),
    max_size=80,
)


class TestNumericState:
    """Counts, moments and quantiles agree with numpy."""

    def test_random_with_missing_and_nonfinite(self):
        rng = np.random.default_rng(0)
        x = rng.lognormal(3, 1, 200_000)
        x[rng.random(len(x)) < 0.01] = np.nan
        x[rng.random(len(x)) < 0.001] = np.inf
        x[rng.random(len(x)) < 0.001] = -np.inf
        nulls = rng.random(len(x)) < 0.02
        s = NumericState()
        s.update(x, nulls=nulls)
        assert_matches(s, x, nulls)

    def test_empty_and_all_null(self):
        s = NumericState()
        assert s.rows == 0 and np.isnan(s.quantile(0.5)) and np.isnan(s.quantiles([0.1])).all()
        s.update(np.array([1.0, np.nan]), nulls=np.array([True, True]))
        assert (s.nulls, s.nan, s.count) == (2, 0, 0)

    def test_rank_error_is_kll(self):
        assert 0.01 < NumericState().rank_error < 0.02
        assert NumericState(k=KLL_K).k == 200

    def test_merge_type_check(self):
        with pytest.raises(ConfigError):
            NumericState().merge(object())  # type: ignore[arg-type]

    @settings(max_examples=200, deadline=None)
    @given(values=values_st, data=st.data())
    def test_update_matches_numpy(self, values, data):
        x = np.array(values, dtype=float)
        nulls = np.array(data.draw(st.lists(st.booleans(), min_size=len(x), max_size=len(x))),
                         dtype=bool)
        s = NumericState()
        s.update(x, nulls=nulls)
        assert_matches(s, x, nulls)

    @settings(max_examples=100, deadline=None)
    @given(values=values_st, n_groups=st.integers(1, 6), seed=st.integers(0, 99))
    def test_build_equals_per_group_update(self, values, n_groups, seed):
        x = np.array(values, dtype=float)
        g = np.random.default_rng(seed).integers(0, n_groups, len(x))
        for i, built in enumerate(build_numeric(x, g, n_groups)):
            single = NumericState()
            single.update(x[g == i])
            assert built == single  # fewer values than k: the sketches are exact too
            assert_matches(built, x[g == i], np.zeros((g == i).sum(), bool))

    @settings(max_examples=100, deadline=None)
    @given(parts=st.lists(values_st, min_size=1, max_size=5), seed=st.integers(0, 99))
    def test_merge_of_parts_equals_whole(self, parts, seed):
        states = []
        for p in parts:
            s = NumericState()
            s.update(np.array(p, dtype=float))
            states.append(s)
        random.Random(seed).shuffle(states)
        acc = NumericState()  # empty state is the identity
        for s in states:
            acc.merge(s)
        whole = np.array([v for p in parts for v in p], dtype=float)
        assert_matches(acc, whole, np.zeros(len(whole), bool))

    @settings(max_examples=100, deadline=None)
    @given(a=values_st, b=values_st, c=values_st)
    def test_merge_commutative_and_associative(self, a, b, c):
        sa, sb, sc = (NumericState() for _ in range(3))
        for s, v in ((sa, a), (sb, b), (sc, c)):
            s.update(np.array(v, dtype=float))
        ab, ba = sa.copy(), sb.copy()
        ab.merge(sb)
        ba.merge(sa)
        assert ab.to_dict() | {"kll": 0} == ba.to_dict() | {"kll": 0} or ab.count == 0
        left = ab.copy()
        left.merge(sc)
        bc = sb.copy()
        bc.merge(sc)
        right = sa.copy()
        right.merge(bc)
        for name in COUNT_FIELDS:
            assert getattr(left, name) == getattr(right, name)
        assert left.min == right.min or np.isnan(left.min) and np.isnan(right.min)
        assert left.mean == pytest.approx(right.mean, rel=1e-9, abs=1e-6, nan_ok=True)
        assert left.m2 == pytest.approx(right.m2, rel=1e-9, abs=1e-3)
        assert left.kll.n == right.kll.n

    def test_merge_large_parts_quantiles(self):
        rng = np.random.default_rng(1)
        x = rng.normal(size=300_000)
        g = rng.integers(0, 60, len(x))
        states = build_numeric(x, g, 60)
        acc = NumericState()
        for s in states:
            acc.merge(s)
        assert_matches(acc, x, np.zeros(len(x), bool))

    def test_merge_does_not_alias(self):
        a, b = NumericState(), NumericState()
        b.update(np.array([1.0, 2.0]))
        a.merge(b)
        a.update(np.array([100.0]))
        assert b.count == 2 and b.kll.n == 2
        c = a.copy()
        c.update(np.array([5.0]))
        assert a.count == 3
