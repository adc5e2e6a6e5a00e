"""Storing bucket profiles computed elsewhere (Spark partitions, another process).

A profile import is a table of serialised parts, one row per ``(segment, resolution, bucket,
part)`` of one model version, exactly as the embedded engine keys them (see
:mod:`mlpulse.engine.profiling`). With ``replace=True`` the ``(resolution, bucket)`` pairs it
covers are replaced as a whole (every segment and part of them): a batch job that recomputed
those buckets from all of their rows re-runs idempotently, and a re-run after more labels
arrived updates them. With ``replace=False`` the parts are merged into what is stored (a
stream's micro-batches, each holding new rows); a ``batch_id`` then makes a replayed
micro-batch a no-op.

Segment values are admitted here, as the engine admits them at ingest (up to the cap, in
sorted order); the slices of values that do not fit are merged into ``column=__other__``.
Feature columns the model does not know yet are added, with the kind their states show.

Every part is decoded and checked; a part that is stored as it came (not pooled into
``__other__`` with another slice, not merged into a stored part) is stored as the bytes
received, not re-encoded.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .._time import RESOLUTIONS
from ..errors import ConfigError
from ..profiles.bucket import (
    CORE,
    FEATURES,
    LABELED,
    CoreState,
    decode_part,
    encode_part,
    merge_part,
    part_rows,
)
from ..profiles.categorical import CategoricalState
from ..profiles.classification import BinaryState, MulticlassState
from ..profiles.numeric import NumericState
from ..profiles.regression import RegressionState
from ..schema import CATEGORICAL, NUMERIC, OTHER_SEGMENT, ModelSpec
from ..store import profiles as profile_store
from .ingest import IngestReport
from .profiling import Key

#: Columns of a profile import, with their Arrow types.
COLUMNS: dict[str, pa.DataType] = {
    "segment": pa.string(),
    "resolution": pa.string(),
    "bucket": pa.int64(),
    "part": pa.string(),
    "blob": pa.binary(),
}
#: Resolutions each part is kept at (features from the hour up, as the engine keeps them).
PART_RESOLUTIONS: dict[str, tuple[str, ...]] = {
    CORE: tuple(RESOLUTIONS),
    LABELED: tuple(RESOLUTIONS),
    FEATURES: tuple(r for r in RESOLUTIONS if RESOLUTIONS[r] >= RESOLUTIONS["hour"]),
}
_LABELED_TYPES = {"binary": BinaryState, "multiclass": MulticlassState, "regression": RegressionState}


def as_table(name: str, profiles: Any) -> pa.Table:
    """The import as an Arrow table with :data:`COLUMNS` (from a table, batches or a list
    of row dicts), or :class:`~mlpulse.errors.ConfigError` naming what is wrong."""
    if isinstance(profiles, pa.RecordBatch):
        profiles = pa.Table.from_batches([profiles])
    elif isinstance(profiles, list):
        profiles = pa.Table.from_pylist(profiles) if profiles else pa.schema(COLUMNS).empty_table()
    elif not isinstance(profiles, pa.Table):
        try:
            import pandas as pd

            if isinstance(profiles, pd.DataFrame):
                profiles = pa.Table.from_pandas(profiles, preserve_index=False)
        except ImportError:  # pragma: no cover - pandas is a dependency
            pass
    if not isinstance(profiles, pa.Table):
        raise ConfigError(
            f"model {name!r}: profiles must be an Arrow table (or a list of row dicts) with "
            f"columns {', '.join(COLUMNS)}, not {type(profiles).__name__}"
        )
    missing = [c for c in COLUMNS if c not in profiles.column_names]
    if missing:
        raise ConfigError(
            f"model {name!r}: profiles lack the columns {', '.join(missing)}; an import has "
            f"{', '.join(COLUMNS)}"
        )
    try:
        return pa.table({c: profiles.column(c).cast(t) for c, t in COLUMNS.items()})
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise ConfigError(f"model {name!r}: profiles columns have the wrong types: {exc}") from None


def _check_state(spec: ModelSpec, part: str, value: Any, where: str) -> dict[str, str]:
    """Check a decoded part fits the model; return the feature kinds its states show."""
    if part == CORE:
        if not isinstance(value, CoreState):
            raise ConfigError(f"{where}: not a core state")
        want = CategoricalState if spec.task == "multiclass" else NumericState
        if value.prediction is not None and not isinstance(value.prediction, want):
            raise ConfigError(f"{where}: prediction state is not a {want.__name__} ({spec.task})")
        return {}
    if part == LABELED:
        labeled = _LABELED_TYPES[spec.task]
        if not isinstance(value, labeled):
            raise ConfigError(
                f"{where}: labeled state is a {type(value).__name__}; a {spec.task} model's is "
                f"a {labeled.__name__}"
            )
        return {}
    kinds: dict[str, str] = {}
    for column, state in value.items():
        kind = NUMERIC if isinstance(state, NumericState) else CATEGORICAL
        if not isinstance(state, NumericState | CategoricalState):
            raise ConfigError(f"{where}: column {column!r} holds a {type(state).__name__}")
        known = spec.features.get(column)
        if known is not None and known != kind:
            raise ConfigError(f"{where}: column {column!r} is {known} but its state is {kind}")
        kinds[column] = kind
    return kinds


def decode(
    spec: ModelSpec, version: str, table: pa.Table, blobs: dict[Key, bytes] | None = None
) -> tuple[dict[Key, Any], dict[str, str]]:
    """Decoded parts keyed as stored, and the new feature columns with their kinds (and,
    into ``blobs`` when given, each part's bytes as received).

    Every row is checked: resolution, part, bucket alignment, segment column, duplicate keys,
    the bytes and the state types, each error naming the model and the row."""
    parts: dict[Key, Any] = {}
    new: dict[str, str] = {}
    columns = {c: table.column(c).to_pylist() for c in COLUMNS}
    for row, (segment, resolution, bucket, part, blob) in enumerate(
        zip(*columns.values(), strict=True)
    ):
        where = f"model {spec.name!r}: profiles row {row}"
        if part not in PART_RESOLUTIONS:
            raise ConfigError(f"{where}: part {part!r} is not one of {', '.join(PART_RESOLUTIONS)}")
        if resolution not in PART_RESOLUTIONS[part]:
            raise ConfigError(
                f"{where}: {part} parts are kept at {', '.join(PART_RESOLUTIONS[part])}, "
                f"not {resolution!r}"
            )
        if bucket is None or bucket % RESOLUTIONS[resolution]:
            raise ConfigError(
                f"{where}: bucket {bucket!r} is not the start of a {resolution} (microseconds "
                "since the epoch, aligned)"
            )
        if segment is None or blob is None:
            raise ConfigError(f"{where}: missing segment or blob")
        if segment:
            column, sep, value = segment.partition("=")
            if not sep or column not in spec.segments or not value:
                raise ConfigError(
                    f"{where}: segment {segment!r} is not 'column=value' of a segment column "
                    f"({', '.join(spec.segments) or 'none'})"
                )
        key: Key = (version, segment, resolution, int(bucket), part)
        if key in parts:
            raise ConfigError(f"{where}: {segment or 'all rows'} {resolution} {bucket} {part} twice")
        try:
            value = decode_part(part, blob)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{where}: not a {part} part: {exc!r}") from None
        new.update({c: k for c, k in _check_state(spec, part, value, where).items()
                    if c not in spec.features})  # fmt: skip
        parts[key] = value
        if blobs is not None:
            blobs[key] = blob
    return parts, new


def pool_segments(
    parts: dict[Key, Any], admitted: dict[str, set[str]], pooled: set[Key] | None = None
) -> dict[Key, Any]:
    """Slices of segment values outside ``admitted`` merged into ``column=__other__``.

    A part that keeps its key alone is passed on as it is (not copied); the keys that
    received a merge are added to ``pooled`` when given."""
    targets: dict[Key, list[Key]] = {}
    for key in sorted(parts, key=lambda k: k[1]):
        version, segment, resolution, bucket, part = key
        if segment:
            column, _, name = segment.partition("=")
            if name != OTHER_SEGMENT and name not in admitted.get(column, set()):
                segment = f"{column}={OTHER_SEGMENT}"
        targets.setdefault((version, segment, resolution, bucket, part), []).append(key)
    out: dict[Key, Any] = {}
    for target, sources in targets.items():
        if sources == [target]:
            out[target] = parts[target]
            continue
        value = None
        for source in sources:
            value = merge_part(target[4], value, parts[source])
        out[target] = value
        if pooled is not None:
            pooled.add(target)
    return out


def seen_segments(parts: dict[Key, Any], spec: ModelSpec) -> dict[str, list[str]]:
    """Per segment column, the values the import's slices name (sorted, without __other__)."""
    values: dict[str, set[str]] = {c: set() for c in spec.segments}
    for _version, segment, *_rest in parts:
        if segment:
            column, _, name = segment.partition("=")
            if name != OTHER_SEGMENT:
                values[column].add(name)
    return {c: sorted(v) for c, v in values.items()}


def rows_of(parts: dict[Key, Any]) -> int:
    """Rows the import profiles: its all-rows core parts at the finest resolution it has."""
    finest = min(
        (RESOLUTIONS[k[2]] for k in parts if k[4] == CORE and not k[1]), default=None
    )
    return sum(
        v.n for k, v in parts.items() if k[4] == CORE and not k[1] and RESOLUTIONS[k[2]] == finest
    )


def save(
    conn,
    store: Any,
    spec: ModelSpec,
    parts: dict[Key, Any],
    replace: bool,
    blobs: dict[Key, bytes] | None = None,
) -> int:
    """Write the (pooled) parts: replacing the buckets they cover, or merged into what is
    stored. A part whose bytes are in ``blobs`` is stored as those bytes (they decode to it)
    unless it is merged with a stored part. Returns the stored parts dropped by a
    replacement."""
    blobs = blobs or {}
    if replace:
        covered = {(k[2], k[3]) for k in parts}
        dropped = 0
        for version in sorted({k[0] for k in parts}):
            dropped += profile_store.replace_buckets(
                conn, spec.model_id, version, covered, {}, store.blobs
            )
        merged = parts
    else:
        stored = profile_store.load(conn, spec.model_id, parts.keys(), store.blobs)
        merged = dict(parts)
        for key, value in stored.items():
            merged[key] = merge_part(key[4], value, parts[key])
        blobs = {k: b for k, b in blobs.items() if k not in stored}
        dropped = 0
    profile_store.save_encoded(
        conn,
        spec.model_id,
        {k: (part_rows(k[4], v), blobs.get(k) or encode_part(k[4], v)) for k, v in merged.items()},
        store.blobs,
    )
    return dropped


def bucket_count(parts: dict[Key, Any]) -> int:
    return len({(k[2], k[3]) for k in parts})


def put_profiles(
    engine: Any,
    spec: ModelSpec,
    version: str,
    profiles: Any,
    *,
    replace: bool = True,
    batch_id: str | None = None,
    batch_hash: str | None = None,
) -> dict[str, Any]:
    """Store an import in one transaction (see the module docstring); returns ``rows``
    (profiled rows), ``parts`` and ``buckets`` stored, ``replaced`` (stored parts dropped)
    and ``duplicate`` (a batch id seen before: nothing was written)."""
    table = as_table(spec.name, profiles)
    received: dict[Key, bytes] = {}
    parts, new = decode(spec, version, table, received)

    def done(report: Any) -> dict[str, Any]:
        return {"rows": report.received, "parts": report.stored, "buckets": 0,
                "replaced": 0, "duplicate": True}  # fmt: skip

    if batch_id is not None and (seen := engine._seen(spec, batch_id, None, batch_hash)):
        return done(seen)
    with engine.store.write() as conn:
        if batch_id is not None and (seen := engine._seen(spec, batch_id, conn, batch_hash)):
            return done(seen)
        if new:
            spec = engine.registry._add_features(conn, spec, new, error=ConfigError)
        admitted = {
            column: engine.registry.admit_segment_values(conn, spec, column, values)
            for column, values in seen_segments(parts, spec).items()
        }
        merged: set[Key] = set()
        pooled = pool_segments(parts, admitted, merged)
        as_received = {k: received[k] for k in pooled if k not in merged and k in received}
        dropped = save(conn, engine.store, spec, pooled, replace, as_received)
        rows = rows_of(pooled)
        if batch_id is not None:
            engine._remember(
                conn, spec, batch_id, "profiles", IngestReport(rows, len(pooled), 0), batch_hash
            )
    return {"rows": rows, "parts": len(pooled), "buckets": bucket_count(pooled),
            "replaced": dropped, "duplicate": False}  # fmt: skip


__all__ = ["COLUMNS", "as_table", "decode", "pool_segments", "put_profiles", "rows_of", "save"]
