"""Built-in metrics agree with scikit-learn, whether built in one go or merged from parts."""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpulse.metrics import builtin
from mlpulse.metrics.builtin import BINARY_METRICS, MULTICLASS_METRICS, REGRESSION_METRICS
from mlpulse.profiles import (
    N_SCORE_BINS,
    BinaryState,
    MulticlassState,
    RegressionState,
    build_binary,
    build_multiclass,
    build_regression,
)

pytestmark = pytest.mark.filterwarnings("ignore")


def _sk(fn, *args, **kwargs) -> float:
    """scikit-learn's value, NaN where it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(fn(*args, **kwargs))
        except ValueError:
            return math.nan


def _close(a: float, b: float, tol: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def _merged(states: list, seed: int):
    states = list(states)
    random.Random(seed).shuffle(states)
    acc = states[0].copy()
    for s in states[1:]:
        acc.merge(s)
    return acc


def _parts(n: int, n_parts: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_parts, size=n)


def sklearn_binary(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    pred = (s >= threshold).astype(int)
    return {
        "accuracy": _sk(skm.accuracy_score, y, pred),
        "precision": _sk(skm.precision_score, y, pred),
        "recall": _sk(skm.recall_score, y, pred),
        "f1": _sk(skm.f1_score, y, pred),
        "roc_auc": _sk(skm.roc_auc_score, y, s),
        "pr_auc": _sk(skm.average_precision_score, y, s),
        "log_loss": _sk(skm.log_loss, y, s, labels=[0, 1]),
        "brier": _sk(skm.brier_score_loss, y, s, labels=[0, 1]),
    }


def assert_binary(state: BinaryState, y, s, threshold=0.5, auc_tol=1e-9) -> None:
    expected = sklearn_binary(np.asarray(y), np.asarray(s, dtype=float), threshold)
    for name, fn in BINARY_METRICS.items():
        tol = auc_tol if name in ("roc_auc", "pr_auc") else 1e-9
        got = fn(state)
        assert isinstance(got, float)
        assert _close(got, expected[name], tol), (name, got, expected[name])


# Scores at bin centres plus the edge values, so that distinct scores never share a bin
# (the histogram treats scores in one bin as tied).
_EDGE_BINS = {0, N_SCORE_BINS // 4, N_SCORE_BINS // 2, N_SCORE_BINS - 1}
grid_score = st.one_of(
    st.integers(0, N_SCORE_BINS - 1)
    .filter(lambda i: i not in _EDGE_BINS)
    .map(lambda i: (i + 0.5) / N_SCORE_BINS),
    st.sampled_from([0.0, 1.0, 0.5, 0.25]),
)


class TestBinary:
    """Binary metrics from BinaryState match scikit-learn on the same rows."""

    @settings(max_examples=150, deadline=None)
    @given(
        rows=st.lists(st.tuples(st.integers(0, 1), grid_score), min_size=1, max_size=60),
        n_parts=st.integers(1, 5),
        seed=st.integers(0, 1000),
        threshold=st.sampled_from([0.5, 0.25, 0.7]),
    )
    def test_merged_parts_match_sklearn(self, rows, n_parts, seed, threshold):
        y = np.array([r[0] for r in rows])
        s = np.array([r[1] for r in rows])
        states = build_binary(y, s, _parts(len(y), n_parts, seed), n_parts, threshold)
        assert_binary(_merged(states, seed), y, s, threshold)

    @pytest.mark.parametrize("seed", range(5))
    def test_random_continuous_scores(self, seed):
        rng = np.random.default_rng(seed)
        n = 5000
        y = rng.integers(0, 2, n)
        s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
        states = build_binary(y, s, _parts(n, 7, seed), 7)
        assert_binary(_merged(states, seed), y, s, auc_tol=0.005)

    def test_empty_state_is_nan(self):
        assert all(math.isnan(fn(BinaryState())) for fn in BINARY_METRICS.values())

    @pytest.mark.parametrize("label", [0, 1])
    def test_one_class_only(self, label):
        y = np.full(20, label)
        s = np.linspace(0, 1, 20)
        state = BinaryState()
        state.update(y, s)
        assert math.isnan(builtin.roc_auc(state))
        assert_binary(state, y, s)

    @pytest.mark.parametrize("score", [0.0, 1.0, 0.5])
    def test_all_predictions_one_side_and_ties(self, score):
        y = np.array([0, 1, 1, 0, 1])
        s = np.full(5, score)
        state = BinaryState()
        state.update(y, s)
        assert_binary(state, y, s)
        assert builtin.roc_auc(state) == 0.5

    def test_scores_at_threshold_are_positive(self):
        state = BinaryState(threshold=0.3)
        state.update(np.array([1, 0]), np.array([0.3, 0.3]))
        assert (state.tp, state.fp) == (1, 1)

    def test_extreme_scores_log_loss(self):
        y = np.array([1, 0, 1, 0])
        s = np.array([0.0, 1.0, 1.0, 0.0])
        state = BinaryState()
        state.update(y, s)
        assert_binary(state, y, s)


class TestMulticlass:
    """Multiclass averages from the confusion matrix match scikit-learn."""

    @settings(max_examples=150, deadline=None)
    @given(
        rows=st.lists(
            st.tuples(st.sampled_from("abcd"), st.sampled_from("abcde")), min_size=1, max_size=60
        ),
        n_parts=st.integers(1, 5),
        seed=st.integers(0, 1000),
        declared=st.lists(st.sampled_from("abcxyz"), max_size=3),
    )
    def test_merged_parts_match_sklearn(self, rows, n_parts, seed, declared):
        t = np.array([r[0] for r in rows], dtype=object)
        p = np.array([r[1] for r in rows], dtype=object)
        states = build_multiclass(t, p, _parts(len(t), n_parts, seed), n_parts, classes=declared)
        state = _merged(states, seed)
        expected = {
            "accuracy": skm.accuracy_score(t, p),
            "precision_macro": _sk(skm.precision_score, t, p, average="macro"),
            "recall_macro": _sk(skm.recall_score, t, p, average="macro"),
            "f1_macro": _sk(skm.f1_score, t, p, average="macro"),
            "f1_micro": _sk(skm.f1_score, t, p, average="micro"),
            "f1_weighted": _sk(skm.f1_score, t, p, average="weighted"),
        }
        for name, fn in MULTICLASS_METRICS.items():
            assert _close(fn(state), expected[name]), (name, fn(state), expected[name])

    def test_empty_state_is_nan(self):
        state = MulticlassState(["a", "b"])
        assert all(math.isnan(fn(state)) for fn in MULTICLASS_METRICS.values())


def sklearn_regression(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "mae": _sk(skm.mean_absolute_error, y, p),
        "mse": _sk(skm.mean_squared_error, y, p),
        "rmse": _sk(skm.root_mean_squared_error, y, p),
        "mape": _sk(skm.mean_absolute_percentage_error, y, p),
        "r2": _sk(skm.r2_score, y, p),
        "mean_error": float(np.mean(p - y)) if len(y) else math.nan,
    }


def assert_regression(state: RegressionState, y, p, tol=1e-9) -> None:
    expected = sklearn_regression(np.asarray(y, float), np.asarray(p, float))
    for name, fn in REGRESSION_METRICS.items():
        got = fn(state)
        if math.isinf(expected[name]):
            assert got == expected[name], name
        else:
            assert _close(got, expected[name], tol), (name, got, expected[name])


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


class TestRegression:
    """Regression metrics from RegressionState match scikit-learn."""

    @settings(max_examples=150, deadline=None)
    @given(
        rows=st.lists(st.tuples(finite, finite), min_size=1, max_size=60),
        n_parts=st.integers(1, 5),
        seed=st.integers(0, 1000),
    )
    def test_merged_parts_match_sklearn(self, rows, n_parts, seed):
        y = np.array([r[0] for r in rows])
        p = np.array([r[1] for r in rows])
        states = build_regression(y, p, _parts(len(y), n_parts, seed), n_parts)
        state = _merged(states, seed)
        expected = sklearn_regression(y, p)
        for name, fn in REGRESSION_METRICS.items():
            got = fn(state)
            if name == "r2":
                # R² of nearly constant labels is ill-conditioned: compare 1 - R² via SS_res.
                ss_tot = float(np.sum((y - y.mean()) ** 2))
                if ss_tot < 1e-6 * max(1.0, float(np.max(np.abs(y))) ** 2):
                    continue
                assert _close(got, expected[name], 1e-7), (name, got, expected[name])
            else:
                assert _close(got, expected[name], 1e-9), (name, got, expected[name])

    def test_random(self):
        rng = np.random.default_rng(3)
        y = rng.normal(10, 3, 10_000)
        p = y + rng.normal(0.5, 1, 10_000)
        state = _merged(build_regression(y, p, _parts(len(y), 9, 3), 9), 3)
        assert_regression(state, y, p)

    def test_empty_and_single_row(self):
        assert all(math.isnan(fn(RegressionState())) for fn in REGRESSION_METRICS.values())
        state = RegressionState()
        state.update(np.array([2.0]), np.array([3.0]))
        assert math.isnan(builtin.r2(state))
        assert_regression(state, [2.0], [3.0])

    @pytest.mark.parametrize(("y", "p"), [([2.0, 2.0], [2.0, 2.0]), ([2.0, 2.0], [2.0, 3.0])])
    def test_r2_constant_labels_force_finite(self, y, p):
        state = RegressionState()
        state.update(np.array(y), np.array(p))
        assert_regression(state, y, p)

    @pytest.mark.parametrize("scale", [1e300, 1e-300, 1e150])
    def test_extreme_magnitudes(self, scale):
        rng = np.random.default_rng(0)
        y = rng.normal(0, 1, 50) * scale
        p = y + rng.normal(0, 0.1, 50) * scale
        state = _merged(build_regression(y, p, _parts(50, 3, 0), 3), 0)
        assert_regression(state, y, p, tol=1e-7)

    def test_zero_labels_mape_uses_eps(self):
        state = RegressionState()
        state.update(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
        assert_regression(state, [0.0, 1.0], [1.0, 1.0])
