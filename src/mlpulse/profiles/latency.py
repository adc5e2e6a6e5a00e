"""Latency state: a relative-error (REQ) quantile sketch tuned for tail quantiles."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from datasketches import req_floats_sketch

from mlpulse.errors import ConfigError
from mlpulse.profiles._common import as_float64, as_group, group_bounds, packed_equal

REQ_K = 12
"""REQ accuracy parameter; with high-rank accuracy the error shrinks toward p100."""


class LatencyState:
    """Mergeable summary of request latencies in milliseconds.

    NaN, infinite and negative values are counted as ``invalid`` and otherwise skipped.
    Quantiles come from a REQ sketch in high-rank-accuracy mode, so p99 and above are
    the most accurate.

    Examples
    --------
    >>> import numpy as np
    >>> s = LatencyState()
    >>> s.update(np.array([1.0, 2.0, 3.0, np.nan, -1.0]))
    >>> s.count, s.invalid, s.sum, s.min, s.max, s.mean
    (3, 2, 6.0, 1.0, 3.0, 2.0)
    >>> s.quantile(0.5)
    2.0
    """

    __slots__ = ("count", "invalid", "sum", "min", "max", "req")

    def __init__(self) -> None:
        self.count = 0
        self.invalid = 0
        self.sum = 0.0
        self.min = math.nan
        self.max = math.nan
        self.req = req_floats_sketch(REQ_K, True)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """Approximate ``q``-quantile (NaN when empty)."""
        if self.req.is_empty():
            return math.nan
        return float(self.req.get_quantile(float(q)))

    def quantiles(self, qs: Any) -> np.ndarray:
        qs = np.asarray(qs, dtype=np.float64)
        if self.req.is_empty():
            return np.full(qs.shape, np.nan)
        return np.asarray(self.req.get_quantiles(qs.ravel()), dtype=np.float64).reshape(qs.shape)

    def relative_rank_error(self, q: float) -> float:
        """The sketch's a-priori relative standard error of the rank at ``q``."""
        return float(req_floats_sketch.get_RSE(REQ_K, float(q), True, max(self.count, 1)))

    def update(self, values_ms: Any) -> None:
        x = as_float64(values_ms, "values_ms")
        [part] = _build(x, np.zeros(len(x), dtype=np.int64), 1, sketch=False)
        self._merge_scalars(part)
        # Feed the sketch directly: same result as build_latency's per-group update.
        self.req.update(x[np.isfinite(x) & (x >= 0)].astype(np.float32))

    def merge(self, other: LatencyState) -> None:
        if not isinstance(other, LatencyState):
            raise ConfigError(f"cannot merge LatencyState with {type(other).__name__}")
        if other.count:
            self.req.merge(other.req)
        self._merge_scalars(other)

    def _merge_scalars(self, other: LatencyState) -> None:
        if other.count:
            if self.count:
                self.min = min(self.min, other.min)
                self.max = max(self.max, other.max)
            else:
                self.min, self.max = other.min, other.max
        self.count += other.count
        self.invalid += other.invalid
        self.sum += other.sum

    def copy(self) -> LatencyState:
        return LatencyState.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "invalid": self.invalid, "sum": self.sum,
                "min": self.min, "max": self.max, "req": bytes(self.req.serialize())}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyState:
        s = cls()
        s.count, s.invalid = int(d["count"]), int(d["invalid"])
        s.sum, s.min, s.max = float(d["sum"]), float(d["min"]), float(d["max"])
        s.req = req_floats_sketch.deserialize(bytes(d["req"]))
        return s

    def __eq__(self, other: object) -> bool:
        return packed_equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LatencyState(count={self.count}, invalid={self.invalid}, mean={self.mean:.6g})"


def build_latency(values: Any, group: Any, n_groups: int) -> list[LatencyState]:
    """One :class:`LatencyState` per group from per-row latencies in milliseconds."""
    x = as_float64(values)
    return _build(x, as_group(group, len(x), n_groups), n_groups, sketch=True)


def _build(x: np.ndarray, g: np.ndarray, n_groups: int, sketch: bool) -> list[LatencyState]:
    ok = np.isfinite(x) & (x >= 0)
    invalid = np.bincount(g[~ok], minlength=n_groups).tolist()
    xv, gv = x[ok], g[ok]
    count = np.bincount(gv, minlength=n_groups)
    sums = np.bincount(gv, weights=xv, minlength=n_groups).tolist()
    order, starts = group_bounds(gv, n_groups)
    xs = xv[order]
    nonempty = np.flatnonzero(count)
    states = [LatencyState() for _ in range(n_groups)]
    for i, s in enumerate(states):
        s.invalid = invalid[i]
    if not len(nonempty):
        return states
    mins = np.minimum.reduceat(xs, starts[nonempty]).tolist()
    maxs = np.maximum.reduceat(xs, starts[nonempty]).tolist()
    counts = count.tolist()
    xs32 = xs.astype(np.float32)
    for j, i in enumerate(nonempty.tolist()):
        s = states[i]
        s.count, s.sum, s.min, s.max = counts[i], sums[i], mins[j], maxs[j]
        if sketch:
            s.req.update(xs32[starts[i]:starts[i + 1]])
    return states
