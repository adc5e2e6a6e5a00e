"""Window queries: metrics and summaries over any ``[start, end)`` from merged profiles.

Each window is cut into the fewest aligned stored buckets (days, then hours, then minutes,
see :func:`mlpulse._time.decompose`); the sub-minute edges no bucket covers are profiled
from raw rows on the fly, so results are exact for counts and sums whatever the bounds.
All buckets of all windows are fetched with one query per resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .._time import MINUTE, RESOLUTIONS, decompose, from_micros, parse_duration, to_micros
from ..errors import ConfigError, UnknownMetricError
from ..metrics.builtin import BINARY_METRICS, MULTICLASS_METRICS, REGRESSION_METRICS
from ..metrics.custom import registered
from ..schema import OTHER_SEGMENT, ModelSpec
from ..store import profiles as profile_store
from ..store.database import Store, quote
from ..store.database import arrow as query_arrow
from ..store.registry import Registry, raw_table
from .parts import CORE, FEATURES, LABELED, decode_part, merge_all, part_rows
from .profiling import group_parts, labeled_minute_parts, segment_slices

TASK_METRICS: dict[str, dict[str, Callable[[Any], float]]] = {
    "binary": BINARY_METRICS,
    "multiclass": MULTICLASS_METRICS,
    "regression": REGRESSION_METRICS,
}
COMMON_METRICS = (
    "count",
    "label_coverage",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "prediction_mean",
)
#: Built-in metrics computed from the core part's states (not just its row count).
CORE_METRICS = {"latency_p50", "latency_p95", "latency_p99", "prediction_mean", "positive_rate"}
#: Built-in metrics that need no labels.
UNLABELED = {*COMMON_METRICS, "positive_rate"}
MAX_WINDOWS = 100_000


def metric_names(spec: ModelSpec) -> list[str]:
    """Built-in metric names for the model's task, then the common ones."""
    names = list(TASK_METRICS[spec.task])
    if spec.task == "binary":
        names.append("positive_rate")
    return names + list(COMMON_METRICS)


def windows(start: Any, end: Any, step: Any) -> list[tuple[int, int]]:
    """Window bounds in microseconds; the last window is cut at ``end``."""
    now = to_micros("now")
    lo = to_micros(start, now=now)
    hi = to_micros(end, now=now)
    if hi < lo:
        raise ConfigError(f"window end {end!r} is before its start {start!r}")
    if step is None:
        return [(lo, hi)]
    width = parse_duration(step)
    if (hi - lo) / width > MAX_WINDOWS:
        raise ConfigError(f"step {step!r} gives more than {MAX_WINDOWS} windows; use a larger step")
    return [(t, min(t + width, hi)) for t in range(lo, hi, width)]


def parse_segment(spec: ModelSpec, segment: Any) -> str:
    """``None`` -> '' (all rows); ``"plan=pro"``, ``{"plan": "pro"}`` or ``("plan", "pro")``."""
    if segment is None or segment == "":
        return ""
    if isinstance(segment, dict):
        if len(segment) != 1:
            raise ConfigError(f"model {spec.name!r}: segment must name one column, got {segment!r}")
        column, value = next(iter(segment.items()))
    elif isinstance(segment, tuple | list) and len(segment) == 2:
        column, value = segment
    elif isinstance(segment, str) and "=" in segment:
        column, value = segment.split("=", 1)
    else:
        raise ConfigError(
            f"model {spec.name!r}: segment must look like 'plan=pro' or {{'plan': 'pro'}}, got {segment!r}"
        )
    if column not in spec.segments:
        raise ConfigError(
            f"model {spec.name!r}: {column!r} is not a segment column; segments: "
            f"{', '.join(spec.segments) or 'none'}"
        )
    return f"{column}={value}"


class WindowQuery:
    """Merged profile parts for a list of windows of one model."""

    def __init__(self, store: Store, registry: Registry, spec: ModelSpec) -> None:
        self.store = store
        self.registry = registry
        self.spec = spec

    def merged(
        self,
        bounds: Sequence[tuple[int, int]],
        parts: Iterable[str],
        *,
        versions: list[str],
        segment: str,
        decode: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """For each window, ``{part: merged value or None, "n_<part>": rows}``.

        Only the parts in ``decode`` (default: all) are decoded and merged; for the others
        just the row counts kept beside each blob are summed, which is much cheaper.
        """
        parts = list(parts)
        decode = set(parts if decode is None else decode)
        # feature states are stored from the hour up, metric states from the minute up
        if FEATURES in parts and len(parts) > 1:
            raise ValueError("query features separately from core and labeled parts")
        finest = "hour" if FEATURES in parts else "minute"
        plans = [decompose(lo, hi, finest) for lo, hi in bounds]
        wanted: dict[str, set[int]] = {r: set() for r in RESOLUTIONS}
        partial_ranges: list[tuple[int, int]] = []
        for buckets, partial in plans:
            for resolution, bucket in buckets:
                wanted[resolution].add(bucket)
            partial_ranges.extend(partial)

        stored: dict[tuple[str, int, str], list[tuple[int, bytes | None]]] = {}
        cur = self.store.cursor()
        found = profile_store.load_buckets(
            cur,
            self.spec.model_id,
            wanted,
            parts=parts,
            versions=versions,
            segments=[segment],
            blobs=decode,
            cache=self.store.blobs,
        )
        for resolution, bucket, part, n, blob in found:
            stored.setdefault((resolution, bucket, part), []).append((n, blob))
        partial_parts = self._partials(cur, partial_ranges, parts, versions, segment, decode)

        out = []
        for buckets, partial in plans:
            merged: dict[str, Any] = {}
            for part in parts:
                n = 0
                values = []
                for resolution, bucket in buckets:
                    for rows, blob in stored.get((resolution, bucket, part), ()):
                        n += rows
                        if blob is not None:
                            values.append(decode_part(part, blob))
                for lo, _hi in partial:
                    for piece in partial_parts.get((lo, part), ()):
                        if isinstance(piece, int):  # counted, not decoded
                            n += piece
                        else:
                            n += part_rows(part, piece)
                            values.append(piece)
                merged[f"n_{part}"] = n
                merged[part] = merge_all(part, values) if part in decode else None
            out.append(merged)
        return out

    def _partials(
        self,
        cur,
        ranges: list[tuple[int, int]],
        parts: list[str],
        versions: list[str],
        segment: str,
        decode: set[str],
    ) -> dict[tuple[int, str], list[Any]]:
        """Profile sub-bucket edge ranges from raw rows, keyed by (range start, part).

        Parts outside ``decode`` are only counted (as ints), which is all the caller needs.
        """
        if not ranges:
            return {}
        spec = self.spec
        needed = ["__version", "__prediction", "__latency_ms", "__label"]
        if FEATURES in parts:
            needed += list(spec.features)
        needed += [c for c in spec.segments if c in spec.features and c not in needed]
        columns = ", ".join(quote(c) for c in needed)
        # The edges of all windows lie in a few minutes: fetch those minutes' rows in one
        # scan (zone maps on __minute bound it to the query's span), then cut them into the
        # exact ranges here. Ranges of one query never overlap.
        ranges = sorted(ranges)
        minutes = np.unique(
            np.concatenate(
                [np.arange(lo - lo % MINUTE, hi, MINUTE, dtype=np.int64) for lo, hi in ranges]
            )
        )
        # integers, inlined: DuckDB turns a short constant IN list into a filter on the scan;
        # long lists (feature edges span up to an hour each) are left to the range cut below
        minute_filter = (
            f"AND __minute IN ({', '.join(str(int(m)) for m in minutes)}) "
            if len(minutes) <= 512
            else ""
        )
        rows = query_arrow(
            cur,
            f"SELECT {columns}, epoch_us(__ts) AS __at FROM {raw_table(spec)} "
            f"WHERE __minute BETWEEN ? AND ? {minute_filter}"
            "AND list_contains(?, __version)",
            [int(minutes[0]), int(minutes[-1]), versions],
        )
        los = np.array([lo for lo, _ in ranges], dtype=np.int64)
        his = np.array([hi for _, hi in ranges], dtype=np.int64)
        at = rows.column("__at").to_numpy()
        which = np.searchsorted(los, at, side="right") - 1
        inside = (which >= 0) & (at < his[np.maximum(which, 0)])
        order = np.argsort(at[inside], kind="stable")  # grouping below is cheaper when sorted
        table = rows.drop_columns(["__at"]).filter(pa.array(inside)).take(pa.array(order))
        table = table.append_column("__minute", pa.array(los[which[inside]][order], pa.int64()))
        if table.num_rows == 0:
            return {}
        admitted = {c: self.registry.segment_values(spec, c) for c in spec.segments}
        rows = next((r for seg, r in segment_slices(table, spec, admitted) if seg == segment), ())
        if rows is not None:  # None means every row; () no slice of that name
            table = table.take(pa.array(np.asarray(rows, dtype=np.int64), pa.int64()))
        # the slice is cut: profile it as one segment
        whole = replace(spec, segments=())
        out: dict[tuple[int, str], list[Any]] = {}
        starts = table.column("__minute").to_numpy()
        labeled = table.filter(table.column("__label").is_valid())
        for part in parts:
            if part in decode:
                continue
            keys = starts if part != LABELED else labeled.column("__minute").to_numpy()
            found, counts = np.unique(keys, return_counts=True)
            for lo, count in zip(found.tolist(), counts.tolist(), strict=True):
                out[(lo, part)] = [int(count)]
        versions_col = table.column("__version").to_numpy(zero_copy_only=False)
        for version in np.unique(versions_col):
            wanted = tuple(p for p in parts if p != LABELED and p in decode)
            if wanted:
                sub = table.filter(pa.array(versions_col == version))
                for (_v, _s, _r, lo, part), value in group_parts(
                    sub,
                    whole,
                    str(version),
                    {},
                    sub.column("__minute").to_numpy(),
                    "partial",
                    wanted,
                ).items():
                    out.setdefault((lo, part), []).append(value)
        if LABELED in parts and LABELED in decode:
            for (_v, _s, _r, lo, part), value in labeled_minute_parts(labeled, whole, {}).items():
                out.setdefault((lo, part), []).append(value)
        return out


def compute_metrics(
    store: Store,
    registry: Registry,
    spec: ModelSpec,
    names: Sequence[str] | str | None,
    *,
    start: Any,
    end: Any,
    step: Any = None,
    segment: Any = None,
    versions: list[str],
) -> pd.DataFrame:
    """The ``model.metrics`` frame: window_start, window_end, n, n_labeled, <metrics>."""
    if isinstance(names, str):
        names = [names]
    names = list(names) if names is not None else metric_names(spec)
    builtin = set(metric_names(spec))
    custom = registered()
    for name in names:
        if name not in builtin and name not in custom:
            raise UnknownMetricError(
                f"model {spec.name!r} ({spec.task}): unknown metric {name!r}; built-in: "
                f"{', '.join(metric_names(spec))}; custom: {', '.join(sorted(custom)) or 'none'}"
            )
    seg = parse_segment(spec, segment)
    bounds = windows(start, end, step)
    query = WindowQuery(store, registry, spec)
    task_metrics = TASK_METRICS[spec.task]
    decode: set[str] = set()
    if any(name in task_metrics for name in names):
        decode.add(LABELED)
    if any(name in CORE_METRICS for name in names):
        decode.add(CORE)
    merged = query.merged(bounds, [CORE, LABELED], versions=versions, segment=seg, decode=decode)
    rows = []
    for (lo, hi), parts in zip(bounds, merged, strict=True):
        core, labeled = parts[CORE], parts[LABELED]
        n, n_labeled = parts[f"n_{CORE}"], parts[f"n_{LABELED}"]
        row: dict[str, Any] = {
            "window_start": from_micros(lo),
            "window_end": from_micros(hi),
            "n": n,
            "n_labeled": n_labeled,
        }
        for name in names:
            if name in builtin:
                row[name] = _builtin(name, spec, core, labeled, n, n_labeled, task_metrics)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["window_start", "window_end", "n", "n_labeled", *names])
    custom_names = [n for n in names if n not in builtin]
    if custom_names:
        for name in custom_names:
            frame[name] = [
                _custom(store, spec, custom[name], lo, hi, versions, seg) for lo, hi in bounds
            ]
    for column in ("window_start", "window_end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for name in names:
        frame[name] = frame[name].astype("float64")
    return frame


def _builtin(
    name: str, spec: ModelSpec, core: Any, labeled: Any, n: int, n_labeled: int, task_metrics: dict
) -> float:
    if name == "count":
        return float(n)
    if name == "label_coverage":
        return n_labeled / n if n else math.nan
    if name.startswith("latency_p"):
        if core is None or core.latency is None or core.latency.count == 0:
            return math.nan
        return float(core.latency.quantile(int(name[len("latency_p") :]) / 100))
    if name == "prediction_mean":
        if (
            core is None
            or spec.task == "multiclass"
            or core.prediction is None
            or core.prediction.count == 0
        ):
            return math.nan
        return float(core.prediction.mean)
    if name == "positive_rate":
        return core.positives / n if n else math.nan
    if labeled is None or n_labeled == 0:
        return math.nan
    return float(task_metrics[name](labeled))


def _custom(
    store: Store, spec: ModelSpec, fn: Any, lo: int, hi: int, versions: list[str], segment: str
) -> float:
    sql = (
        f"SELECT __label, __prediction FROM {raw_table(spec)} WHERE __label IS NOT NULL "
        "AND __ts >= make_timestamp(?) AND __ts < make_timestamp(?) AND list_contains(?, __version)"
    )
    params: list[Any] = [lo, hi, versions]
    if segment:
        column, value = segment.split("=", 1)
        if value == OTHER_SEGMENT:
            known = sorted(Registry(store).segment_values(spec, column))
            sql += f" AND NOT list_contains(?, CAST({quote(column)} AS VARCHAR))"
            params.append(known)
        else:
            sql += f" AND CAST({quote(column)} AS VARCHAR) = ?"
            params.append(value)
    data = store.fetch_arrow(sql, params)
    if data.num_rows == 0:
        return math.nan
    y_true = data.column("__label").to_numpy(zero_copy_only=False)
    y_pred = data.column("__prediction").to_numpy(zero_copy_only=False)
    return float(fn(y_true, y_pred))


def compute_summary(
    store: Store,
    registry: Registry,
    spec: ModelSpec,
    *,
    start: Any,
    end: Any,
    step: Any = None,
    segment: Any = None,
    versions: list[str],
) -> pd.DataFrame:
    """One row per (window, feature column): count, missing, type_errors (values of the wrong
    type, stored as null), mean, std, min, p50, max, distinct, top."""
    seg = parse_segment(spec, segment)
    bounds = windows(start, end, step)
    query = WindowQuery(store, registry, spec)
    merged = query.merged(bounds, [FEATURES], versions=versions, segment=seg)
    cores = query.merged(bounds, [CORE], versions=versions, segment=seg)
    rows = []
    for (lo, hi), parts, core in zip(bounds, merged, cores, strict=True):
        states = parts[FEATURES] or {}
        type_errors = core[CORE].type_errors if core[CORE] is not None else {}
        for column in spec.features:
            state = states.get(column)
            row: dict[str, Any] = {
                "window_start": from_micros(lo),
                "window_end": from_micros(hi),
                "column": column,
                "kind": spec.features[column],
                "type_errors": type_errors.get(column, 0),
            }
            if state is None:
                row.update(count=0, missing=0)
            elif spec.features[column] == "numeric":
                row.update(
                    count=int(state.count),
                    missing=int(state.nulls + state.nan),
                    mean=state.mean if state.count else math.nan,
                    std=state.std,
                    min=state.min if state.count else math.nan,
                    p50=state.quantile(0.5),
                    max=state.max if state.count else math.nan,
                )
            else:
                top = state.top(1)
                row.update(
                    count=int(state.count),
                    missing=int(state.nulls),
                    distinct=int(state.distinct),
                    top=top[0][0] if top else None,
                )
            rows.append(row)
    columns = [
        "window_start",
        "window_end",
        "column",
        "kind",
        "count",
        "missing",
        "type_errors",
        "mean",
        "std",
        "min",
        "p50",
        "max",
        "distinct",
        "top",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("window_start", "window_end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("count", "missing", "type_errors", "distinct"):
        frame[column] = frame[column].astype("Int64")
    return frame
