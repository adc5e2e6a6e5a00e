"""Is a slice's prediction quality significantly below its baseline?

Each side of the comparison is a :class:`SliceQuality`: the metric, its labeled rows and the
variance of the metric's estimate. ``drop_pvalue`` is the one-sided p-value of a z-test that
the window is worse than the baseline:

- ROC AUC: DeLong's variance, from the positives and negatives per score level (a score
  histogram is enough), the two sides independent;
- accuracy: a two-proportion z-test with the pooled proportion;
- RMSE: a z-test on the mean squared error, with the variance of the squared error taken
  from the baseline (its rows when it is the reference, else a normal error's ``2 MSE^2``),
  which is what the window's would be if nothing changed.

Examples
--------
>>> import numpy as np
>>> pos, neg = np.array([0, 1, 3]), np.array([3, 1, 0])  # counts per ascending score level
>>> auc, var = auc_with_variance(pos, neg)
>>> round(auc, 4), round(var, 5)
(0.9688, 0.00195)
>>> base = SliceQuality("accuracy", 0.90, 1000, correct=900)
>>> small = SliceQuality("accuracy", 0.80, 30, correct=24)
>>> round(drop_pvalue(base, small), 3)  # 24 of 30 right against 90%: could be chance
0.038
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class SliceQuality:
    """A quality metric over ``n`` labeled rows, with what its test needs: ``variance`` of
    the estimate (ROC AUC), ``correct`` rows (accuracy), or the variance of one row's
    squared error ``sq_error_var`` (RMSE; NaN when unknown)."""

    metric: str
    value: float
    n: int
    variance: float = math.nan
    correct: int = 0
    sq_error_var: float = math.nan


def auc_with_variance(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """ROC AUC and DeLong's variance of it, from the counts of positives and negatives at
    each score level, ascending (ties count one half)."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan, math.nan
    neg_below = np.cumsum(neg) - neg
    pos_above = n_pos - np.cumsum(pos)
    v10 = (neg_below + 0.5 * neg) / n_neg  # per positive at each level: negatives beaten
    v01 = (pos_above + 0.5 * pos) / n_pos  # per negative: positives that beat it
    auc = float(np.dot(pos, v10) / n_pos)
    s10 = np.dot(pos, (v10 - auc) ** 2) / max(n_pos - 1, 1)
    s01 = np.dot(neg, (v01 - auc) ** 2) / max(n_neg - 1, 1)
    return auc, float(s10 / n_pos + s01 / n_neg)


def drop_pvalue(base: SliceQuality, now: SliceQuality) -> float:
    """One-sided p-value that ``now`` is worse than ``base`` (RMSE: larger; else smaller)."""
    if base.n <= 0 or now.n <= 0:
        return 1.0
    if base.metric == "accuracy":
        pooled = (base.correct + now.correct) / (base.n + now.n)
        se = math.sqrt(pooled * (1 - pooled) * (1 / base.n + 1 / now.n))
        diff = base.value - now.value
    elif base.metric == "rmse":
        v = base.sq_error_var
        if not math.isfinite(v):
            v = 2.0 * base.value**4  # Var(e^2) of a normal error with mean 0
        se = math.sqrt(v * (1 / base.n + 1 / now.n))
        diff = now.value**2 - base.value**2  # on the mean squared error
    else:
        se = math.sqrt(max(base.variance, 0.0) + max(now.variance, 0.0))
        diff = base.value - now.value
    if not math.isfinite(diff):
        return 1.0
    if se <= 0 or not math.isfinite(se):
        return 0.0 if diff > 0 else 1.0
    return float(norm.sf(diff / se))


__all__ = ["SliceQuality", "auc_with_variance", "drop_pvalue"]
