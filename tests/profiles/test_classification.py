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


def _peak(fn):
    """(result, peak bytes traced by tracemalloc) of one call."""
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class TestSparseConfusion:
    """Multiclass confusion counts are held as sparse pairs: memory follows the distinct
    (true, predicted) pairs, never classes squared (4,000 classes took 2.7 GB)."""

    K = 4_000

    def rows(self, k: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        names = np.array([f"class-{i:05d}" for i in range(k)], dtype=object)
        t = names[rng.permutation(np.resize(np.arange(k), n))]
        p = np.where(rng.uniform(size=n) < 0.7, t, names[rng.integers(0, k, n)])
        return t, p, np.sort(rng.integers(0, 60, n))  # sixty minutes of one batch

    @pytest.mark.parametrize("cap", [None, "5000"])
    def test_4000_classes_in_one_batch_stay_small(self, monkeypatch, cap):
        if cap is not None:
            monkeypatch.setenv("MLPULSE_MAX_CLASSES", cap)
        t, p, g = self.rows(self.K, 2 * self.K)

        def profile():
            minutes = build_multiclass(t, p, g, 60)
            day = MulticlassState.merge_many(minutes)
            return minutes, day, encode(day)

        (minutes, day, blob), peak = _peak(profile)
        assert sum(m.n for m in minutes) == day.n == 2 * self.K
        assert day.correct == int((t == p).sum())
        assert peak < 20_000_000, f"{peak / 1e6:.1f} MB"  # dense: 128 MB a matrix
        assert len(blob) < 200_000
        if cap is None:  # the default tracks 1,000 classes and pools the rest
            assert len(day.classes) == 1_001 and day.classes[0] == "__other__"
            assert day.classes[-1] == "class-00999"  # the first 1,000 in sorted order
        else:
            assert len(day.classes) == self.K
            assert decode(blob) == day

    def test_many_classes_match_sklearn(self, monkeypatch):
        """300 classes, split over minutes and merged: every metric equals scikit-learn."""
        import sklearn.metrics as skm

        from mlpulse.metrics.builtin import MULTICLASS_METRICS

        t, p, g = self.rows(300, 5_000, seed=3)
        state = MulticlassState.merge_many(build_multiclass(t, p, g, 60))
        tp, predicted, actual = state.per_class()
        expected_cm = skm.confusion_matrix(t, p, labels=state.classes)
        assert np.array_equal(state.confusion, expected_cm)
        assert np.array_equal(tp, np.diag(expected_cm))
        assert np.array_equal(actual, expected_cm.sum(axis=1))
        assert np.array_equal(predicted, expected_cm.sum(axis=0))
        expected = {
            "accuracy": skm.accuracy_score(t, p),
            "precision_macro": skm.precision_score(t, p, average="macro", zero_division=0),
            "recall_macro": skm.recall_score(t, p, average="macro", zero_division=0),
            "f1_macro": skm.f1_score(t, p, average="macro", zero_division=0),
            "f1_micro": skm.f1_score(t, p, average="micro", zero_division=0),
            "f1_weighted": skm.f1_score(t, p, average="weighted", zero_division=0),
        }
        for name, fn in MULTICLASS_METRICS.items():
            assert fn(state) == pytest.approx(expected[name], rel=1e-12), name


class TestClassCap:
    """Past MLPULSE_MAX_CLASSES the classes that sort last pool into __other__; the pooling
    depends only on the union of classes, so merges stay lawful, and accuracy stays exact."""

    @pytest.fixture(autouse=True)
    def cap_of_three(self, monkeypatch):
        monkeypatch.setenv("MLPULSE_MAX_CLASSES", "3")

    def test_pooling(self):
        s = MulticlassState()
        s.update(np.array(["a", "b", "c", "d", "e", "e"], dtype=object),
                 np.array(["a", "c", "c", "e", "d", "e"], dtype=object))
        assert s.classes == ["__other__", "a", "b", "c"]
        assert s.n == 6 and s.correct == 3  # d->e and e->d are wrong although both pooled
        assert s.confusion.tolist() == [[3, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
        assert decode(encode(s)) == s

    @settings(max_examples=150, deadline=None)
    @given(
        parts=st.lists(
            st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("abcdefg")),
                     max_size=30),
            min_size=1, max_size=5,
        ),
        seed=st.integers(0, 99),
    )
    def test_merge_of_parts_equals_whole_in_any_order(self, parts, seed):
        states = []
        for part in parts:
            s = MulticlassState()
            s.update(*mc(part))
            states.append(s)
        whole = MulticlassState()
        whole.update(*mc([r for part in parts for r in part]))
        assert merged(states, seed) == whole
        assert MulticlassState.merge_many(states) == whole
        assert len(whole.classes) <= 4

    @pytest.mark.parametrize("value", ["1", "many", "-5"])
    def test_bad_setting(self, monkeypatch, value):
        monkeypatch.setenv("MLPULSE_MAX_CLASSES", value)
        with pytest.raises(ConfigError, match="MLPULSE_MAX_CLASSES"):
            MulticlassState(["a"])


class TestMulticlassCodec:
    """Blobs written before the sparse layout (a dense matrix, envelope version 1) decode;
    new blobs say version 2, so an older mlpulse asks to be upgraded."""

    def test_dense_v1_blob_decodes(self):
        import msgpack

        dense = np.array([[2, 0, 1], [0, 0, 0], [4, 0, 3]], dtype="<i8")
        legacy = msgpack.packb(
            {"v": 1, "type": "MulticlassState",
             "data": {"classes": ["a", "b", "c"], "n": 10, "confusion": dense.tobytes()}},
            use_bin_type=True,
        )
        state = decode(legacy)
        expected = MulticlassState()
        expected.update(np.array(list("aaaccccccc"), dtype=object),
                        np.array(list("aacaaaaccc"), dtype=object))
        expected.merge(MulticlassState(["b"]))
        assert state == expected and state.correct == 5
        assert state.confusion.tolist() == dense.tolist()

    def test_new_blobs_are_version_2(self):
        import msgpack

        s = MulticlassState()
        s.update(np.array(["a"], dtype=object), np.array(["b"], dtype=object))
        envelope = msgpack.unpackb(encode(s), raw=False)
        assert envelope["v"] == 2 and "confusion" not in envelope["data"]
        envelope["v"] = 3
        with pytest.raises(ConfigError, match="upgrade mlpulse"):
            decode(msgpack.packb(envelope, use_bin_type=True))

    def test_pairs_that_do_not_fit_are_refused(self):
        import msgpack

        s = MulticlassState()
        s.update(np.array(["a"], dtype=object), np.array(["b"], dtype=object))
        envelope = msgpack.unpackb(encode(s), raw=False)
        envelope["data"]["classes"] = ["a"]
        with pytest.raises(ConfigError, match="corrupt"):
            decode(msgpack.packb(envelope, use_bin_type=True))
