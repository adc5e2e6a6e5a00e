"""Training-side records the monitors compare against: training features (for skew),
``trained_at`` / ``max_age`` per version, and resource usage samples."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from .._time import parse_duration, to_micros
from ..errors import ConfigError, SchemaError
from ..schema import NUMERIC, ModelSpec, to_arrow
from ..store.database import Store, quote, unregister


def training_table(spec: ModelSpec) -> str:
    return f"training_{spec.model_id}"


def log_training_features(store: Store, spec: ModelSpec, table: Any, id: str) -> int:
    """Store training feature rows keyed by ``id`` (replacing earlier rows of the same ids)."""
    arrow = to_arrow(table, what=f"model {spec.name!r}: training features")
    if id not in arrow.column_names:
        raise SchemaError(f"model {spec.name!r}: training features lack the id column {id!r}")
    cols = [c for c in arrow.column_names if c in spec.features]
    ids = pa.compute.cast(arrow.column(id), pa.string())
    data = {"__id": ids}
    for c in cols:
        array = arrow.column(c)
        if spec.features[c] == NUMERIC:
            data[c] = pa.compute.cast(array, pa.float64())
        else:
            data[c] = pa.compute.cast(array, pa.string())
    new = pa.table(data)
    name = training_table(spec)
    with store.write() as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (__id VARCHAR NOT NULL)")
        have = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [name]
            ).fetchall()
        }
        for c in cols:
            if c not in have:
                kind = "DOUBLE" if spec.features[c] == NUMERIC else "VARCHAR"
                conn.execute(f"ALTER TABLE {name} ADD COLUMN {quote(c)} {kind}")
        conn.register("__train", new)
        try:
            conn.execute(f"DELETE FROM {name} WHERE __id IN (SELECT __id FROM __train)")
            conn.execute(f"INSERT INTO {name} BY NAME SELECT * FROM __train")
        finally:
            unregister(conn, "__train")
    return new.num_rows


def skew(
    store: Store, spec: ModelSpec, versions: list[str], *, tolerance: float = 1e-9
) -> pd.DataFrame:
    """Per feature, over ids both logged in serving and in training: column, ids,
    mismatches, rate. Numbers match within ``tolerance`` (relative); nulls match nulls."""
    from ..store.registry import raw_table

    # inlined into the SQL below: only ever as a float's repr
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise ConfigError(
            f"model {spec.name!r}: skew tolerance must be a number, not {tolerance!r}"
        )
    tolerance = float(tolerance)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ConfigError(f"model {spec.name!r}: skew tolerance must be finite and >= 0")
    name = training_table(spec)
    have = store.table_columns(name)
    cols = [c for c in spec.features if c in have]
    rows: list[dict[str, Any]] = []
    if not have or not cols:
        return pd.DataFrame(rows, columns=["column", "ids", "mismatches", "rate"])
    exprs = []
    for c in cols:
        a, b = f"r.{quote(c)}", f"t.{quote(c)}"
        if spec.features[c] == NUMERIC:
            same = (
                f"(({a} IS NULL AND {b} IS NULL) OR ({a} IS NOT NULL AND {b} IS NOT NULL AND "
                f"(({a} = {b}) OR abs({a} - {b}) <= {tolerance} * greatest(1.0, abs({b})))))"
            )
        else:
            same = f"({a} IS NOT DISTINCT FROM {b})"
        exprs.append(f"sum(CASE WHEN {same} THEN 0 ELSE 1 END)")
    sql = (
        f"SELECT count(*), {', '.join(exprs)} FROM {raw_table(spec)} r "
        f"JOIN {name} t ON r.__id = t.__id WHERE list_contains(?, r.__version)"
    )
    found = store.fetch_one(sql, [versions])
    n = int(found[0]) if found else 0
    for c, m in zip(cols, found[1:] if found else [], strict=False):
        m = int(m or 0)
        rows.append({"column": c, "ids": n, "mismatches": m, "rate": m / n if n else float("nan")})
    return pd.DataFrame(rows, columns=["column", "ids", "mismatches", "rate"])


def set_training_info(
    store: Store, spec: ModelSpec, version: str, trained_at: Any = None, max_age: Any = None
) -> None:
    ts = to_micros(trained_at) if trained_at is not None else None
    age = parse_duration(max_age) if max_age is not None else None
    with store.write() as conn:
        conn.execute(
            "DELETE FROM version_training WHERE model_id = ? AND version = ?",
            [spec.model_id, version],
        )
        conn.execute(
            "INSERT INTO version_training VALUES (?, ?, make_timestamp(?::BIGINT), ?)",
            [spec.model_id, version, ts, age],
        )


def training_info(store: Store, spec: ModelSpec, version: str) -> tuple[int | None, int | None]:
    row = store.fetch_one(
        "SELECT epoch_us(trained_at), max_age_us FROM version_training "
        "WHERE model_id = ? AND version = ?",
        [spec.model_id, version],
    )
    return (row[0], row[1]) if row else (None, None)


def log_resource_usage(
    store: Store, spec: ModelSpec, version: str, memory_mb: float, timestamp: Any = None
) -> None:
    ts = to_micros(timestamp) if timestamp is not None else to_micros(datetime.now(UTC))
    with store.write() as conn:
        conn.execute(
            "INSERT INTO resource_usage VALUES (?, ?, make_timestamp(?::BIGINT), ?)",
            [spec.model_id, version, ts, float(memory_mb)],
        )


def memory_mb(store: Store, spec: ModelSpec, version: str, lo: int, hi: int) -> float | None:
    row = store.fetch_one(
        "SELECT avg(memory_mb) FROM resource_usage WHERE model_id = ? AND version = ? "
        "AND ts >= make_timestamp(?::BIGINT) AND ts < make_timestamp(?::BIGINT)",
        [spec.model_id, version, lo, hi],
    )
    if row is None or row[0] is None:
        row = store.fetch_one(
            "SELECT avg(memory_mb) FROM resource_usage WHERE model_id = ? AND version = ?",
            [spec.model_id, version],
        )
    return float(row[0]) if row and row[0] is not None else None
