"""BinaryState and MulticlassState: exact counts, sparse histograms, lawful merges."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpulse.errors import ConfigError
from mlpulse.profiles import (
    N_SCORE_BINS,
    BinaryState,
    MulticlassState,
    build_binary,
    build_multiclass,
    decode,
    encode,
)

score_st = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.5, 1.0, 1.5, -0.2]))
binary_rows = st.lists(st.tuples(st.integers(0, 1), score_st), max_size=50)
INT_FIELDS = ("n", "tp", "fp", "tn", "fn")


def binary(rows) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.float64))


def merged(states, seed):
    states = list(states)
    random.Random(seed).shuffle(states)
    acc = BinaryState(states[0].threshold) if isinstance(states[0], BinaryState) else MulticlassState()
    for s in states:
        acc.merge(s)
    return acc


def assert_binary_equal(a: BinaryState, b: BinaryState) -> None:
    for name in INT_FIELDS:
        assert getattr(a, name) == getattr(b, name), name
    assert np.array_equal(a.pos_hist, b.pos_hist) and np.array_equal(a.neg_hist, b.neg_hist)
    assert a.log_loss_sum == pytest.approx(b.log_loss_sum, rel=1e-12, abs=1e-12)
    assert a.brier_sum == pytest.approx(b.brier_sum, rel=1e-12, abs=1e-12)


class TestBinaryState:
    """Confusion counts and histograms are exact, however the rows are split."""

    def test_counts_vs_numpy(self):
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, 10_000)
        s = rng.random(10_000)
        s[:10] = [0.0, 1.0, 0.5, 0.5, 1.0, 0.0, 0.49999, 0.99995, 0.00005, 0.75]
        st_ = BinaryState(0.5)
        st_.update(y.astype(bool), s)
        pred = s >= 0.5
        assert (st_.tp, st_.fp, st_.tn, st_.fn) == (
            int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()),
            int((~pred & (y == 0)).sum()), int((~pred & (y == 1)).sum()))
        bins = np.minimum(np.floor(s * N_SCORE_BINS).astype(int), N_SCORE_BINS - 1)
        assert np.array_equal(st_.pos_hist, np.bincount(bins[y == 1], minlength=N_SCORE_BINS))
        assert np.array_equal(st_.neg_hist, np.bincount(bins[y == 0], minlength=N_SCORE_BINS))

    @settings(max_examples=150, deadline=None)
    @given(rows=binary_rows, n_groups=st.integers(1, 5), seed=st.integers(0, 99))
    def test_build_equals_per_group_update(self, rows, n_groups, seed):
        y, s = binary(rows)
        g = np.random.default_rng(seed).integers(0, n_groups, len(y))
        for i, built in enumerate(build_binary(y, s, g, n_groups, 0.5)):
            single = BinaryState(0.5)
            single.update(y[g == i], s[g == i])
            assert_binary_equal(built, single)
            assert decode(encode(built)) == decode(encode(single)) or built.n == 0

    @settings(max_examples=150, deadline=None)
    @given(parts=st.lists(binary_rows, min_size=1, max_size=5), seed=st.integers(0, 99))
    def test_merge_of_parts_equals_whole_in_any_order(self, parts, seed):
        states = []
        for p in parts:
            s = BinaryState()
            s.update(*binary(p))
            states.append(s)
        whole = BinaryState()
        whole.update(*binary([r for p in parts for r in p]))
        assert_binary_equal(merged(states, seed), whole)
        assert_binary_equal(merged(states, seed + 1), whole)

    def test_sparse_serialisation_is_small(self):
        rng = np.random.default_rng(0)
        [s] = build_binary(rng.integers(0, 2, 700), rng.random(700), np.zeros(700, int), 1)
        assert len(encode(s)) < 700 * 12 + 300
        assert decode(encode(s)) == s

    def test_threshold_mismatch_and_bad_input(self):
        with pytest.raises(ConfigError):
            BinaryState(0.5).merge(BinaryState(0.6))
        with pytest.raises(ConfigError):
            BinaryState().update(np.array([0, 2]), np.array([0.1, 0.2]))
        with pytest.raises(ConfigError):
            BinaryState().update(np.array([0, 1]), np.array([0.1, np.nan]))

    def test_merge_leaves_other_untouched(self):
        a, b = BinaryState(), BinaryState()
        b.update(np.array([1, 0]), np.array([0.9, 0.1]))
        a.merge(b)
        a.merge(b)
        assert a.pos_hist.sum() == 2 and b.pos_hist.sum() == 1


labels = st.sampled_from(["a", "b", "c", "d"])
mc_rows = st.lists(st.tuples(labels, labels), max_size=50)


def mc(rows):
    return (np.array([r[0] for r in rows], dtype=object), np.array([r[1] for r in rows], dtype=object))


class TestMulticlassState:
    """The confusion matrix is exact and re-indexed as classes appear."""

    def test_matches_sklearn_confusion(self):
        from sklearn.metrics import confusion_matrix

        rng = np.random.default_rng(0)
        t = rng.choice(np.array(["x", "y", "z"], dtype=object), 5000)
        p = rng.choice(np.array(["w", "x", "y"], dtype=object), 5000)
        s = MulticlassState()
        s.update(t, p)
        assert s.classes == ["w", "x", "y", "z"]
        assert np.array_equal(s.confusion, confusion_matrix(t, p, labels=s.classes))

    @settings(max_examples=150, deadline=None)
    @given(rows=mc_rows, n_groups=st.integers(1, 5), seed=st.integers(0, 99))
    def test_build_equals_per_group_update(self, rows, n_groups, seed):
        t, p = mc(rows)
        g = np.random.default_rng(seed).integers(0, n_groups, len(t))
        for i, built in enumerate(build_multiclass(t, p, g, n_groups)):
            single = MulticlassState()
            single.update(t[g == i], p[g == i])
            assert built == single

    @settings(max_examples=150, deadline=None)
    @given(parts=st.lists(mc_rows, min_size=1, max_size=5), seed=st.integers(0, 99))
    def test_merge_of_parts_equals_whole_in_any_order(self, parts, seed):
        states = []
        for part in parts:
            s = MulticlassState()
            s.update(*mc(part))
            states.append(s)
        whole = MulticlassState()
        whole.update(*mc([r for part in parts for r in part]))
        assert merged(states, seed) == whole

    def test_declared_classes_and_empty(self):
        s = MulticlassState(["b", "a"])
        assert s.classes == ["a", "b"] and s.confusion.shape == (2, 2) and s.n == 0
        [built] = build_multiclass(np.array([], dtype=object), np.array([], dtype=object),
                                   np.array([], dtype=np.int64), 1, classes=["a"])
        assert built.classes == ["a"]
