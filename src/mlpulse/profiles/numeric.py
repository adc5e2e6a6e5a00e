"""Numeric column state: counts of missing/non-finite values, moments and a KLL sketch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from datasketches import kll_doubles_sketch

from mlpulse.errors import ConfigError
from mlpulse.profiles._common import (
    as_float64,
    as_group,
    as_mask,
    group_bounds,
    group_mean_m2,
    packed_equal,
    parallel_combine,
)

KLL_K = 200
"""KLL accuracy parameter: about 1.3% single-sided normalized rank error."""


class NumericState:
    """Mergeable summary of a numeric column.

    ``count`` counts finite values; ``nulls``, ``nan``, ``pos_inf`` and ``neg_inf`` count
    the rest. ``min``/``max``/``mean``/``m2`` and the KLL quantile sketch cover finite
    values only; ``min``, ``max`` and ``mean`` are NaN while ``count`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> s = NumericState()
    >>> s.update(np.array([1.0, 2.0, np.nan, np.inf, 3.0]))
    >>> other = NumericState()
    >>> other.update(np.array([4.0, 0.0]), nulls=np.array([False, True]))
    >>> s.merge(other)
    >>> s.rows, s.count, s.nulls, s.nan, s.pos_inf
    (7, 4, 1, 1, 1)
    >>> s.mean, s.variance, s.min, s.max
    (2.5, 1.25, 1.0, 4.0)
    >>> s.quantile(0.5)
    3.0
    >>> NumericState.from_dict(s.to_dict()) == s
    True
    """

    __slots__ = (
        "k",
        "count",
        "nulls",
        "nan",
        "pos_inf",
        "neg_inf",
        "min",
        "max",
        "mean",
        "m2",
        "kll",
    )

    def __init__(self, k: int = KLL_K) -> None:
        self.k = int(k)
        self.count = 0
        self.nulls = 0
        self.nan = 0
        self.pos_inf = 0
        self.neg_inf = 0
        self.min = math.nan
        self.max = math.nan
        self.mean = math.nan
        self.m2 = 0.0
        self.kll = kll_doubles_sketch(self.k)

    # -- derived values ---------------------------------------------------------------
    @property
    def rows(self) -> int:
        """All rows seen: finite values, nulls, NaN and infinities."""
        return self.count + self.nulls + self.nan + self.pos_inf + self.neg_inf

    @property
    def variance(self) -> float:
        """Population variance of the finite values (NaN when there are none)."""
        return self.m2 / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation of the finite values."""
        return math.sqrt(self.variance)

    @property
    def rank_error(self) -> float:
        """The sketch's published single-sided normalized rank error (99th percentile)."""
        return float(self.kll.normalized_rank_error(False))

    def quantile(self, q: float) -> float:
        """Approximate ``q``-quantile of the finite values (NaN when empty)."""
        if self.kll.is_empty():
            return math.nan
        return float(self.kll.get_quantile(float(q)))

    def quantiles(self, qs: Any) -> np.ndarray:
        """Approximate quantiles for each of ``qs`` (all NaN when empty)."""
        qs = np.asarray(qs, dtype=np.float64)
        if self.kll.is_empty():
            return np.full(qs.shape, np.nan)
        return np.asarray(self.kll.get_quantiles(qs.ravel()), dtype=np.float64).reshape(qs.shape)

    # -- mutation ---------------------------------------------------------------------
    def update(self, values: Any, nulls: Any = None) -> None:
        """Add a batch of values; ``nulls`` marks missing rows (their values are ignored)."""
        x = as_float64(values)
        null = as_mask(nulls, len(x))
        [part] = _build(x, np.zeros(len(x), dtype=np.int64), 1, null, self.k, sketch=False)
        self._merge_scalars(part)
        # Feed the sketch directly: same result as build_numeric's per-group update.
        self.kll.update(x[~null & np.isfinite(x)])

    def merge(self, other: NumericState) -> None:
        """Fold ``other`` into this state."""
        if not isinstance(other, NumericState):
            raise ConfigError(f"cannot merge NumericState with {type(other).__name__}")
        if other.count:
            self.kll.merge(other.kll)
        self._merge_scalars(other)

    def _merge_scalars(self, other: NumericState) -> None:
        if other.count:
            if self.count:
                self.mean, self.m2 = parallel_combine(
                    self.count, self.mean, self.m2, other.count, other.mean, other.m2
                )
                self.min = min(self.min, other.min)
                self.max = max(self.max, other.max)
            else:
                self.mean, self.m2, self.min, self.max = other.mean, other.m2, other.min, other.max
        self.count += other.count
        self.nulls += other.nulls
        self.nan += other.nan
        self.pos_inf += other.pos_inf
        self.neg_inf += other.neg_inf

    def copy(self) -> NumericState:
        """An independent copy."""
        return NumericState.from_dict(self.to_dict())

    # -- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "count": self.count,
            "nulls": self.nulls,
            "nan": self.nan,
            "pos_inf": self.pos_inf,
            "neg_inf": self.neg_inf,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "m2": self.m2,
            "kll": bytes(self.kll.serialize()),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericState:
        s = cls(int(d["k"]))
        for name in ("count", "nulls", "nan", "pos_inf", "neg_inf"):
            setattr(s, name, int(d[name]))
        for name in ("min", "max", "mean", "m2"):
            setattr(s, name, float(d[name]))
        s.kll = kll_doubles_sketch.deserialize(bytes(d["kll"]))
        return s

    def __eq__(self, other: object) -> bool:
        return packed_equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"NumericState(rows={self.rows}, count={self.count}, nulls={self.nulls}, "
            f"mean={self.mean:.6g}, min={self.min:.6g}, max={self.max:.6g})"
        )


def build_numeric(
    values: Any, group: Any, n_groups: int, nulls: Any = None, k: int = KLL_K
) -> list[NumericState]:
    """One :class:`NumericState` per group from per-row ``values`` and ``group`` ids.

    Examples
    --------
    >>> import numpy as np
    >>> states = build_numeric(np.array([1.0, 5.0, 3.0]), np.array([0, 1, 0]), 3)
    >>> [s.count for s in states], states[0].mean, states[2].rows
    ([2, 1, 0], 2.0, 0)
    """
    x = as_float64(values)
    g = as_group(group, len(x), n_groups)
    return _build(x, g, n_groups, as_mask(nulls, len(x)), k, sketch=True)


def _build(
    x: np.ndarray, g: np.ndarray, n_groups: int, null: np.ndarray, k: int, sketch: bool
) -> list[NumericState]:
    valid = ~null
    nan = valid & np.isnan(x)
    pos_inf = valid & (x == np.inf)
    neg_inf = valid & (x == -np.inf)
    finite = valid & np.isfinite(x)

    def per_group(mask: np.ndarray) -> list[int]:
        return np.bincount(g[mask], minlength=n_groups).tolist()

    n_null, n_nan, n_pos, n_neg = (per_group(m) for m in (null, nan, pos_inf, neg_inf))
    xf, gf = x[finite], g[finite]
    count, mean, m2 = group_mean_m2(xf, gf, n_groups)
    order, starts = group_bounds(gf, n_groups)
    xs = xf[order]
    nonempty = np.flatnonzero(count)
    mins = np.full(n_groups, np.nan)
    maxs = np.full(n_groups, np.nan)
    if len(nonempty):
        mins[nonempty] = np.minimum.reduceat(xs, starts[nonempty])
        maxs[nonempty] = np.maximum.reduceat(xs, starts[nonempty])

    states = [NumericState(k) for _ in range(n_groups)]
    counts = count.tolist()
    for i, s in enumerate(states):
        s.nulls, s.nan, s.pos_inf, s.neg_inf = n_null[i], n_nan[i], n_pos[i], n_neg[i]
    for i in nonempty.tolist():
        s = states[i]
        s.count = counts[i]
        s.mean, s.m2 = float(mean[i]), float(m2[i])
        s.min, s.max = float(mins[i]), float(maxs[i])
        if sketch:
            s.kll.update(xs[starts[i] : starts[i + 1]])
    return states
