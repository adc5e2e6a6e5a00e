"""Built-in metrics computed from profile states, with scikit-learn's semantics.

Every function takes one state and returns a float. An empty state gives NaN. Where
scikit-learn divides by zero and warns (precision, recall, F1) the result is 0.0, its
default ``zero_division`` value; where it raises (ROC AUC with one class) or returns NaN
(R² with fewer than two rows) the result is NaN.

Examples
--------
>>> import numpy as np
>>> from mlpulse.profiles import BinaryState
>>> s = BinaryState()
>>> s.update(np.array([1, 0, 1, 0]), np.array([0.9, 0.6, 0.4, 0.1]))
>>> accuracy(s), f1(s), roc_auc(s)
(0.5, 0.5, 0.75)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mlpulse.profiles.classification import BinaryState, MulticlassState
from mlpulse.profiles.regression import RegressionState

NAN = math.nan


def _ratio(num: float, den: float) -> float:
    """num / den, or 0.0 (scikit-learn's default zero_division) when den is 0."""
    return num / den if den else 0.0


# -- binary ---------------------------------------------------------------------------
def accuracy(state: BinaryState) -> float:
    return (state.tp + state.tn) / state.n if state.n else NAN


def precision(state: BinaryState) -> float:
    return _ratio(state.tp, state.tp + state.fp) if state.n else NAN


def recall(state: BinaryState) -> float:
    return _ratio(state.tp, state.tp + state.fn) if state.n else NAN


def f1(state: BinaryState) -> float:
    return _ratio(2 * state.tp, 2 * state.tp + state.fp + state.fn) if state.n else NAN


def _sweep(state: BinaryState) -> tuple[np.ndarray, np.ndarray]:
    """Per occupied score bin, highest first: (positives, negatives) as float arrays.

    Rows in one bin act as rows with tied scores, as scikit-learn treats equal scores.
    """
    _bins, pos, neg = state.score_table()
    return pos[::-1].astype(np.float64), neg[::-1].astype(np.float64)


def roc_auc(state: BinaryState) -> float:
    """Area under the ROC curve (trapezoids); NaN unless both classes are present."""
    pos, neg = state.class_counts()  # ascending; empty bins add nothing
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return NAN
    # each negative counts the positives scored above it, plus half of those tied with it;
    # in integers (twice the count), exact, then one division
    if 2 * n_pos * n_neg >= 2**62:  # beyond int64: floats (billions of rows per window)
        pos, neg = pos.astype(np.float64), neg.astype(np.float64)
    above = n_pos - np.cumsum(pos)
    return float(np.dot(neg, 2 * above + pos) / (2 * n_pos * n_neg))


def pr_auc(state: BinaryState) -> float:
    """Average precision (scikit-learn's ``average_precision_score``); 0.0 with no positives."""
    if not state.n:
        return NAN
    pos, neg = _sweep(state)
    n_pos = pos.sum()
    if n_pos == 0:
        return 0.0
    tps, fps = np.cumsum(pos), np.cumsum(neg)
    return float(max(0.0, np.sum(pos / n_pos * (tps / (tps + fps)))))


def log_loss(state: BinaryState) -> float:
    return state.log_loss_sum / state.n if state.n else NAN


def brier(state: BinaryState) -> float:
    return state.brier_sum / state.n if state.n else NAN


# -- multiclass -----------------------------------------------------------------------
def _per_class(state: MulticlassState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, predicted counts, true counts) of the classes that occur."""
    tp, pred, true = state.per_class()  # from the sparse pairs, never a k x k matrix
    present = (true + pred) > 0
    return tp[present].astype(np.float64), pred[present], true[present]


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def multiclass_accuracy(state: MulticlassState) -> float:
    return state.correct / state.n if state.n else NAN


def precision_macro(state: MulticlassState) -> float:
    tp, pred, _true = _per_class(state)
    return float(np.mean(_safe_div(tp, pred))) if state.n else NAN


def recall_macro(state: MulticlassState) -> float:
    tp, _pred, true = _per_class(state)
    return float(np.mean(_safe_div(tp, true))) if state.n else NAN


def _f1_per_class(state: MulticlassState) -> tuple[np.ndarray, np.ndarray]:
    tp, pred, true = _per_class(state)
    return _safe_div(2 * tp, pred + true), true


def f1_macro(state: MulticlassState) -> float:
    return float(np.mean(_f1_per_class(state)[0])) if state.n else NAN


def f1_micro(state: MulticlassState) -> float:
    # Single-label multiclass: micro precision == micro recall == accuracy.
    return multiclass_accuracy(state)


def f1_weighted(state: MulticlassState) -> float:
    if not state.n:
        return NAN
    scores, true = _f1_per_class(state)
    return float(np.sum(scores * true) / true.sum())


# -- regression -----------------------------------------------------------------------
def mae(state: RegressionState) -> float:
    return state.sum_abs_error / state.n if state.n else NAN


def mse(state: RegressionState) -> float:
    return state.sum_sq_error / state.n if state.n else NAN


def rmse(state: RegressionState) -> float:
    return math.sqrt(mse(state))


def mape(state: RegressionState) -> float:
    return state.sum_ape / state.n if state.n else NAN


def mean_error(state: RegressionState) -> float:
    """Mean of ``y_pred - y_true`` (the bias)."""
    return state.sum_error / state.n if state.n else NAN


def r2(state: RegressionState) -> float:
    """Coefficient of determination with scikit-learn's ``force_finite=True``."""
    if state.n < 2:
        return NAN
    ss_res, ss_tot = state.sum_sq_error, state.m2_true
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    if ss_res == 0:
        return 1.0
    return 1.0 - ss_res / ss_tot


BINARY_METRICS: dict[str, Callable[[BinaryState], float]] = {
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "roc_auc": roc_auc,
    "pr_auc": pr_auc,
    "log_loss": log_loss,
    "brier": brier,
}

MULTICLASS_METRICS: dict[str, Callable[[MulticlassState], float]] = {
    "accuracy": multiclass_accuracy,
    "precision_macro": precision_macro,
    "recall_macro": recall_macro,
    "f1_macro": f1_macro,
    "f1_micro": f1_micro,
    "f1_weighted": f1_weighted,
}

REGRESSION_METRICS: dict[str, Callable[[RegressionState], float]] = {
    "mae": mae,
    "mse": mse,
    "rmse": rmse,
    "mape": mape,
    "r2": r2,
    "mean_error": mean_error,
}
