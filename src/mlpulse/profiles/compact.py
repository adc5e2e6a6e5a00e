"""The compact stored form of profile states: positional msgpack arrays, no field names.

Stored bucket parts are mostly small (a minute of a segment slice holds a few rows), so the
self-describing envelope of :func:`mlpulse.profiles.codec.encode` (field names, type names,
nested blobs) used to cost more than the data. Here a state is ``[FORMAT, type code,
*fields]`` and, where a field follows exactly from others, it is left out:

* a numeric state whose KLL sketch still holds every value (fewer than about ``k`` values, no
  compaction yet) stores those values instead of the sketch's bytes (the sketch is rebuilt
  from them on decode, byte for byte the same; that is checked when encoding), as 1, 2 or 4
  byte integers or 4 byte floats where that holds them exactly; its min and max are those
  of the values, and so are its mean and ``m2`` while they are what the values give (a
  state built from rows, not yet merged with another);
* a latency state of one value keeps that value alone (its sum, min, max and bin);
* score-histogram bins and latency bins are stored as gaps from the previous bin, in the
  narrowest unsigned integers that hold them;
* empty states keep only their counters.

Each shortcut is taken only when decoding it gives back exactly the state (bit for bit:
``decode(encode(s)) == s`` compares the packed ``to_dict``), otherwise the full fields are
written. The layout version is the first element: a reader meeting a newer one says to
upgrade mlpulse; blobs written before (msgpack maps) are still read by
:mod:`mlpulse.profiles.codec`.

Examples
--------
>>> import numpy as np
>>> from mlpulse.profiles.numeric import NumericState
>>> s = NumericState()
>>> s.update(np.array([3.0, 1.0, 2.0]))
>>> blob = pack(s)
>>> unpack(blob) == s, len(blob) < 60
(True, True)
"""

from __future__ import annotations

import math
import struct
from typing import Any

import msgpack
import numpy as np
from datasketches import (
    frequent_strings_sketch,
    hll_sketch,
    kll_doubles_sketch,
)

from mlpulse.errors import ConfigError
from mlpulse.profiles.categorical import CategoricalState
from mlpulse.profiles.classification import (
    BinaryState,
    MulticlassState,
    ScoreHistogram,
    pack_counts,
    unpack_counts,
)
from mlpulse.profiles.latency import MIN_INDEXABLE, LatencyState, bin_keys
from mlpulse.profiles.numeric import NumericState
from mlpulse.profiles.regression import RegressionState

FORMAT = 2
"""Layout version of the compact form (1 was the named envelope of ``codec.encode``)."""

STATES, NUMERIC, CATEGORICAL, LATENCY, BINARY, MULTICLASS, REGRESSION = range(7)
"""Type codes (STATES: a dict of column states, the features part)."""

_NAN = math.nan


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same(a: float, b: float) -> bool:
    """Bit-for-bit equality of two floats (NaN equals NaN, 0.0 differs from -0.0)."""
    return _bits(a) == _bits(b)


# -- numbers as bytes ------------------------------------------------------------------
def pack_floats(x: np.ndarray) -> list[Any]:
    """Float64 values as ``[code, bytes]`` in the narrowest form that holds them exactly:
    code -1/-2/-4 signed integers of that width, 4 float32, 8 float64."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not len(x):
        return [8, b""]
    first = float(x[0])
    if not (abs(first) < 2**31 and first.is_integer()) and not (
        abs(first) < 3e38 and float(np.float32(first)) == first
    ):
        return [8, x.tobytes()]  # the usual case for measured values: no narrower form
    bits = x.view(np.int64)
    top = float(np.abs(x).max())
    if top < 2**31:
        as_int = x.astype(np.int64)
        if (as_int.astype(np.float64).view(np.int64) == bits).all():  # -0.0 fails
            width = 1 if top < 2**7 else 2 if top < 2**15 else 4
            return [-width, as_int.astype(f"<i{width}").tobytes()]
    if top < 3e38:  # no overflow to inf in the cast
        single = x.astype(np.float32)
        if (single.astype(np.float64).view(np.int64) == bits).all():
            return [4, single.astype("<f4").tobytes()]
    return [8, x.tobytes()]


def unpack_floats(packed: list[Any]) -> np.ndarray:
    code, raw = packed
    code = int(code)
    kind = {-1: "<i1", -2: "<i2", -4: "<i4", 4: "<f4", 8: "<f8"}.get(code)
    if kind is None:
        raise ConfigError(f"corrupt profile state: unknown number encoding {code}")
    return np.frombuffer(raw, kind).astype(np.float64)


def pack_sorted(values: np.ndarray) -> list[Any]:
    """Ascending integers as ``[first, gaps]`` (gaps packed narrow); ``[]`` when empty."""
    if len(values) == 0:
        return []
    values = np.asarray(values, np.int64)
    return [int(values[0]), pack_counts(np.diff(values))]


def unpack_sorted(packed: list[Any]) -> np.ndarray:
    if not packed:
        return np.zeros(0, np.int64)
    first, gaps = packed
    out = np.empty(len(gaps[1]) // int(gaps[0]) + 1, np.int64)
    out[0] = int(first)
    np.cumsum(unpack_counts(gaps), out=out[1:])
    out[1:] += int(first)
    return out


# -- numeric ---------------------------------------------------------------------------
def _kll_items(kll: kll_doubles_sketch) -> np.ndarray | None:
    """The values a KLL sketch holds, in the order that rebuilds it byte for byte, or None
    when it has compacted (or a rebuild would differ)."""
    if kll.is_estimation_mode():
        return None
    n = kll.n
    blob = bytes(kll.serialize())
    if n == 0 or len(blob) < 8 * n:
        return np.zeros(0) if n == 0 else None
    # uncompacted, the serialised sketch ends with its n values, last inserted first
    items = np.frombuffer(blob, "<f8", count=n, offset=len(blob) - 8 * n)[::-1].copy()
    rebuilt = kll_doubles_sketch(kll.k)
    rebuilt.update(items)
    return items if bytes(rebuilt.serialize()) == blob else None


def _moments(items: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Mean and m2 of values in row order (``lo``/``hi`` their min and max) as
    :func:`build_numeric`'s ``group_mean_m2`` gets them: ``np.bincount`` sums one by one
    from 0.0, as ``np.add.accumulate`` does from the first term (``+ 0.0`` makes a -0.0 sum
    what a sum from 0.0 gives; squares are never -0.0). The writer compares bit for bit."""
    mean = float(np.add.accumulate(items / len(items))[-1]) + 0.0
    dev = items - mean
    if max(-lo, hi) < 1e150:  # squares cannot overflow
        squares = dev * dev
    else:
        with np.errstate(over="ignore"):  # deviations near 1e154 square to inf, as np.var
            squares = dev * dev
    return mean, float(np.add.accumulate(squares)[-1])


def _numeric(s: NumericState) -> list[Any]:
    others = (s.nulls, s.nan, s.pos_inf, s.neg_inf)
    counts: Any = int(s.count) if not any(others) else [int(s.count), *map(int, others)]
    head = [int(s.k), counts]
    full = [4, s.min, s.max, s.mean, s.m2, bytes(s.kll.serialize())]
    if s.count == 0:
        if (
            s.kll.is_empty()
            and all(_same(v, _NAN) for v in (s.min, s.max, s.mean))
            and _same(s.m2, 0.0)
        ):
            return [*head, 0]
        return [*head, *full]
    items = _kll_items(s.kll)
    if items is None or len(items) != s.count:
        return [*head, *full]
    packed = pack_floats(items)
    if (
        s.count == 1
        and all(_same(v, items[0]) for v in (s.min, s.max, s.mean))
        and _same(s.m2, 0.0)
    ):
        return [*head, 1, packed]
    if _same(s.min, float(items.min())) and _same(s.max, float(items.max())):
        mean, m2 = _moments(items, s.min, s.max)
        if _same(s.mean, mean) and _same(s.m2, m2):  # as built from rows, not yet merged
            return [*head, 5, packed]
        return [*head, 2, s.mean, s.m2, packed]
    return [*head, 3, s.mean, s.m2, s.min, s.max, packed]


def _numeric_back(f: list[Any]) -> NumericState:
    k, counts, form, *rest = f
    s = NumericState(int(k))
    if isinstance(counts, list):
        s.count, s.nulls, s.nan, s.pos_inf, s.neg_inf = (int(c) for c in counts)
    else:
        s.count = int(counts)
    if form == 0:
        return s
    if form == 4:
        s.min, s.max, s.mean, s.m2 = (float(v) for v in rest[:4])
        s.kll = kll_doubles_sketch.deserialize(bytes(rest[4]))
        return s
    if form not in (1, 2, 3, 5) or not rest:
        raise ConfigError(f"corrupt NumericState: unknown form {form!r}")
    items = unpack_floats(rest[-1])
    if len(items) != s.count:
        raise ConfigError("corrupt NumericState: values and count differ")
    s.kll.update(items)
    if form == 1:
        s.min = s.max = s.mean = float(items[0])
        s.m2 = 0.0
    elif form == 5:
        s.min, s.max = float(items.min()), float(items.max())
        s.mean, s.m2 = _moments(items, s.min, s.max)
    elif form == 2:
        s.mean, s.m2 = float(rest[0]), float(rest[1])
        s.min, s.max = float(items.min()), float(items.max())
    else:
        s.mean, s.m2, s.min, s.max = (float(v) for v in rest[:4])
    return s


# -- categorical -----------------------------------------------------------------------
def _categorical(s: CategoricalState) -> list[Any]:
    head = [int(s.cap), int(s.count), int(s.nulls)]
    if s.counts is not None:
        names = sorted(s.counts)
        return [*head, names, pack_counts(np.array([s.counts[n] for n in names], np.int64))]
    assert s.freq is not None and s.hll is not None
    return [*head, bytes(s.freq.serialize()), bytes(s.hll.serialize_compact())]


def _categorical_back(f: list[Any]) -> CategoricalState:
    cap, count, nulls, a, b = f
    s = CategoricalState(int(cap))
    s.count, s.nulls = int(count), int(nulls)
    if isinstance(a, list):
        counts = unpack_counts(b).tolist()
        if len(counts) != len(a):
            raise ConfigError("corrupt CategoricalState: names and counts differ in length")
        s.counts = dict(zip((str(n) for n in a), counts, strict=True))
    else:
        s.counts = None
        s.freq = frequent_strings_sketch.deserialize(bytes(a))
        s.hll = hll_sketch.deserialize(bytes(b))
    return s


# -- latency ---------------------------------------------------------------------------
def _single_latency_bins(value: float) -> tuple[np.ndarray, np.ndarray]:
    if value < MIN_INDEXABLE:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return bin_keys(np.array([value])), np.ones(1, np.int64)


def _latency(s: LatencyState) -> list[Any]:
    head = [int(s.count), int(s.invalid), int(s.zeros)]
    if (
        s.count == 0
        and len(s.keys) == 0
        and _same(s.sum, 0.0)
        and _same(s.min, _NAN)
        and _same(s.max, _NAN)
    ):
        return [*head, 0]
    if s.count == 1 and _same(s.sum, s.min) and _same(s.min, s.max):
        keys, counts = _single_latency_bins(s.min)
        if np.array_equal(keys, s.keys) and np.array_equal(counts, s.counts):
            return [*head, 1, s.min]
    return [*head, 2, s.sum, s.min, s.max, pack_sorted(s.keys), pack_counts(s.counts)]


def _latency_back(f: list[Any]) -> LatencyState:
    count, invalid, zeros, form, *rest = f
    s = LatencyState()
    s.count, s.invalid, s.zeros = int(count), int(invalid), int(zeros)
    if form == 0:
        return s
    if form == 1:
        s.sum = s.min = s.max = float(rest[0])
        s.keys, s.counts = _single_latency_bins(s.min)
        return s
    if form != 2:
        raise ConfigError(f"corrupt LatencyState: unknown form {form!r}")
    s.sum, s.min, s.max = (float(v) for v in rest[:3])
    s.keys, s.counts = unpack_sorted(rest[3]), unpack_counts(rest[4])
    if len(s.keys) != len(s.counts):
        raise ConfigError("corrupt LatencyState: bins and counts differ in length")
    return s


# -- binary ----------------------------------------------------------------------------
def _binary(s: BinaryState) -> list[Any]:
    head = [
        s.threshold,
        int(s.n),
        int(s.tp),
        int(s.fp),
        int(s.tn),
        int(s.fn),
        s.log_loss_sum,
        s.brier_sum,
    ]
    if s.exact is not None:
        values, pos, neg = s.exact
        return [*head, 0, pack_floats(values), pack_counts(pos), pack_counts(neg)]
    pi, pc = s.pos.sparse()
    ni, nc = s.neg.sparse()
    return [*head, 1, pack_sorted(pi), pack_counts(pc), pack_sorted(ni), pack_counts(nc)]


def _binary_back(f: list[Any]) -> BinaryState:
    threshold, n, tp, fp, tn, fn, log_loss, brier, form, *rest = f
    s = BinaryState(float(threshold))
    s.n, s.tp, s.fp, s.tn, s.fn = (int(v) for v in (n, tp, fp, tn, fn))
    s.log_loss_sum, s.brier_sum = float(log_loss), float(brier)
    if form == 0:
        values = unpack_floats(rest[0])
        pos, neg = unpack_counts(rest[1]), unpack_counts(rest[2])
        if not len(values) == len(pos) == len(neg):
            raise ConfigError("corrupt BinaryState: scores and counts differ in length")
        s.exact = (values, pos, neg)
        return s
    if form != 1:
        raise ConfigError(f"corrupt BinaryState: unknown form {form!r}")

    def hist(idx: list[Any], cnt: list[Any]) -> ScoreHistogram:
        bins, counts = unpack_sorted(idx), unpack_counts(cnt)
        if len(bins) != len(counts):
            raise ConfigError("corrupt BinaryState: bins and counts differ in length")
        return ScoreHistogram(bins, counts)

    s.pos, s.neg = hist(rest[0], rest[1]), hist(rest[2], rest[3])
    s.exact = None
    return s


# -- multiclass and regression ---------------------------------------------------------
def _multiclass(s: MulticlassState) -> list[Any]:
    d = s.to_dict()
    return [d["classes"], d["n"], d["correct"], d["true"], d["pred"], d["count"]]


def _multiclass_back(f: list[Any]) -> MulticlassState:
    classes, n, correct, true, pred, count = f
    return MulticlassState.from_dict(
        {
            "classes": classes,
            "n": n,
            "correct": correct,
            "true": true,
            "pred": pred,
            "count": count,
        }  # fmt: skip
    )


_REGRESSION_SUMS = RegressionState.__slots__[1:]


def _regression(s: RegressionState) -> list[Any]:
    if (
        s.n == 0
        and _same(s.mean_true, _NAN)
        and all(_same(getattr(s, name), 0.0) for name in _REGRESSION_SUMS if name != "mean_true")
    ):
        return [0]
    return [int(s.n), *(float(getattr(s, name)) for name in _REGRESSION_SUMS)]


def _regression_back(f: list[Any]) -> RegressionState:
    s = RegressionState()
    s.n = int(f[0])
    if len(f) > 1:
        for name, value in zip(_REGRESSION_SUMS, f[1:], strict=True):
            setattr(s, name, float(value))
    return s


_WRITERS: dict[type, tuple[int, Any]] = {
    NumericState: (NUMERIC, _numeric),
    CategoricalState: (CATEGORICAL, _categorical),
    LatencyState: (LATENCY, _latency),
    BinaryState: (BINARY, _binary),
    MulticlassState: (MULTICLASS, _multiclass),
    RegressionState: (REGRESSION, _regression),
}
_READERS: dict[int, Any] = {
    NUMERIC: _numeric_back,
    CATEGORICAL: _categorical_back,
    LATENCY: _latency_back,
    BINARY: _binary_back,
    MULTICLASS: _multiclass_back,
    REGRESSION: _regression_back,
}


def fields(state: Any) -> list[Any]:
    """``[type code, *fields]`` of a state (to embed in a larger compact structure)."""
    writer = _WRITERS.get(type(state))
    if writer is None:
        raise ConfigError(
            f"cannot encode {type(state).__name__}: not a registered profile state type"
        )
    code, write = writer
    return [code, *write(state)]


def from_fields(f: Any) -> Any:
    """The state of :func:`fields`' list."""
    if not isinstance(f, list) or not f:
        raise ConfigError("corrupt profile state: expected a list of fields")
    read = _READERS.get(f[0]) if isinstance(f[0], int) else None
    if read is None:
        raise ConfigError(f"corrupt profile state: unknown state type code {f[0]!r}")
    try:
        return read(f[1:])
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
        raise ConfigError(f"corrupt profile state: {exc}") from exc


def check_format(obj: Any, what: str) -> list[Any]:
    """The fields after the layout version of a compact blob's top-level list."""
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], int):
        raise ConfigError(f"not an mlpulse {what}: missing layout version")
    if obj[0] > FORMAT:
        raise ConfigError(
            f"{what} layout version {obj[0]!r} is not supported (this mlpulse reads "
            f"{FORMAT}); upgrade mlpulse"
        )
    if obj[0] != FORMAT:
        raise ConfigError(f"not an mlpulse {what}: unknown layout version {obj[0]!r}")
    return obj[1:]


def pack(state: Any) -> bytes:
    """One state in the compact form."""
    return msgpack.packb([FORMAT, *fields(state)], use_bin_type=True)


def read(blob: bytes) -> Any:
    """msgpack bytes to Python objects; corrupt bytes raise ConfigError."""
    try:
        return msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except (
        ValueError,
        msgpack.exceptions.ExtraData,
        msgpack.exceptions.FormatError,
        msgpack.exceptions.StackError,
    ) as exc:
        raise ConfigError(f"corrupt profile state bytes: {exc}") from exc


def unpack(blob: bytes) -> Any:
    """The state of :func:`pack`'s bytes."""
    return from_fields(check_format(read(blob), "profile state"))


def pack_states(states: dict[str, Any]) -> bytes:
    """A dict of column states (a features part) in the compact form."""
    return msgpack.packb(
        [FORMAT, STATES, list(states), [fields(s) for s in states.values()]], use_bin_type=True
    )


def states_from(obj: Any) -> dict[str, Any]:
    """The column states of an unpacked :func:`pack_states` blob."""
    rest = check_format(obj, "column-states blob")
    if len(rest) != 3 or rest[0] != STATES or len(rest[1]) != len(rest[2]):
        raise ConfigError("not an mlpulse column-states blob")
    return {str(name): from_fields(f) for name, f in zip(rest[1], rest[2], strict=True)}
