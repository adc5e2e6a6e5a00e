"""Compute bucket profiles from rows, vectorised, for every segment and resolution.

Rows are grouped by (segment slice, minute bucket) with one ``np.unique``; the state builders
of :mod:`mlpulse.profiles` then run once per slice over all its minutes. Hour and day states
are merges of the minute states, so all resolutions agree exactly on counts and sums.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._time import HOUR, RESOLUTIONS
from ..profiles import (
    build_binary,
    build_categorical,
    build_latency,
    build_multiclass,
    build_numeric,
    build_regression,
)
from ..profiles.bucket import CORE, FEATURES, LABELED, CoreState, copy_part, merge_part
from ..schema import NUMERIC, OTHER_SEGMENT, ModelSpec
from .validate import to_float, to_string

#: key of a stored profile part: (version, segment, resolution, bucket, part)
Key = tuple[str, str, str, int, str]


def segment_slices(
    table: pa.Table, spec: ModelSpec, admitted: dict[str, set[str]]
) -> Iterator[tuple[str, np.ndarray | None]]:
    """Yield ``(segment, row positions)``: '' with None for all rows, then one per
    ``column=value`` of each segment column (values beyond the cap pooled as __other__)."""
    yield "", None
    for column in spec.segments:
        if column not in table.column_names:
            continue
        values = table.column(column)
        if not (pa.types.is_string(values.type)):
            values = pc.cast(values, pa.string())
        encoded = pc.dictionary_encode(values).combine_chunks()
        dictionary = encoded.dictionary.to_pylist()
        # rows with a missing segment value belong to no segment slice
        codes = pc.fill_null(encoded.indices, len(dictionary)).to_numpy(zero_copy_only=False)
        allowed = admitted.get(column, set())
        slot = [d if d in allowed else OTHER_SEGMENT for d in dictionary] + [None]
        names = np.array(slot, dtype=object)[codes.astype(np.int64)]
        for name in sorted({s for s in slot if s is not None}):
            rows = np.flatnonzero(names == name)
            if len(rows):
                yield f"{column}={name}", rows


def _take(array: pa.ChunkedArray | pa.Array, rows: np.ndarray | None) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array if rows is None else array.take(pa.array(rows, type=pa.int64()))


def _numpy_float(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    nulls = np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), bool)
    values = (
        pc.fill_null(array, np.nan).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    )
    return values, nulls


def _numpy_str(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    nulls = np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), bool)
    return array.to_numpy(zero_copy_only=False), nulls


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sorted bucket starts and each row's group index (fast path for sorted keys)."""
    if len(keys) and np.all(keys[1:] >= keys[:-1]):
        new = np.empty(len(keys), dtype=bool)
        new[0] = True
        np.not_equal(keys[1:], keys[:-1], out=new[1:])
        return keys[new], np.cumsum(new) - 1
    buckets, group = np.unique(keys, return_inverse=True)
    return buckets, group.astype(np.int64, copy=False)


def group_parts(
    table: pa.Table,
    spec: ModelSpec,
    version: str,
    admitted: dict[str, set[str]],
    buckets_of_rows: np.ndarray,
    resolution: str,
    parts: tuple[str, ...] = (CORE, FEATURES),
    type_errors: dict[str, np.ndarray] | None = None,
) -> dict[Key, Any]:
    """Core and/or features parts per (segment, bucket) for clean raw rows of one version.

    ``buckets_of_rows`` gives each row's bucket start; rows are best sorted by it.
    """
    out: dict[Key, Any] = {}
    for segment, rows in segment_slices(table, spec, admitted):
        keys = buckets_of_rows if rows is None else buckets_of_rows[rows]
        if len(keys) == 0:
            continue
        buckets, group = _groups(keys)
        g = len(buckets)
        if CORE in parts:
            cores = _core_states(table, spec, rows, group, g, type_errors)
            for i, bucket in enumerate(buckets.tolist()):
                out[(version, segment, resolution, bucket, CORE)] = cores[i]
        if FEATURES in parts:
            states = _feature_states(table, spec, rows, group, g)
            for i, bucket in enumerate(buckets.tolist()):
                out[(version, segment, resolution, bucket, FEATURES)] = {
                    c: s[i] for c, s in states.items()
                }
    return out


def _core_states(
    table: pa.Table,
    spec: ModelSpec,
    rows: np.ndarray | None,
    group: np.ndarray,
    g: int,
    type_errors: dict[str, np.ndarray] | None,
) -> list[CoreState]:
    counts = np.bincount(group, minlength=g)
    prediction = _take(table.column("__prediction"), rows)
    pred_states: list[Any]
    if spec.task == "multiclass":
        pred_states = build_categorical(prediction, group, g)
        positives = np.zeros(g, dtype=np.int64)
    else:
        values, nulls = _numpy_float(prediction)
        pred_states = build_numeric(values, group, g, nulls=nulls)
        if spec.task == "binary":
            positives = np.bincount(group, weights=(values >= spec.threshold), minlength=g)
        else:
            positives = np.zeros(g, dtype=np.int64)
    latency, _ = _numpy_float(_take(table.column("__latency_ms"), rows))
    has_latency = ~np.isnan(latency)
    lat_states = build_latency(latency[has_latency], group[has_latency], g)
    errors = {
        column: np.bincount(group, weights=mask if rows is None else mask[rows], minlength=g)
        for column, mask in (type_errors or {}).items()
    }
    first: list[int | None] = [None] * g
    last: list[int | None] = [None] * g
    if "__ts" in table.column_names and len(group):
        ts = _take(table.column("__ts"), rows).cast(pa.int64()).to_numpy()
        if np.all(group[1:] >= group[:-1]):  # rows grouped (sorted by bucket): no sort needed
            starts = np.flatnonzero(np.diff(group, prepend=-1))
            first = np.minimum.reduceat(ts, starts).tolist()
            last = np.maximum.reduceat(ts, starts).tolist()
        else:
            lo = np.full(g, np.iinfo(np.int64).max)
            hi = np.full(g, np.iinfo(np.int64).min)
            np.minimum.at(lo, group, ts)
            np.maximum.at(hi, group, ts)
            first, last = lo.tolist(), hi.tolist()
    return [
        CoreState(
            n=int(counts[i]),
            positives=int(positives[i]),
            prediction=pred_states[i],
            latency=lat_states[i],
            type_errors={c: int(e[i]) for c, e in errors.items() if e[i]},
            first_ts=first[i],
            last_ts=last[i],
        )
        for i in range(g)
    ]


def _feature_states(
    table: pa.Table, spec: ModelSpec, rows: np.ndarray | None, group: np.ndarray, g: int
) -> dict[str, list[Any]]:
    states: dict[str, list[Any]] = {}
    for column, kind in spec.features.items():
        if column not in table.column_names:
            continue
        array = _take(table.column(column), rows)
        if kind == NUMERIC:
            values, nulls = _numpy_float(array)
            states[column] = build_numeric(values, group, g, nulls=nulls)
        else:
            states[column] = build_categorical(array, group, g)
    return states


def batch_parts(
    table: pa.Table,
    spec: ModelSpec,
    version: str,
    admitted: dict[str, set[str]],
    type_errors: dict[str, np.ndarray] | None = None,
) -> dict[Key, Any]:
    """All parts a batch adds: core per minute/hour/day, features per hour/day.

    Feature states are kept from the hour up: a minute holds too few rows for a useful
    distribution, and sub-hour edges of a window are profiled from raw rows instead.
    """
    minutes = table.column("__minute").to_numpy()
    core = group_parts(table, spec, version, admitted, minutes, "minute", (CORE,), type_errors)
    features = group_parts(
        table, spec, version, admitted, minutes - minutes % HOUR, "hour", (FEATURES,)
    )
    out = dict(core)
    finer = core
    for resolution in list(RESOLUTIONS)[1:]:
        finer = rollup(finer, resolution)
        if resolution == "hour":
            finer.update(features)
        out.update(finer)
    return out


def batch_keys(
    table: pa.Table, spec: ModelSpec, version: str, admitted: dict[str, set[str]]
) -> list[Key]:
    """The keys :func:`batch_parts` returns for this batch, without profiling it (so the
    stored parts can be fetched before the profiling starts elsewhere)."""
    minutes = table.column("__minute").to_numpy()
    keys: list[Key] = []
    for segment, rows in segment_slices(table, spec, admitted):
        distinct = np.unique(minutes if rows is None else minutes[rows])
        if len(distinct) == 0:
            continue
        for resolution, width in RESOLUTIONS.items():
            parts = (CORE,) if width < HOUR else (CORE, FEATURES)
            for bucket in np.unique(distinct - distinct % width).tolist():
                keys.extend((version, segment, resolution, bucket, part) for part in parts)
    return keys


def labeled_minute_parts(
    rows: pa.Table, spec: ModelSpec, admitted: dict[str, set[str]]
) -> dict[Key, Any]:
    """Labeled parts per (version, segment, minute) from raw rows that carry a label."""
    out: dict[Key, Any] = {}
    if rows.num_rows == 0:
        return out
    versions = rows.column("__version")
    for version in pc.unique(versions).to_pylist():
        sub = rows.filter(pc.equal(versions, version)) if len(pc.unique(versions)) > 1 else rows
        minutes_all = sub.column("__minute").to_numpy()
        for segment, idx in segment_slices(sub, spec, admitted):
            minutes = minutes_all if idx is None else minutes_all[idx]
            if len(minutes) == 0:
                continue
            buckets, group = _groups(minutes)
            g = len(buckets)
            pred = _take(sub.column("__prediction"), idx)
            label = _take(sub.column("__label"), idx)
            states: list[Any]
            if spec.task == "binary":
                y_score, _ = _numpy_float(pred)
                y_true, _ = _numpy_float(label)
                states = build_binary(y_true.astype(np.int64), y_score, group, g, spec.threshold)
            elif spec.task == "multiclass":
                states = build_multiclass(_numpy_str(label)[0], _numpy_str(pred)[0], group, g)
            else:
                states = build_regression(_numpy_float(label)[0], _numpy_float(pred)[0], group, g)
            for i, bucket in enumerate(buckets.tolist()):
                out[(str(version), segment, "minute", bucket, LABELED)] = states[i]
    return out


def rollup(parts: dict[Key, Any], resolution: str) -> dict[Key, Any]:
    """Merge finer parts into ``resolution`` buckets (hour from minutes, day from hours)."""
    width = RESOLUTIONS[resolution]
    out: dict[Key, Any] = {}
    for (version, segment, _res, bucket, part), value in parts.items():
        key = (version, segment, resolution, bucket - bucket % width, part)
        if key in out:
            out[key] = merge_part(part, out[key], value)
        else:
            out[key] = copy_part(part, value)
    return out


def reference_features(table: pa.Table, spec: ModelSpec) -> dict[str, Any]:
    """Column states of reference data (one group) for the model's features."""
    n = table.num_rows
    group = np.zeros(n, dtype=np.int64)
    out: dict[str, Any] = {}
    for column, kind in spec.features.items():
        if column not in table.column_names:
            continue
        source = table.column(column)
        if kind == NUMERIC:
            values, null, malformed = to_float(source)
            out[column] = build_numeric(values, group, 1, nulls=null | malformed)[0]
        else:
            strings, _ = to_string(source)
            out[column] = build_categorical(strings, group, 1)[0]
    return out
