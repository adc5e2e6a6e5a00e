"""Window queries: metrics and summaries over any ``[start, end)`` from merged profiles.

Each window is cut into the fewest aligned stored buckets (days, then hours, then minutes,
see :func:`mlpulse._time.decompose`); the sub-minute edges no bucket covers are profiled
from raw rows on the fly, so results are exact for counts and sums whatever the bounds.
The buckets' entries come from the store's profile cache (one query for any it lacks);
merges of runs of adjacent buckets and the raw rows of edge minutes are cached too, so a
repeated query (a dashboard refreshing) costs little more than its Python bookkeeping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._time import (
    DAY,
    MINUTE,
    align_down,
    cover_size,
    decompose,
    from_micros,
    parse_duration,
    to_micros,
)
from ..errors import ConfigError, UnknownMetricError
from ..metrics import catalog, confidence
from ..metrics.catalog import CORE_METRICS, TASK_METRICS
from ..metrics.custom import registered
from ..profiles.bucket import (
    CORE,
    FEATURES,
    LABELED,
    approx_nbytes,
    decode_part,
    merge_all,
    part_rows,
)
from ..schema import OTHER_SEGMENT, ModelSpec
from ..store import lake, retention
from ..store import profiles as profile_store
from ..store.database import Store, quote
from ..store.database import arrow as query_arrow
from ..store.profiles import blob_key
from ..store.registry import Registry
from .profiling import group_parts, labeled_minute_parts, segment_slices

if TYPE_CHECKING:
    from .scope import Scope

#: Most windows one query may ask for (``step`` over ``[start, end)``).
MAX_WINDOWS = 10_000
#: Buckets a query's windows may cover before they are clamped to the days holding data:
#: past it, one small aggregate over the model's stored buckets bounds the work.
CLAMP_AFTER = 2_000


def metric_names(spec: ModelSpec) -> list[str]:
    """Built-in metric names for the model's task, then the common ones."""
    return catalog.metric_names(spec.task)


def windows(start: Any, end: Any, step: Any) -> list[tuple[int, int]]:
    """Window bounds in microseconds; the last window is cut at ``end``.

    Times outside years 1-9999 and more than :data:`MAX_WINDOWS` windows raise
    :class:`~mlpulse.errors.ConfigError` before any work is done.
    """
    now = to_micros("now")
    lo = to_micros(start, now=now)
    hi = to_micros(end, now=now)
    if hi < lo:
        raise ConfigError(f"window end {end!r} is before its start {start!r}")
    return split(lo, hi, step)


def split(lo: int, hi: int, step: Any) -> list[tuple[int, int]]:
    """``[lo, hi)`` (microseconds) cut into windows of ``step``, the last cut at ``hi``;
    ``None`` gives one window. The count is checked before any window is built.

    >>> split(0, 150 * MINUTE, "1h") == [(0, 60 * MINUTE), (60 * MINUTE, 120 * MINUTE),
    ...                                  (120 * MINUTE, 150 * MINUTE)]
    True
    """
    if step is None:
        return [(lo, hi)]
    width = parse_duration(step)
    count = -(-(hi - lo) // width)
    if count > MAX_WINDOWS:
        raise ConfigError(
            f"step {step!r} cuts {from_micros(lo).isoformat()} to {from_micros(hi).isoformat()} "
            f"into {count:,} windows; a query may have at most {MAX_WINDOWS:,}: use a larger "
            "step or a shorter span"
        )
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
    text = f"{column}={value}"
    try:
        text.encode("utf-8")  # no stored segment value can hold a lone surrogate
    except UnicodeEncodeError:
        raise ConfigError(
            f"model {spec.name!r}: segment value {value!r} is not valid Unicode"
        ) from None
    return text


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
        marks = retention.marks(self.store, self.spec.model_id)
        plans = [_plan(lo, hi, finest, marks) for lo, hi in self._clamped(bounds, finest)]
        model_id = self.spec.model_id
        # the blob keys of every (resolution, bucket, part) the windows use, over versions;
        # with metric parts, also those of the minutes that window edges cut
        names: dict[tuple[str, int, str], list[str]] = {}
        wanted = {
            (resolution, bucket, part)
            for buckets, _ in plans
            for resolution, bucket in buckets
            for part in parts
        }
        if finest == "minute":
            wanted.update(
                ("minute", lo - lo % MINUTE, part)
                for _buckets, partial in plans
                for lo, _hi in partial
                for part in (*parts, CORE)
            )
        for resolution, bucket, part in wanted:
            names[(resolution, bucket, part)] = [
                blob_key(model_id, (v, segment, resolution, bucket, part)) for v in versions
            ]
        cur = self.store.cursor()
        found = profile_store.entries(
            cur, [name for group in names.values() for name in group], self.store.blobs
        )
        if finest == "minute":
            plans = [self._resolve_edges(plan, names, found) for plan in plans]
        partial_ranges = [r for _buckets, partial in plans for r in partial]
        partial_parts = self._partials(cur, partial_ranges, parts, versions, segment, decode)

        out = []
        for buckets, partial in plans:
            runs = _runs(buckets)
            merged: dict[str, Any] = {}
            for part in parts:
                n = 0
                values = []
                for run in runs:
                    run_names = tuple(name for r, b in run for name in names[(r, b, part)])
                    present = [found[name] for name in run_names if name in found]
                    n += sum(rows for rows, _blob in present)
                    if present and part in decode:
                        values.append(self._run_state(part, run_names, present))
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

    def _clamped(self, bounds: Sequence[tuple[int, int]], finest: str) -> Sequence[tuple[int, int]]:
        """The windows cut to the days that hold the model's stored buckets, where their
        covers would be long (a window from year 1 to 9999 costs what the data's days cost).

        Days are boundaries of every resolution, and outside them nothing is stored, so the
        clamped windows are covered by exactly the same stored buckets and edges holding
        data: the answer does not change. Empty windows come back as ``(lo, lo)``.
        """
        total = 0
        for lo, hi in bounds:
            total += cover_size(lo, hi, finest)
            if total > CLAMP_AFTER:
                break
        else:
            return bounds
        span = profile_store.bucket_span(self.store.cursor(), self.spec.model_id)
        if span is None:
            return [(lo, lo) for lo, _hi in bounds]
        first, stop = align_down(span[0], DAY), align_down(span[1], DAY) + DAY
        return [(max(lo, first), max(min(hi, stop), max(lo, first))) for lo, hi in bounds]

    def _resolve_edges(
        self,
        plan: tuple[list[tuple[str, int]], list[tuple[int, int]]],
        names: dict[tuple[str, int, str], list[str]],
        found: dict[str, profile_store.Entry],
    ) -> tuple[list[tuple[str, int]], list[tuple[int, int]]]:
        """Answer edge ranges from their minute's stored parts where the minute's event-time
        span shows that the range holds all of its rows (as when a window ends now) or none;
        only the others need raw rows."""
        buckets, partial = plan
        if not partial:
            return plan
        buckets = list(buckets)
        cut = []
        kept_from = retention.marks(self.store, self.spec.model_id).minute
        for lo, hi in partial:
            minute = lo - lo % MINUTE
            if lo < kept_from or hi > minute + MINUTE:  # no minute profile for the range
                cut.append((lo, hi))
                continue
            key = ("minute", minute, CORE)
            present = [(name, found[name]) for name in names[key] if name in found]
            spans = [self._run_state(CORE, (name,), [entry]) for name, entry in present]
            if any(s.first_ts is None for s in spans):
                cut.append((lo, hi))
            elif all(hi <= s.first_ts or s.last_ts < lo for s in spans):
                continue  # no rows in the range
            elif all(lo <= s.first_ts and s.last_ts < hi for s in spans):
                buckets.append(("minute", minute))
            else:
                cut.append((lo, hi))
        buckets.sort(key=lambda bucket: bucket[1])
        return buckets, cut

    def _run_state(self, part: str, run_names: tuple[str, ...], present: list) -> Any:
        """The merged state of a run of adjacent buckets of one resolution.

        Merges are memoised against the very blobs they came from: the windows of a
        repeated query (a dashboard refreshing) share them until a bucket is rewritten.
        The memoised state is shared, so callers must merge it into a new state, never
        into it (``merge_all`` does so).
        """
        blobs = tuple(blob for _rows, blob in present)
        memo = self.store.merged_runs
        state = memo.get(run_names, blobs)
        if state is None:
            state = merge_all(part, [decode_part(part, blob) for blob in blobs])
            # counted with its blobs, which the memo keeps alive even after the cache drops them
            size = approx_nbytes(state) + sum(len(blob) for blob in blobs)
            memo.put(run_names, blobs, state, size)
        return state

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
        ranges = sorted(set(ranges))  # ranges of one query never overlap
        table = self._range_rows(cur, ranges, needed)
        present = pc.unique(table.column("__version")).to_pylist()
        if not set(present) <= set(versions):
            table = table.filter(pc.is_in(table.column("__version"), pa.array(versions)))
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
            # keys are sorted: count the runs
            edges = np.flatnonzero(np.diff(keys, prepend=-1, append=-1))
            for lo, count in zip(keys[edges[:-1]].tolist(), np.diff(edges).tolist(), strict=True):
                out[(lo, part)] = [int(count)]
        wanted = tuple(p for p in parts if p != LABELED and p in decode)
        if wanted:
            versions_col = table.column("__version")
            present = pc.unique(versions_col).to_pylist()
            for version in present:
                sub = table if len(present) == 1 else table.filter(pc.equal(versions_col, version))
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

    def _range_rows(self, cur, ranges: list[tuple[int, int]], needed: list[str]) -> pa.Table:
        """Rows in the (sorted, disjoint) ranges, in time order, with ``__minute`` set to the
        start of each row's range; taken from the store's cache of minute rows."""
        minutes = sorted({m for lo, hi in ranges for m in range(lo - lo % MINUTE, hi, MINUTE)})
        by_minute = self._minute_rows(cur, minutes, needed)
        # the minutes' rows in time order, then one take of the ranges' rows
        rows = pa.concat_tables([by_minute[m].select([*needed, "__at"]) for m in minutes])
        rows = rows.combine_chunks()
        at = rows.column("__at").to_numpy()
        bounds = np.searchsorted(at, np.array(ranges, dtype=np.int64).ravel()).reshape(-1, 2)
        counts = bounds[:, 1] - bounds[:, 0]
        taken = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in bounds.tolist()])
        table = rows.select(needed).take(pa.array(taken, pa.int64()))
        starts = np.array([lo for lo, _hi in ranges], dtype=np.int64)
        return table.append_column("__minute", pa.array(np.repeat(starts, counts), pa.int64()))

    def _minute_rows(self, cur, minutes: list[int], needed: list[str]) -> dict[int, pa.Table]:
        """Each minute's raw rows (all versions), sorted by ``__at`` (event time in µs).

        Window edges of a repeated query fall in the same few minutes again and again, and
        finding a minute's rows means scanning the raw table's minute column: the rows are
        cached per minute, dropped whenever a write changes that minute.
        """
        spec = self.spec
        cache = self.store.minute_rows
        keys = [(spec.model_id, m) for m in minutes]
        out = {
            key[1]: rows
            for key, rows in cache.get_many(keys).items()
            if set(needed).issubset(rows.column_names)
        }
        missing = [m for m in minutes if m not in out]
        if not missing:
            return out
        columns = ", ".join(quote(c) for c in needed)
        if missing[-1] - missing[0] == (len(missing) - 1) * MINUTE:  # one run: a range filter
            where = f"__minute BETWEEN {missing[0]} AND {missing[-1]}"
        elif len(missing) <= 512:
            # an IN list lets DuckDB skip row groups by their minute ranges (zone maps)
            listed = ", ".join(str(m) for m in missing)
            where = f"__minute BETWEEN {missing[0]} AND {missing[-1]} AND __minute IN ({listed})"
        else:  # long lists (feature edges span up to an hour each): the span, cut below
            where = f"__minute BETWEEN {missing[0]} AND {missing[-1]}"
        with cache.filling() as remember:
            source = lake.raw_source(
                self.store,
                spec,
                missing[0],
                missing[-1] + MINUTE,
                what="a window edge that no stored bucket covers",
            )
            rows = query_arrow(
                cur,
                f"SELECT __minute, {columns}, epoch_us(__ts) AS __at FROM {source} "
                f"WHERE {where} ORDER BY __at",
            )
            of_row = rows.column("__minute").to_numpy()
            rows = rows.drop_columns(["__minute"])
            wanted = np.array(missing, dtype=np.int64)
            firsts = np.searchsorted(of_row, wanted).tolist()
            stops = np.searchsorted(of_row, wanted + MINUTE).tolist()
            fetched = {}
            for minute, first, stop in zip(missing, firsts, stops, strict=True):
                # a compact copy per minute, so evicting one frees its memory
                fetched[(spec.model_id, minute)] = rows.take(
                    pa.array(np.arange(first, stop, dtype=np.int64))
                )
            remember(fetched)
        out.update((key[1], table) for key, table in fetched.items())
        return out


def _plan(
    lo: int, hi: int, finest: str, marks: retention.Marks
) -> tuple[list[tuple[str, int]], list[tuple[int, int]]]:
    """:func:`~mlpulse._time.decompose` over the resolutions retention left at each
    instant: days before the hour mark, hours (and coarser) before the minute mark, then
    ``finest``. The marks are bucket boundaries of the coarser level, so the pieces tile
    ``[lo, hi)`` exactly; edges no stored bucket covers are left to raw rows.

    >>> from mlpulse._time import HOUR, MINUTE
    >>> _plan(0, 3 * HOUR + 30 * MINUTE, "minute", retention.Marks(minute=2 * HOUR))[0]
    [('hour', 0), ('hour', 3600000000), ('hour', 7200000000), ('10min', 10800000000), ('10min', 11400000000), ('10min', 12000000000)]
    """
    minute = max(marks.minute, marks.hour)
    if lo >= minute:
        return decompose(lo, hi, finest)
    pieces = (
        (lo, min(hi, marks.hour), "day"),
        (max(lo, marks.hour), min(hi, minute), "hour" if finest != "day" else "day"),
        (max(lo, minute), hi, finest),
    )
    buckets: list[tuple[str, int]] = []
    partial: list[tuple[int, int]] = []
    for start, end, level in pieces:
        if start < end:
            more, edges = decompose(start, end, level)
            buckets += more
            partial += edges
    return buckets, partial


def _runs(buckets: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """Split a window's buckets (in time order) into runs of one resolution."""
    runs: list[list[tuple[str, int]]] = []
    for bucket in buckets:
        if runs and runs[-1][0][0] == bucket[0]:
            runs[-1].append(bucket)
        else:
            runs.append([bucket])
    return runs


def compute_metrics(
    store: Store,
    registry: Registry,
    scope: Scope,
    names: Sequence[str] | str | None,
    ci: float | None = None,
) -> pd.DataFrame:
    """The ``model.metrics`` frame: window_start, window_end, n, n_labeled, <metrics>.

    With a confidence level ``ci``, each metric is followed by ``<metric>_lower`` and
    ``<metric>_upper`` (see :mod:`mlpulse.metrics.confidence`; methods in
    ``frame.attrs["ci"]``)."""
    level = confidence.check_level(ci)
    spec, versions = scope.spec, scope.versions
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
    seg = scope.segment_key
    bounds = scope.bounds
    query = WindowQuery(store, registry, spec)
    task_metrics = TASK_METRICS[spec.task]
    decode: set[str] = set()
    if any(name in task_metrics for name in names):
        decode.add(LABELED)
    if any(name in CORE_METRICS for name in names):
        decode.add(CORE)
    merged = query.merged(bounds, [CORE, LABELED], versions=versions, segment=seg, decode=decode)
    # columns first, one DataFrame at the end: a one-window frame built from row dicts and
    # converted column by column cost ~5x more than the query itself (alert rounds)
    builtin_names = [name for name in names if name in builtin]
    values: dict[str, list[Any]] = {name: [] for name in builtin_names}
    bands: dict[str, list[tuple[float, float]]] = {name: [] for name in builtin_names}
    counts, labeled_counts = [], []
    for parts in merged:
        core, labeled = parts[CORE], parts[LABELED]
        n, n_labeled = parts[f"n_{CORE}"], parts[f"n_{LABELED}"]
        counts.append(n)
        labeled_counts.append(n_labeled)
        for name in builtin_names:
            values[name].append(_builtin(name, spec, core, labeled, n, n_labeled, task_metrics))
            if level is not None:
                bands[name].append(
                    confidence.interval(name, spec.task, core, labeled, n, n_labeled, level)
                )
    data: dict[str, Any] = {
        "window_start": _utc([lo for lo, _ in bounds]),
        "window_end": _utc([hi for _, hi in bounds]),
        "n": np.asarray(counts, dtype=np.int64),
        "n_labeled": np.asarray(labeled_counts, dtype=np.int64),
    }
    for name in names:
        if name in builtin:
            data[name] = np.asarray(values[name], dtype=np.float64)
        else:
            data[name] = np.asarray(
                [_custom(store, spec, custom[name], lo, hi, versions, seg, name) for lo, hi in bounds],
                dtype=np.float64,
            )
    if level is None:
        return pd.DataFrame(data, columns=["window_start", "window_end", "n", "n_labeled", *names])
    columns = ["window_start", "window_end", "n", "n_labeled"]
    for name in names:
        pairs = np.asarray(bands[name], dtype=np.float64).reshape(-1, 2) if name in builtin else (
            np.full((len(bounds), 2), math.nan)
        )
        data[f"{name}_lower"], data[f"{name}_upper"] = pairs[:, 0], pairs[:, 1]
        columns += [name, f"{name}_lower", f"{name}_upper"]
    frame = pd.DataFrame(data, columns=columns)
    frame.attrs["ci"] = {
        "level": level,
        "methods": {name: confidence.method_of(name, name in builtin) for name in names},
    }
    return frame


def _utc(micros: list[int]) -> pd.DatetimeIndex:
    """Microseconds since the epoch as UTC times (the frames' datetime64[us, UTC])."""
    return pd.to_datetime(np.asarray(micros, dtype="datetime64[us]"), utc=True)


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
    store: Store,
    spec: ModelSpec,
    fn: Any,
    lo: int,
    hi: int,
    versions: list[str],
    segment: str,
    name: str = "",
) -> float:
    source = lake.raw_source(store, spec, lo, hi, what=f"custom metric {name or fn.__name__!r}")
    sql = (
        f"SELECT __label, __prediction FROM {source} WHERE __label IS NOT NULL "
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


def compute_summary(store: Store, registry: Registry, scope: Scope) -> pd.DataFrame:
    """One row per (window, feature column): count, missing, type_errors (values of the wrong
    type, stored as null), mean, std, min, p50, max, distinct, top."""
    spec, versions = scope.spec, scope.versions
    seg = scope.segment_key
    bounds = scope.bounds
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
