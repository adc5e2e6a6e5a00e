"""Where drift, quality and estimation read their data: merged window profiles (sketch
mode) and raw rows of a window or of the reference (exact mode).

Columns are named as the user named them; the prediction and the label keep the model's
``prediction`` and ``label`` names. Raw prediction tables store them as ``__prediction``
and ``__label``; reference tables under the user's names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engine.query import WindowQuery
from ..profiles import BinaryState, MulticlassState
from ..profiles.bucket import CORE, FEATURES, LABELED
from ..schema import CATEGORICAL, NUMERIC, OTHER_SEGMENT, ModelSpec
from ..store import profiles as profile_store
from ..store.database import Store, quote
from ..store.lake import raw_source
from ..store.registry import Registry, raw_table, reference_table
from .samples import Counts, NumericSample


@dataclass(frozen=True)
class Column:
    """A column drift and quality look at: a feature, the prediction or the label."""

    name: str
    kind: str  # numeric | categorical
    role: str  # feature | prediction | label

    @property
    def raw(self) -> str:
        """Its name in the raw prediction table."""
        return {"prediction": "__prediction", "label": "__label"}.get(self.role, self.name)


def model_columns(spec: ModelSpec) -> list[Column]:
    """Features, then the prediction, then the label."""
    out = [Column(c, k, "feature") for c, k in spec.features.items()]
    pred_kind = CATEGORICAL if spec.task == "multiclass" else NUMERIC
    label_kind = NUMERIC if spec.task == "regression" else CATEGORICAL
    out.append(Column(spec.prediction, pred_kind, "prediction"))
    out.append(Column(spec.label, label_kind, "label"))
    return out


def sample_of(array: pa.ChunkedArray | pa.Array, column: Column) -> NumericSample | Counts:
    """Exact sample of a raw column."""
    from ..engine.validate import to_float, to_string

    if isinstance(array, pa.Array):
        array = pa.chunked_array([array])
    if column.kind == NUMERIC:
        values, null, malformed = to_float(array)
        return NumericSample.from_values(values[~(null | malformed)])
    strings, _ = to_string(array)
    counts = pc.value_counts(strings.drop_null() if hasattr(strings, "drop_null") else strings)
    names = counts.field("values").to_pylist()
    return Counts.from_mapping(dict(zip(names, counts.field("counts").to_pylist(), strict=True)))


def state_sample(state: Any, column: Column) -> NumericSample | Counts | None:
    """Sample of a profile state (sketch mode)."""
    if state is None:
        return None
    if isinstance(state, BinaryState):
        return Counts.from_mapping({"1": state.tp + state.fn, "0": state.fp + state.tn})
    if isinstance(state, MulticlassState):
        totals = state.true_counts().tolist()
        return Counts.from_mapping(dict(zip(state.classes, totals, strict=True)))
    if column.kind == NUMERIC:
        return NumericSample.from_state(state)
    return Counts.from_state(state)


# -- windows ----------------------------------------------------------------------------


def segment_sql(
    store: Store, registry: Registry, spec: ModelSpec, segment: str
) -> tuple[str, list]:
    """SQL condition (starting with AND) and parameters for a parsed segment ('' for all)."""
    if not segment:
        return "", []
    column, value = segment.split("=", 1)
    if value == OTHER_SEGMENT:
        known = sorted(registry.segment_values(spec, column))
        return f" AND NOT list_contains(?, CAST({quote(column)} AS VARCHAR))", [known]
    return f" AND CAST({quote(column)} AS VARCHAR) = ?", [value]


def window_rows(
    store: Store,
    registry: Registry,
    spec: ModelSpec,
    columns: list[Column],
    lo: int,
    hi: int,
    versions: list[str],
    segment: str,
    *,
    limit: int | None = None,
    extra: tuple[str, ...] = (),
) -> pa.Table:
    """Raw rows of ``[lo, hi)`` (event time); columns renamed to the user's names."""
    have = set(store.table_columns(raw_table(spec)))
    wanted = [c for c in columns if c.raw in have]
    select = ", ".join(
        [f"{quote(c.raw)} AS {quote(c.name)}" for c in wanted] + [quote(e) for e in extra]
    )
    cond, params = segment_sql(store, registry, spec, segment)
    source = raw_source(store, spec, lo, hi, what="exact-mode drift")
    sql = (
        f"SELECT {select or '1 AS __none'} FROM {source} WHERE __ts >= make_timestamp(?::BIGINT) "
        f"AND __ts < make_timestamp(?::BIGINT) AND list_contains(?, __version){cond}"
    )
    if limit is not None:
        sql += f" USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7)"
    return store.fetch_arrow(sql, [lo, hi, versions, *params])


def reference_version(store: Store, spec: ModelSpec, version: str) -> str | None:
    """The version whose reference to use: this one's, else the latest version that has one."""
    name = reference_table(spec)
    if not store.table_columns(name):
        return None
    # one indexed-style probe per version: (DuckDB 2.0 was seen to return no groups for a
    # DISTINCT over a constant column of a large table, so no GROUP BY / DISTINCT here)
    for v in [version, *reversed(registry_versions(store, spec))]:
        if store.fetch_one(f"SELECT 1 FROM {name} WHERE __version = ? LIMIT 1", [v]):
            return v
    return None


def registry_versions(store: Store, spec: ModelSpec) -> list[str]:
    return Registry(store).versions(spec)


def reference_rows(
    store: Store,
    registry: Registry,
    spec: ModelSpec,
    version: str,
    columns: list[Column],
    segment: str = "",
    *,
    limit: int | None = None,
) -> pa.Table:
    """Reference rows of a version (columns under the user's names)."""
    name = reference_table(spec)
    have = set(store.table_columns(name))
    wanted = [c for c in columns if c.name in have]
    select = ", ".join(quote(c.name) for c in wanted) or "1 AS __none"
    cond, params = segment_sql(store, registry, spec, segment)
    sql = f"SELECT {select} FROM {name} WHERE __version = ?{cond}"
    if limit is not None:
        sql += f" USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7)"
    return store.fetch_arrow(sql, [version, *params])


def window_states(
    store: Store,
    registry: Registry,
    spec: ModelSpec,
    bounds: list[tuple[int, int]],
    versions: list[str],
    segment: str,
) -> list[dict[str, Any]]:
    """Per window: column name -> merged profile state (features, prediction, label) and
    ``__rows``, the window's row count."""
    query = WindowQuery(store, registry, spec)
    feats = query.merged(bounds, [FEATURES], versions=versions, segment=segment)
    cores = query.merged(bounds, [CORE, LABELED], versions=versions, segment=segment)
    out = []
    for f, c in zip(feats, cores, strict=True):
        states: dict[str, Any] = dict(f[FEATURES] or {})
        core = c[CORE]
        if core is not None and core.prediction is not None:
            states[spec.prediction] = core.prediction
        if c[LABELED] is not None and spec.task != "regression":
            states[spec.label] = c[LABELED]
        states["__rows"] = c[f"n_{CORE}"]
        states["__core"] = core
        out.append(states)
    return out


def reference_identity(store: Store, spec: ModelSpec, version: str) -> tuple[Any, ...] | None:
    """What results derived from a version's reference are keyed on in the store's
    ``reference_memo``: the reference's stored features blob, the very object the profile
    cache holds. Every reference upload writes a new one, so a memoised result can never
    outlive the data it came from (and it lives on the store: another store never sees it).
    None where no reference profile is stored."""
    name = profile_store.blob_key(spec.model_id, (version, "", "reference", 0, FEATURES))
    found = profile_store.entries(store.cursor(), [name], store.blobs)
    return (found[name][1],) if name in found else None


def reference_states(
    store: Store, registry: Registry, spec: ModelSpec, version: str
) -> dict[str, Any]:
    """Column name -> state of a version's reference: the stored features profile, plus the
    prediction and label, profiled from the reference rows once and memoised on the store."""
    from ..profiles import build_categorical, build_numeric

    key = (version, "", "reference", 0, FEATURES)
    found = profile_store.load(store.cursor(), spec.model_id, [key], store.blobs)
    states: dict[str, Any] = dict(found.get(key) or {})
    n = store.fetch_one(
        f"SELECT count(*) FROM {reference_table(spec)} WHERE __version = ?", [version]
    )[0]  # type: ignore[index]
    memo_key = ("reference_states", spec.model_id, version)
    identity = reference_identity(store, spec, version)
    extra = store.reference_memo.get(memo_key, identity) if identity is not None else None
    if extra is None:
        extra = {}
        targets = [c for c in model_columns(spec) if c.role != "feature"]
        table = reference_rows(store, registry, spec, version, targets)
        from ..engine.validate import to_float, to_string

        for column in targets:
            if column.name not in table.column_names:
                continue
            array = table.column(column.name)
            group = np.zeros(len(array), np.int64)
            if column.kind == NUMERIC:
                values, null, bad = to_float(array)
                extra[column.name] = build_numeric(values, group, 1, nulls=null | bad)[0]
            else:
                strings, _ = to_string(array)
                extra[column.name] = build_categorical(strings, group, 1)[0]
        if identity is not None:
            store.reference_memo.put(memo_key, identity, extra, size=table.nbytes + 4096)
    states.update(extra)
    states["__rows"] = int(n)
    return states
