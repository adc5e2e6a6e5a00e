"""Reference data: the rows of each version's reference in ``reference_<id>``, and its
features profile beside the bucket profiles (resolution ``reference``)."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from ..errors import SchemaError, StoreError
from ..schema import NUMERIC, ModelSpec, check_distinct, column_kind
from . import profiles as profile_store
from .database import Store, quote, registered
from .registry import reference_table


def reference_columns(store: Store, spec: ModelSpec) -> list[str]:
    """The columns of the model's reference table (empty before the first upload)."""
    return list(store.table_columns(reference_table(spec)))


def store_reference(
    store: Store, spec: ModelSpec, version: str, table: pa.Table, states: dict[str, Any]
) -> None:
    """Replace a version's reference rows with ``table`` and its features profile with
    ``states``; new columns widen the table (identifiers quoted, one statement each)."""
    name = reference_table(spec)
    try:
        # The table is created (or widened) in a transaction of its own: DuckDB 2.0 loses
        # the rows of a bulk INSERT into a table made by CREATE TABLE AS ... LIMIT 0 in the
        # same transaction (count(*) sees them, scans do not).
        with store.write() as conn, registered(conn, "__ref", table):
            have = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                    [name],
                ).fetchall()
            ]
            if not have:
                conn.execute(
                    f"CREATE TABLE {name} AS SELECT ?::VARCHAR AS __version, * FROM __ref LIMIT 0",
                    [version],
                )
            else:
                new = [c for c in table.column_names if c not in have]
                check_distinct(spec.name, new, have, what="reference column")
                types = dict(zip(table.column_names, table.schema.types, strict=True))
                for column in new:  # typed as a feature, else as its values are
                    kind = spec.features.get(column) or column_kind(types[column])
                    sql_type = "DOUBLE" if kind == NUMERIC else "VARCHAR"
                    conn.execute(f"ALTER TABLE {name} ADD COLUMN {quote(column)} {sql_type}")
        with store.write() as conn:
            with registered(conn, "__ref", table):
                conn.execute(f"DELETE FROM {name} WHERE __version = ?", [version])
                conn.execute(
                    f"INSERT INTO {name} BY NAME SELECT ?::VARCHAR AS __version, * FROM __ref",
                    [version],
                )
            profile_store.save(
                conn,
                spec.model_id,
                {(version, "", "reference", 0, "features"): states},
                store.blobs,
            )
    except duckdb.Error as exc:
        raise _reference_error(spec.name, version, exc) from exc


def _reference_error(model: str, version: str, exc: duckdb.Error) -> Exception:
    """An mlpulse error for a failed reference upload: the store's own failures (I/O,
    memory) are StoreErrors; the rest come from the data (a column whose values do not
    fit the type stored earlier, say)."""
    if isinstance(exc, duckdb.IOException | duckdb.OutOfMemoryException | duckdb.FatalException):
        return StoreError(
            f"model {model!r}: the reference of version {version!r} could not be stored: {exc}"
        )
    return SchemaError(
        f"model {model!r}: the reference of version {version!r} does not fit the stored "
        f"reference data: {exc}"
    )


__all__ = ["reference_columns", "store_reference"]
