"""Helpers shared by the profile states: input coercion, grouping, equality."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from mlpulse.errors import ConfigError


def as_float64(values: Any, name: str = "values") -> np.ndarray:
    """Return ``values`` as a one-dimensional float64 array."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def as_mask(mask: Any, n: int, name: str = "nulls") -> np.ndarray:
    """Return an optional boolean mask as an array of length ``n`` (all False if None)."""
    if mask is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(mask, dtype=bool)
    if arr.shape != (n,):
        raise ConfigError(f"{name} must have shape ({n},), got {arr.shape}")
    return arr


def as_group(group: Any, n: int, n_groups: int) -> np.ndarray:
    """Validate a per-row group array: int64, length ``n``, values in [0, n_groups)."""
    arr = np.asarray(group)
    if arr.shape != (n,):
        raise ConfigError(f"group must have shape ({n},), got {arr.shape}")
    if n_groups < 0:
        raise ConfigError(f"n_groups must be >= 0, got {n_groups}")
    arr = arr.astype(np.int64, copy=False)
    if n and (arr.min() < 0 or arr.max() >= n_groups):
        raise ConfigError(f"group values must lie in [0, {n_groups})")
    return arr


def group_bounds(group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable order that sorts rows by group, and each group's start offset in that order.

    Rows of group ``g`` are ``order[starts[g]:starts[g + 1]]`` (``starts`` has n_groups + 1
    entries), in their original relative order.
    """
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group, minlength=n_groups)
    starts = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return order, starts


def packed_equal(a: Any, b: Any) -> bool:
    """Content equality of two states via their packed ``to_dict`` (NaN-safe, exact)."""
    if type(a) is not type(b):
        return NotImplemented
    return msgpack.packb(a.to_dict()) == msgpack.packb(b.to_dict())


def parallel_combine(
    n_a: int, mean_a: float, m2_a: float, n_b: int, mean_b: float, m2_b: float
) -> tuple[float, float]:
    """Chan et al. combination of (count, mean, M2); exactly commutative in floating point."""
    if n_b == 0:
        return mean_a, m2_a
    if n_a == 0:
        return mean_b, m2_b
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a * (n_a / n) + mean_b * (n_b / n)
    m2 = (m2_a + m2_b) + delta * delta * (n_a * n_b / n)
    return float(mean), float(m2)


def group_mean_m2(
    x: np.ndarray, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group count, mean and sum of squared deviations (two-pass, overflow-safe mean)."""
    count = np.bincount(group, minlength=n_groups)
    safe = np.maximum(count, 1)
    # Summing x / n rather than x avoids overflow of the sum for values near the float max.
    mean = np.bincount(group, weights=x / safe[group], minlength=n_groups)
    dev = x - mean[group]
    with np.errstate(over="ignore"):  # deviations near 1e154 square to inf, as in np.var
        m2 = np.bincount(group, weights=dev * dev, minlength=n_groups)
    return count, mean, m2
