"""CategoricalState: exact counts under the cap, sketches past it, lawful merges."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from datasketches import hll_sketch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpulse.profiles import CATEGORY_CAP, CategoricalState, build_categorical


def obj(values) -> np.ndarray:
    return np.array(values, dtype=object)


labels_st = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "ü", "", "long name"])),
                     max_size=60)


class TestExact:
    """Counts are exact while distinct values stay within the cap."""

    def test_counts_nulls_and_top(self):
        s = CategoricalState()
        s.update(obj(["x", "y", "x", None, np.nan, "z", "x"]))
        assert s.frequencies() == {"x": 3, "y": 1, "z": 1}
        assert (s.count, s.nulls, s.rows, s.distinct, s.is_exact) == (5, 2, 7, 3, True)
        assert s.top(2) == [("x", 3), ("y", 1)]

    def test_null_mask_and_pyarrow_input(self):
        s = CategoricalState()
        s.update(pa.array(["a", None, "b", "a"]), nulls=np.array([False, False, True, False]))
        assert s.frequencies() == {"a": 2} and s.nulls == 2
        t = CategoricalState()
        t.update(pa.chunked_array([["a"], ["a", None]]).dictionary_encode())
        assert t.frequencies() == {"a": 2} and t.nulls == 1

    def test_non_string_values_are_stringified(self):
        s = CategoricalState()
        s.update(np.array([1, 2, 2]))
        assert s.frequencies() == {"1": 1, "2": 2}

    @settings(max_examples=150, deadline=None)
    @given(values=labels_st, n_groups=st.integers(1, 5), seed=st.integers(0, 99))
    def test_build_equals_per_group_update(self, values, n_groups, seed):
        v = obj(values)
        g = np.random.default_rng(seed).integers(0, n_groups, len(v))
        for i, built in enumerate(build_categorical(v, g, n_groups)):
            single = CategoricalState()
            single.update(v[g == i])
            assert built == single
            expected = Counter(x for x in v[g == i] if x is not None)
            assert built.frequencies() == dict(expected)

    @settings(max_examples=150, deadline=None)
    @given(parts=st.lists(labels_st, min_size=1, max_size=5), seed=st.integers(0, 99))
    def test_merge_of_parts_equals_whole_in_any_order(self, parts, seed):
        states = []
        for p in parts:
            s = CategoricalState()
            s.update(obj(p))
            states.append(s)
        random.Random(seed).shuffle(states)
        acc = CategoricalState()
        for s in states:
            acc.merge(s)
        whole = CategoricalState()
        whole.update(obj([x for p in parts for x in p]))
        assert acc == whole


class TestSketched:
    """Past the cap the state switches to frequent-items + HLL and stays within their error."""

    def test_switch_past_cap(self):
        s = CategoricalState(cap=10)
        s.update(obj([f"v{i}" for i in range(10)]))
        assert s.is_exact
        s.update(obj(["v0"] * 50 + ["new"]))
        assert not s.is_exact
        assert s.count == 61 and s.distinct == 11
        assert s.frequencies()["v0"] == 51
        assert s.top(1) == [("v0", 51)]

    def test_heavy_hitters_and_distinct_within_error(self):
        rng = np.random.default_rng(0)
        n_distinct = 50_000
        v = obj([f"id{i}" for i in rng.integers(0, n_distinct, 200_000)])
        v[:20_000] = "hot"
        s = CategoricalState()
        s.update(v)
        assert not s.is_exact and s.count == len(v)
        truth = len(set(v.tolist()))
        rel = hll_sketch.get_rel_err(True, False, 12, 3)  # three standard deviations
        assert abs(s.distinct - truth) <= abs(rel) * truth
        assert abs(s.frequencies()["hot"] - Counter(v.tolist())["hot"]) <= s.freq.epsilon * len(v) + 1

    @pytest.mark.parametrize("order", ["exact_first", "sketch_first"])
    def test_merge_exact_with_sketch(self, order):
        big = CategoricalState(cap=CATEGORY_CAP)
        big.update(obj([f"k{i}" for i in range(CATEGORY_CAP + 500)]))
        small = CategoricalState()
        small.update(obj(["k1", "fresh", "fresh", None]))
        a, b = (small.copy(), big.copy()) if order == "exact_first" else (big.copy(), small.copy())
        a.merge(b)
        assert not a.is_exact
        assert (a.count, a.nulls) == (CATEGORY_CAP + 503, 1)
        truth = CATEGORY_CAP + 501
        assert abs(a.distinct - truth) <= 0.05 * truth
        assert a.frequencies().get("fresh", 0) >= 2 or a.freq.get_upper_bound("fresh") >= 2

    def test_exact_merge_over_cap_switches(self):
        a, b = CategoricalState(cap=3), CategoricalState(cap=3)
        a.update(obj(["a", "b"]))
        b.update(obj(["c", "d"]))
        a.merge(b)
        assert not a.is_exact and a.distinct == 4 and a.count == 4

    def test_build_past_cap(self):
        v = obj([f"k{i}" for i in range(30)])
        g = np.repeat([0, 1], 15)
        s0, s1 = build_categorical(v, g, 2, cap=20)
        assert s0.is_exact and s1.is_exact
        s0.merge(s1)
        assert not s0.is_exact and s0.distinct == 30
