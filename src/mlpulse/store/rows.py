"""Raw-row reads for investigation: a window's rows (segment ranking, slice finding), a
version's reference rows, and drill-down pages of stored and quarantined rows.

Every identifier is quoted with :func:`~mlpulse.store.database.quote` and every value is a
parameter: column names and ``where=`` values are user data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ..schema import ModelSpec
from .database import Store, quote
from .registry import raw_table, reference_table

#: Raw-table columns a drill-down row shows under a plain name (``raw name -> shown name``).
SYSTEM_COLUMNS = {
    "__id": "id",
    "__version": "version",
    "__ts": "timestamp",
    "__latency_ms": "latency_ms",
    "__trace_id": "trace_id",
    "__label_ts": "label_timestamp",
}


def window_columns(
    store: Store,
    spec: ModelSpec,
    lo: int,
    hi: int,
    versions: Sequence[str],
    columns: Sequence[str],
    *,
    labeled: bool = False,
) -> pa.Table:
    """Raw-table ``columns`` (raw names: ``__prediction``, ``__label``, features) of the rows
    of ``versions`` with event time in ``[lo, hi)`` microseconds; ``labeled``: only rows
    with a label. Features the table lacks (never logged) come back as nulls."""
    have = store.table_columns(raw_table(spec))
    select = (
        ", ".join(quote(c) if c in have else f"NULL::VARCHAR AS {quote(c)}" for c in columns)
        or "1 AS __none"
    )
    sql = (
        f"SELECT {select} FROM {raw_table(spec)} WHERE __ts >= make_timestamp(?::BIGINT) "
        "AND __ts < make_timestamp(?::BIGINT) AND list_contains(?, __version)"
    )
    if labeled:
        sql += " AND __label IS NOT NULL"
    return store.fetch_arrow(sql, [lo, hi, list(versions)])


def reference_columns_of(
    store: Store, spec: ModelSpec, version: str, columns: dict[str, tuple[str, str]]
) -> pa.Table | None:
    """A version's reference rows as ``{alias: (column, sql type)}`` (values cast with
    ``TRY_CAST``); None when the reference lacks one of the columns or has no rows."""
    name = reference_table(spec)
    have = store.table_columns(name)
    if not have or any(column not in have for column, _type in columns.values()):
        return None
    select = ", ".join(
        f"TRY_CAST({quote(column)} AS {sql_type}) AS {quote(alias)}"
        for alias, (column, sql_type) in columns.items()
    )
    table = store.fetch_arrow(f"SELECT {select} FROM {name} WHERE __version = ?", [version])
    return table if table.num_rows else None


def stored_rows(
    store: Store,
    spec: ModelSpec,
    lo: int,
    hi: int,
    versions: Sequence[str],
    where: dict[str, Any],
    ids: Sequence[str] | None,
    limit: int,
    after: tuple[int, str, str] | None,
) -> pa.Table:
    """One page of stored rows ordered by (event time, id, version), after the key
    ``after`` (keyset pagination). ``where`` maps raw column names to a value (equality),
    None (missing) or a list of values (any of them). The page carries ``__at`` (event time,
    microseconds) for the next key."""
    table = raw_table(spec)
    have = store.table_columns(table)
    columns = [c for c in have if c != "__minute"]
    select = ", ".join(quote(c) for c in columns)
    sql = (
        f"SELECT {select}, epoch_us(__ts) AS __at FROM {table} WHERE __ts >= make_timestamp(?::BIGINT) "
        "AND __ts < make_timestamp(?::BIGINT) AND list_contains(?, __version)"
    )
    params: list[Any] = [lo, hi, list(versions)]
    for column, value in where.items():
        clause, values = _condition(quote(column), value)
        sql += f" AND {clause}"
        params += values
    if ids is not None:
        sql += " AND list_contains(?, __id)"
        params.append(list(ids))
    if after is not None:
        at, last_id, last_version = after
        sql += (
            " AND (epoch_us(__ts) > ? OR (epoch_us(__ts) = ? AND (__id > ? OR "
            "(__id = ? AND __version > ?))))"
        )
        params += [at, at, last_id, last_id, last_version]
    sql += " ORDER BY __ts, __id, __version LIMIT ?"
    params.append(int(limit))
    return store.fetch_arrow(sql, params)


def quarantined_rows(
    store: Store,
    spec: ModelSpec,
    lo: int,
    hi: int,
    versions: Sequence[str],
    where: dict[str, Any],
    ids: Sequence[str] | None,
    limit: int,
    offset: int,
) -> pa.Table:
    """Quarantined prediction rows of ``versions`` received in ``[lo, hi)``, oldest first:
    received_at, version, id, reason, payload (the row as JSON). ``where`` (user column
    names) is matched against the payload's fields: text equal to the value's text, or the
    same number."""
    sql = (
        "SELECT received_at, version, id, reason, payload FROM quarantine WHERE model_id = ? "
        "AND kind = 'prediction' AND received_at >= make_timestamp(?::BIGINT) "
        "AND received_at < make_timestamp(?::BIGINT) AND list_contains(?, version)"
    )
    params: list[Any] = [spec.model_id, lo, hi, list(versions)]
    for column, value in where.items():
        path = '$."' + column.replace("\\", "\\\\").replace('"', '\\"') + '"'
        field = "json_extract_string(payload, ?)"
        options = value if isinstance(value, list | tuple) else [value]
        parts = []
        for option in options:
            if option is None:
                parts.append(f"{field} IS NULL")
                params.append(path)
            elif isinstance(option, int | float) and not isinstance(option, bool):
                parts.append(f"TRY_CAST({field} AS DOUBLE) = ?")
                params += [path, float(option)]
            else:
                parts.append(f"{field} = ?")
                params += [path, _text(option)]
        sql += " AND (" + (" OR ".join(parts) or "FALSE") + ")"
    if ids is not None:
        sql += " AND list_contains(?, id)"
        params.append(list(ids))
    sql += " ORDER BY received_at, batch_row, id LIMIT ? OFFSET ?"
    params += [int(limit), int(offset)]
    return store.fetch_arrow(sql, params)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _condition(column: str, value: Any) -> tuple[str, list[Any]]:
    """``column = ?``, ``column IS NULL`` or ``column IN (?, ...)`` with its parameters."""
    if value is None:
        return f"{column} IS NULL", []
    if isinstance(value, list | tuple):
        present = [v for v in value if v is not None]
        parts = []
        if present:
            parts.append(f"list_contains(?, {column})")
        if len(present) < len(value):
            parts.append(f"{column} IS NULL")
        return "(" + (" OR ".join(parts) or "FALSE") + ")", [list(present)] if present else []
    return f"{column} = ?", [value]


__all__ = [
    "SYSTEM_COLUMNS",
    "quarantined_rows",
    "reference_columns_of",
    "stored_rows",
    "window_columns",
]
