"""The three parts of a bucket profile, stored as separate blobs.

* ``core`` (:class:`CoreState`) — row count, the prediction column's state, latency, the
  number of positive predictions (binary) and type violations per column; needed by every
  metrics query and never changed by feedback.
* ``features`` — a dict of column states (numeric or categorical), for drift and quality.
* ``labeled`` — the classification or regression state of the bucket's labeled rows;
  recomputed from raw rows whenever a label in the bucket arrives or changes, so a corrected
  label is never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from mlpulse.errors import ConfigError

from . import codec, compact

CORE, FEATURES, LABELED = "core", "features", "labeled"
CORE_CODE = 7
"""Type code of a core part in the compact layout (after :mod:`compact`'s state codes)."""


@dataclass
class CoreState:
    """Counters and states every query needs, for one bucket."""

    n: int = 0
    positives: int = 0  # binary: predictions >= threshold
    prediction: Any = None  # NumericState or CategoricalState
    latency: Any = None  # LatencyState
    type_errors: dict[str, int] = field(default_factory=dict)
    # earliest and latest event time of the rows (µs), so a window edge that holds all or
    # none of a bucket's rows needs no raw rows; None where unknown
    first_ts: int | None = None
    last_ts: int | None = None

    def _merge_times(self, other: CoreState) -> None:
        if not other.n:
            return
        if self.n == other.n:  # self held no rows before
            self.first_ts, self.last_ts = other.first_ts, other.last_ts
        elif self.first_ts is None or other.first_ts is None:
            self.first_ts = self.last_ts = None
        else:
            assert self.last_ts is not None and other.last_ts is not None
            self.first_ts = min(self.first_ts, other.first_ts)
            self.last_ts = max(self.last_ts, other.last_ts)

    def merge(self, other: CoreState) -> None:
        self.n += other.n
        self._merge_times(other)
        self.positives += other.positives
        if other.prediction is not None:
            if self.prediction is None:
                self.prediction = other.prediction.copy()
            else:
                self.prediction.merge(other.prediction)
        if other.latency is not None:
            if self.latency is None:
                self.latency = other.latency.copy()
            else:
                self.latency.merge(other.latency)
        for column, count in other.type_errors.items():
            self.type_errors[column] = self.type_errors.get(column, 0) + count

    def copy(self) -> CoreState:
        out = CoreState()
        out.merge(self)
        return out

    @classmethod
    def merge_many(cls, states: list[CoreState]) -> CoreState:
        """Merge many core states into a new one (latency bins added in one pass)."""
        from ..profiles import LatencyState

        out = cls()
        for state in states:
            out.n += state.n
            out._merge_times(state)
            out.positives += state.positives
            for column, count in state.type_errors.items():
                out.type_errors[column] = out.type_errors.get(column, 0) + count
            if state.prediction is not None:
                if out.prediction is None:
                    out.prediction = state.prediction.copy()
                else:
                    out.prediction.merge(state.prediction)
        latencies = [s.latency for s in states if s.latency is not None]
        if latencies:
            out.latency = LatencyState.merge_many(latencies)
        return out

    def to_bytes(self) -> bytes:
        """The compact stored form: ``[FORMAT, CORE_CODE, n, positives, first_ts, span,
        type_errors, prediction, latency]`` (states as :func:`compact.fields` lists)."""
        span = (
            None if self.first_ts is None or self.last_ts is None else self.last_ts - self.first_ts
        )
        return msgpack.packb(
            [
                compact.FORMAT,
                CORE_CODE,
                self.n,
                self.positives,
                self.first_ts if span is not None else None,
                span,
                self.type_errors,
                compact.fields(self.prediction) if self.prediction is not None else None,
                compact.fields(self.latency) if self.latency is not None else None,
            ],
            use_bin_type=True,
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> CoreState:
        d = compact.read(blob)
        if isinstance(d, list):
            rest = compact.check_format(d, "core part")
            if len(rest) != 8 or rest[0] != CORE_CODE:
                raise ConfigError("not an mlpulse core part")
            _code, n, positives, first, span, type_errors, prediction, latency = rest
            return cls(
                n=int(n),
                positives=int(positives),
                prediction=compact.from_fields(prediction) if prediction is not None else None,
                latency=compact.from_fields(latency) if latency is not None else None,
                type_errors={str(c): int(e) for c, e in dict(type_errors).items()},
                first_ts=None if span is None else int(first),
                last_ts=None if span is None else int(first) + int(span),
            )
        # layout 1: a map of named fields with nested codec.encode blobs
        return cls(
            n=d["n"],
            positives=d["positives"],
            prediction=codec.decode(d["prediction"]) if d["prediction"] is not None else None,
            latency=codec.decode(d["latency"]) if d["latency"] is not None else None,
            type_errors=dict(d["type_errors"]),
            first_ts=d.get("first_ts"),  # absent from parts stored before it was kept
            last_ts=d.get("last_ts"),
        )


def encode_part(part: str, value: Any) -> bytes:
    if part == CORE:
        return value.to_bytes()
    if part == FEATURES:
        return compact.pack_states(value)
    return compact.pack(value)


def decode_part(part: str, blob: bytes) -> Any:
    if part == CORE:
        return CoreState.from_bytes(blob)
    if part == FEATURES:
        return codec.decode_states(blob)
    return codec.decode(blob)


def merge_part(part: str, into: Any, other: Any) -> Any:
    """Merge ``other`` into ``into`` (in place where possible) and return the result."""
    if into is None:
        return copy_part(part, other)
    if part == FEATURES:
        for column, state in other.items():
            if column in into:
                into[column].merge(state)
            else:
                into[column] = state.copy()
        return into
    into.merge(other)
    return into


def merge_all(part: str, values: list[Any]) -> Any:
    """Merge a list of parts into a new one (None for an empty list).

    State types may offer ``merge_many(states)`` as a faster path for long lists.
    """
    if not values:
        return None
    fast = getattr(type(values[0]), "merge_many", None)
    if fast is not None and part != FEATURES:
        return fast(values)
    out = copy_part(part, values[0])
    for value in values[1:]:
        out = merge_part(part, out, value)
    return out


def copy_part(part: str, value: Any) -> Any:
    if part == FEATURES:
        return {column: state.copy() for column, state in value.items()}
    return value.copy()


def part_rows(part: str, value: Any) -> int:
    """Row count of a part, kept in the profiles table beside the blob."""
    if part == CORE:
        return int(value.n)
    if part == FEATURES:
        return max((int(getattr(s, "rows", 0)) for s in value.values()), default=0)
    return int(getattr(value, "n", 0))


def approx_nbytes(value: Any, depth: int = 4) -> int:
    """Rough memory a part holds (its numpy arrays and bytes, a few levels deep), for
    bounding caches of decoded parts."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, bytes | bytearray | str):
        return len(value)
    if depth == 0 or value is None or isinstance(value, int | float):
        return 32
    items: Iterable[Any]
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    elif callable(getattr(value, "serialize", None)):  # a DataSketches sketch
        return 64 + len(value.serialize())
    else:
        slots = [getattr(value, name, None) for name in getattr(type(value), "__slots__", ())]
        items = [*slots, *getattr(value, "__dict__", {}).values()]
    return 64 + sum(approx_nbytes(item, depth - 1) for item in items)
