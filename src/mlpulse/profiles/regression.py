"""Regression state: error sums and the label's moments (for R²)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlpulse.errors import ConfigError
from mlpulse.profiles._common import (
    as_float64,
    as_group,
    group_mean_m2,
    packed_equal,
    parallel_combine,
)

_EPS = float(np.finfo(np.float64).eps)


class RegressionState:
    """Mergeable summary of labeled regression predictions.

    Holds sums of the error ``y_pred - y_true``, its absolute value and square, of the
    absolute percentage error (scikit-learn's MAPE terms), and the label's mean and sum of
    squared deviations (``m2_true``) for R².

    Examples
    --------
    >>> import numpy as np
    >>> s = RegressionState()
    >>> s.update(np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 3.0]))
    >>> s.n, s.sum_error, s.sum_abs_error, s.sum_sq_error, s.sum_ape
    (3, 0.0, 2.0, 2.0, 1.25)
    >>> round(s.mean_true, 12), round(s.m2_true, 12)
    (2.333333333333, 4.666666666667)
    """

    __slots__ = (
        "n",
        "sum_error",
        "sum_abs_error",
        "sum_sq_error",
        "sum_ape",
        "mean_true",
        "m2_true",
    )

    def __init__(self) -> None:
        self.n = 0
        self.sum_error = 0.0
        self.sum_abs_error = 0.0
        self.sum_sq_error = 0.0
        self.sum_ape = 0.0
        self.mean_true = math.nan
        self.m2_true = 0.0

    def update(self, y_true: Any, y_pred: Any) -> None:
        y = as_float64(y_true, "y_true")
        [part] = build_regression(y, y_pred, np.zeros(len(y), np.int64), 1)
        self.merge(part)

    def merge(self, other: RegressionState) -> None:
        if not isinstance(other, RegressionState):
            raise ConfigError(f"cannot merge RegressionState with {type(other).__name__}")
        self.mean_true, self.m2_true = parallel_combine(
            self.n, self.mean_true, self.m2_true, other.n, other.mean_true, other.m2_true
        )
        self.n += other.n
        self.sum_error += other.sum_error
        self.sum_abs_error += other.sum_abs_error
        self.sum_sq_error += other.sum_sq_error
        self.sum_ape += other.sum_ape

    def copy(self) -> RegressionState:
        return RegressionState.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegressionState:
        s = cls()
        s.n = int(d["n"])
        for name in cls.__slots__[1:]:
            setattr(s, name, float(d[name]))
        return s

    def __eq__(self, other: object) -> bool:
        return packed_equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RegressionState(n={self.n}, sum_abs_error={self.sum_abs_error:.6g})"


def build_regression(y_true: Any, y_pred: Any, group: Any, n_groups: int) -> list[RegressionState]:
    """One :class:`RegressionState` per group from labels, predictions and group ids.

    Examples
    --------
    >>> import numpy as np
    >>> states = build_regression(np.array([1.0, 2.0]), np.array([1.5, 2.0]), np.array([1, 1]), 2)
    >>> states[0].n, states[1].n, states[1].sum_abs_error
    (0, 2, 0.5)
    """
    y = as_float64(y_true, "y_true")
    p = as_float64(y_pred, "y_pred")
    if len(y) != len(p):
        raise ConfigError(f"y_true has {len(y)} rows but y_pred has {len(p)}")
    g = as_group(group, len(y), n_groups)
    err = p - y
    abs_err = np.abs(err)

    def total(w: np.ndarray) -> list[float]:
        return np.bincount(g, weights=w, minlength=n_groups).tolist()

    sums = [total(w) for w in (err, abs_err, err * err, abs_err / np.maximum(np.abs(y), _EPS))]
    count, mean, m2 = group_mean_m2(y, g, n_groups)
    counts, means, m2s = count.tolist(), mean.tolist(), m2.tolist()
    states = [RegressionState() for _ in range(n_groups)]
    for i in np.flatnonzero(count).tolist():
        s = states[i]
        s.n, s.mean_true, s.m2_true = counts[i], means[i], m2s[i]
        s.sum_error, s.sum_abs_error, s.sum_sq_error, s.sum_ape = (col[i] for col in sums)
    return states
