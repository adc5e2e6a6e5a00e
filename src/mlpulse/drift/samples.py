"""What a drift test sees of a column: a weighted sample (numeric) or category counts.

A :class:`NumericSample` is either the column's finite values (exact mode, every weight 1)
or the items a KLL sketch retained, each weighted by how many rows it stands for (sketch
mode). Moments (count, mean, variance) are exact in both, since profiles keep them exactly.
While a sketch has not compacted (small windows) its items *are* the values, so sketch mode
then gives exactly what exact mode gives.

Examples
--------
>>> import numpy as np
>>> from mlpulse.profiles import NumericState
>>> state = NumericState()
>>> state.update(np.array([3.0, 1.0, 2.0, np.nan]))
>>> s = NumericSample.from_state(state)
>>> s.exact, s.n, s.mean, s.values.tolist()
(True, 3, 2.0, [1.0, 2.0, 3.0])
>>> Counts.from_mapping({"a": 3, "b": 1}).proportions(["a", "b", "c"]).tolist()
[0.75, 0.25, 0.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OTHER = "__other__"


@dataclass
class NumericSample:
    """Sorted values with weights, the true row count and exact moments."""

    values: np.ndarray
    weights: np.ndarray
    n: int
    mean: float
    var: float  # population variance (ddof=0)
    rank_error: float = 0.0  # single-sided normalised rank error of the CDF (0 when exact)

    @property
    def exact(self) -> bool:
        return self.rank_error == 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.var) if self.var == self.var else math.nan

    @property
    def sample_std(self) -> float:
        """Standard deviation with ddof=1."""
        return math.sqrt(self.var * self.n / (self.n - 1)) if self.n > 1 else math.nan

    @classmethod
    def from_values(cls, values: Any) -> NumericSample:
        x = np.asarray(values, dtype=np.float64)
        x = np.sort(x[np.isfinite(x)])
        n = len(x)
        mean = float(x.mean()) if n else math.nan
        var = float(x.var()) if n else math.nan
        return cls(x, np.ones(n), n, mean, var, 0.0)

    @classmethod
    def from_state(cls, state: Any) -> NumericSample:
        """From a :class:`~mlpulse.profiles.NumericState` (its KLL items and moments)."""
        n = int(state.count)
        if n == 0:
            return cls(np.zeros(0), np.zeros(0), 0, math.nan, math.nan, 0.0)
        kll = state.kll
        # The iterator's weights are unreliable after merges in some datasketches builds;
        # the sketch's sorted view (get_cdf) is not, so weights come from its ranks.
        values = np.unique(np.fromiter((item for item, _w in kll), dtype=np.float64))
        ranks = np.asarray(kll.get_cdf(values, True), dtype=np.float64)[: len(values)]
        weights = np.diff(np.concatenate([[0.0], ranks])) * n
        estimated = bool(kll.is_estimation_mode())
        return cls(
            values,
            weights,
            n,
            float(state.mean),
            float(state.variance),
            float(kll.normalized_rank_error(False)) if estimated else 0.0,
        )

    def expand(self) -> np.ndarray:
        """The values themselves (only meaningful when exact)."""
        if np.all(self.weights == 1):
            return self.values
        return np.repeat(self.values, np.rint(self.weights).astype(np.int64))

    def cdf(self, points: np.ndarray, side: str = "right") -> np.ndarray:
        """Weighted empirical CDF at ``points`` (P[X <= p] for side='right', < for 'left')."""
        cum = np.concatenate([[0.0], np.cumsum(self.weights)])
        total = cum[-1]
        if total == 0:
            return np.full(len(points), math.nan)
        return cum[np.searchsorted(self.values, points, side=side)] / total  # type: ignore[call-overload]

    def quantiles(self, qs: np.ndarray) -> np.ndarray:
        """Weighted quantiles (inverse CDF, lower) at ``qs``."""
        if self.exact and len(self.values):
            return np.quantile(self.values, qs, method="inverted_cdf")
        cum = np.cumsum(self.weights) / self.weights.sum()
        idx = np.minimum(np.searchsorted(cum, qs, side="left"), len(self.values) - 1)
        return self.values[idx]


@dataclass
class Counts:
    """Category -> count; ``approximate`` once the profile switched to a frequent-items sketch."""

    counts: dict[str, int] = field(default_factory=dict)
    approximate: bool = False

    @property
    def n(self) -> int:
        return int(sum(self.counts.values()))

    @classmethod
    def from_mapping(cls, counts: dict[Any, int], approximate: bool = False) -> Counts:
        return cls({str(k): int(v) for k, v in counts.items() if v}, approximate)

    @classmethod
    def from_values(cls, values: Any) -> Counts:
        arr = np.asarray(values, dtype=object)
        keep = np.array([v is not None and v == v for v in arr], dtype=bool) if len(arr) else arr
        names, counts = np.unique(arr[keep].astype(str), return_counts=True)
        return cls(dict(zip(names.tolist(), counts.tolist(), strict=True)))

    @classmethod
    def from_state(cls, state: Any) -> Counts:
        """From a :class:`~mlpulse.profiles.CategoricalState`; rows the sketch no longer
        tracks are pooled as ``__other__``."""
        freq = state.frequencies()
        if state.is_exact:
            return cls.from_mapping(freq)
        rest = int(state.count) - sum(freq.values())
        if rest > 0:
            freq[OTHER] = freq.get(OTHER, 0) + rest
        return cls.from_mapping(freq, approximate=True)

    def categories(self) -> list[str]:
        return sorted(self.counts, key=lambda k: (-self.counts[k], k))

    def vector(self, categories: list[str]) -> np.ndarray:
        return np.array([self.counts.get(c, 0) for c in categories], dtype=np.float64)

    def proportions(self, categories: list[str]) -> np.ndarray:
        v = self.vector(categories)
        total = v.sum()
        return v / total if total else v
