"""Categorical column state: exact counts up to a cap, then frequent-items + HLL sketches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import (
    frequent_items_error_type,
    frequent_strings_sketch,
    hll_sketch,
    hll_union,
)

from mlpulse.errors import ConfigError
from mlpulse.profiles._common import as_group, as_mask

CATEGORY_CAP = 1000
"""Distinct values kept exactly; past this the state switches to sketches."""
FREQ_LG_MAX_MAP_SIZE = 12
HLL_LG_K = 12


def encode_strings(values: Any, nulls: Any = None) -> tuple[np.ndarray, list[str]]:
    """Dictionary-encode strings: per-row code (-1 for null) and the distinct values.

    Accepts numpy object arrays (None / NaN are null) and pyarrow arrays; non-string values
    are cast to their string form.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    arr = (
        values
        if isinstance(values, pa.Array)
        else pa.array(np.asarray(values, dtype=object), from_pandas=True)
    )
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    enc = arr.dictionary_encode()
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    mask = as_mask(nulls, len(codes))
    codes[mask] = -1
    return codes, enc.dictionary.to_pylist()


class CategoricalState:
    """Mergeable summary of a categorical column.

    Counts are exact while at most ``cap`` distinct values have been seen; past that the
    state holds a frequent-strings sketch (approximate counts of the heavy hitters) and an
    HLL sketch (distinct count).

    Examples
    --------
    >>> import numpy as np
    >>> s = CategoricalState()
    >>> s.update(np.array(["a", "b", "a", None], dtype=object))
    >>> s.count, s.nulls, s.distinct, s.is_exact
    (3, 1, 2, True)
    >>> s.top(1)
    [('a', 2)]
    >>> small = CategoricalState(cap=2)
    >>> small.update(np.array(["x", "y", "z", "x"], dtype=object))
    >>> small.is_exact, small.distinct, small.frequencies()["x"]
    (False, 3, 2)
    """

    __slots__ = ("cap", "count", "nulls", "counts", "freq", "hll")

    def __init__(self, cap: int = CATEGORY_CAP) -> None:
        self.cap = int(cap)
        self.count = 0
        self.nulls = 0
        self.counts: dict[str, int] | None = {}
        self.freq: frequent_strings_sketch | None = None
        self.hll: hll_sketch | None = None

    @property
    def rows(self) -> int:
        return self.count + self.nulls

    @property
    def is_exact(self) -> bool:
        return self.counts is not None

    @property
    def distinct(self) -> int:
        """Distinct non-null values: exact, or the HLL estimate once sketched."""
        if self.counts is not None:
            return len(self.counts)
        assert self.hll is not None
        return round(self.hll.get_estimate())

    def frequencies(self) -> dict[str, int]:
        """Value -> count: exact, or the sketch's estimates for the items it tracks."""
        if self.counts is not None:
            return dict(self.counts)
        assert self.freq is not None
        items = self.freq.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
        return {item: int(est) for item, est, _lo, _hi in items}

    def top(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` most frequent values with their counts, ties broken by value."""
        return sorted(self.frequencies().items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    # -- mutation ---------------------------------------------------------------------
    def _to_sketch(self) -> None:
        assert self.counts is not None
        counts = self.counts
        self.freq = frequent_strings_sketch(FREQ_LG_MAX_MAP_SIZE)
        self.hll = hll_sketch(HLL_LG_K)
        self.counts = None
        self._add_sketch(list(counts), list(counts.values()))

    def _add_sketch(self, names: list[str], weights: list[int]) -> None:
        assert self.freq is not None and self.hll is not None
        for name, w in zip(names, weights, strict=True):
            self.freq.update(name, w)
            self.hll.update(name)

    def _add(self, names: list[str], weights: list[int]) -> None:
        """Add per-value counts (values distinct within the call)."""
        self.count += sum(weights)
        if self.counts is not None:
            counts = self.counts
            for name, w in zip(names, weights, strict=True):
                counts[name] = counts.get(name, 0) + w
            if len(counts) > self.cap:
                self._to_sketch()
        else:
            self._add_sketch(names, weights)

    def update(self, values: Any, nulls: Any = None) -> None:
        """Add a batch of string values (numpy object array or pyarrow array)."""
        codes, names = encode_strings(values, nulls)
        null = codes < 0
        self.nulls += int(null.sum())
        per_code = np.bincount(codes[~null], minlength=len(names))
        present = np.flatnonzero(per_code)
        self._add([names[i] for i in present.tolist()], per_code[present].tolist())

    def merge(self, other: CategoricalState) -> None:
        """Fold ``other`` into this state."""
        if not isinstance(other, CategoricalState):
            raise ConfigError(f"cannot merge CategoricalState with {type(other).__name__}")
        self.nulls += other.nulls
        if other.counts is not None:
            self._add(list(other.counts), list(other.counts.values()))
            return
        if self.counts is not None:
            self._to_sketch()
        assert self.freq is not None and self.hll is not None
        self.count += other.count
        self.freq.merge(other.freq)
        union = hll_union(HLL_LG_K)
        union.update(self.hll)
        union.update(other.hll)
        self.hll = union.get_result()

    def copy(self) -> CategoricalState:
        return CategoricalState.from_dict(self.to_dict())

    # -- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"cap": self.cap, "count": self.count, "nulls": self.nulls}
        if self.counts is not None:
            names = sorted(self.counts)
            d["names"] = names
            d["counts"] = [self.counts[n] for n in names]
        else:
            assert self.freq is not None and self.hll is not None
            d["freq"] = bytes(self.freq.serialize())
            d["hll"] = bytes(self.hll.serialize_compact())
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalState:
        s = cls(int(d["cap"]))
        s.count, s.nulls = int(d["count"]), int(d["nulls"])
        if "names" in d:
            s.counts = dict(zip(d["names"], (int(c) for c in d["counts"]), strict=True))
        else:
            s.counts = None
            s.freq = frequent_strings_sketch.deserialize(bytes(d["freq"]))
            s.hll = hll_sketch.deserialize(bytes(d["hll"]))
        return s

    def _canonical(self) -> dict[str, Any]:
        """Content to compare: sketch bytes depend on hash-table layout, so sketched states
        compare by their tracked items, bounds and distinct-count estimate instead."""
        if self.counts is not None:
            return self.to_dict()
        assert self.freq is not None and self.hll is not None
        items = self.freq.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
        return {
            "cap": self.cap,
            "count": self.count,
            "nulls": self.nulls,
            "items": sorted(items),
            "weight": self.freq.total_weight,
            "hll": (
                self.hll.get_estimate(),
                self.hll.get_upper_bound(2),
                self.hll.get_lower_bound(2),
            ),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoricalState):
            return NotImplemented
        return self._canonical() == other._canonical()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kind = "exact" if self.is_exact else "sketch"
        return f"CategoricalState(count={self.count}, nulls={self.nulls}, distinct={self.distinct}, {kind})"


def build_categorical(
    values: Any, group: Any, n_groups: int, nulls: Any = None, cap: int = CATEGORY_CAP
) -> list[CategoricalState]:
    """One :class:`CategoricalState` per group from per-row string ``values``.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array(["a", "b", "a", None], dtype=object)
    >>> [s.frequencies() for s in build_categorical(v, np.array([0, 1, 0, 1]), 2)]
    [{'a': 2}, {'b': 1}]
    """
    codes, names = encode_strings(values, nulls)
    g = as_group(group, len(codes), n_groups)
    null = codes < 0
    states = [CategoricalState(cap) for _ in range(n_groups)]
    for i, c in enumerate(np.bincount(g[null], minlength=n_groups).tolist()):
        states[i].nulls = c
    n_codes = max(len(names), 1)
    flat = g[~null] * n_codes + codes[~null]
    if n_groups * n_codes <= 4_000_000:  # dense counting beats sorting when it fits
        dense = np.bincount(flat, minlength=n_groups * n_codes)
        keys = np.flatnonzero(dense)
        weights = dense[keys]
    else:
        keys, weights = np.unique(flat, return_counts=True)
    key_group = keys // n_codes
    bounds = np.searchsorted(key_group, np.arange(n_groups + 1))
    code_list, weight_list = (keys % n_codes).tolist(), weights.tolist()
    for i in np.flatnonzero(np.diff(bounds)).tolist():
        lo, hi = bounds[i], bounds[i + 1]
        states[i]._add([names[c] for c in code_list[lo:hi]], weight_list[lo:hi])
    return states
