"""Reading and writing bucket-profile parts in the ``profiles`` table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from ..engine.parts import CORE, FEATURES, LABELED, decode_part, encode_part, part_rows

PARTS = (CORE, FEATURES, LABELED)

Key = tuple[str, str, str, int, str]  # version, segment, resolution, bucket, part

_KEY_SCHEMA = pa.schema(
    [
        ("version", pa.string()),
        ("segment", pa.string()),
        ("resolution", pa.string()),
        ("bucket", pa.int64()),
        ("part", pa.string()),
    ]
)


def _keys_table(keys: list[Key]) -> pa.Table:
    columns: list[Any] = list(zip(*keys, strict=True)) if keys else [[] for _ in range(5)]
    return pa.table(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, _KEY_SCHEMA, strict=True)],
        schema=_KEY_SCHEMA,
    )


def load(conn, model_id: int, keys: Iterable[Key]) -> dict[Key, Any]:
    """Decoded parts for the keys that exist."""
    keys = list(keys)
    if not keys:
        return {}
    wanted = _keys_table(keys)
    conn.register("__wanted_keys", wanted)
    try:
        rows = conn.execute(
            "SELECT p.version, p.segment, p.resolution, p.bucket, p.part, p.blob FROM profiles p "
            "JOIN __wanted_keys k ON p.version = k.version AND p.segment = k.segment "
            "AND p.resolution = k.resolution AND p.bucket = k.bucket AND p.part = k.part "
            "WHERE p.model_id = ?",
            [model_id],
        ).fetchall()
    finally:
        conn.unregister("__wanted_keys")
    return {(v, s, r, int(b), p): decode_part(p, blob) for v, s, r, b, p, blob in rows}


def save(conn, model_id: int, parts: dict[Key, Any]) -> None:
    """Replace the stored parts for these keys (one delete and one insert)."""
    if not parts:
        return
    keys = list(parts)
    blobs = [encode_part(k[4], parts[k]) for k in keys]
    table = _keys_table(keys)
    table = table.append_column(
        "n", pa.array([part_rows(k[4], parts[k]) for k in keys], pa.int64())
    )
    table = table.append_column("blob", pa.array(blobs, pa.binary()))
    conn.register("__new_parts", table)
    try:
        conn.execute(
            "DELETE FROM profiles p USING __new_parts k WHERE p.model_id = ? AND p.version = k.version "
            "AND p.segment = k.segment AND p.resolution = k.resolution AND p.bucket = k.bucket "
            "AND p.part = k.part",
            [model_id],
        )
        conn.execute(
            "INSERT INTO profiles SELECT ?, version, segment, resolution, bucket, part, n, blob "
            "FROM __new_parts",
            [model_id],
        )
    finally:
        conn.unregister("__new_parts")


def load_range(
    conn,
    model_id: int,
    *,
    resolution: str,
    start: int,
    end: int,
    parts: Iterable[str],
    versions: Iterable[str] | None = None,
    segments: Iterable[str] | None = None,
    blobs: Iterable[str] | None = None,
    buckets: Iterable[int] | None = None,
) -> list[tuple[str, str, int, str, int, bytes | None]]:
    """``(version, segment, bucket, part, n, blob)`` of one resolution in [start, end).

    ``blobs`` limits which parts' blobs are read (default: all); others come back as None.
    ``buckets`` limits the result to those bucket starts.
    """
    parts = [p for p in parts if p in PARTS]
    decoded = [p for p in (parts if blobs is None else blobs) if p in PARTS]
    # part names are internal constants, inlined so DuckDB can push the filter into the scan
    in_parts = ", ".join(f"'{p}'" for p in parts) or "NULL"
    in_decoded = ", ".join(f"'{p}'" for p in decoded) or "NULL"
    sql = (
        f"SELECT version, segment, bucket, part, n, CASE WHEN part IN ({in_decoded}) THEN blob END "
        "FROM profiles WHERE model_id = ? AND resolution = ? AND bucket >= ? AND bucket < ? "
        f"AND part IN ({in_parts})"
    )
    params: list[Any] = [model_id, resolution, start, end]
    if buckets is not None:
        # integers, inlined: an IN list lets DuckDB skip the blobs of unwanted buckets
        sql += f" AND bucket IN ({', '.join(str(int(b)) for b in buckets) or 'NULL'})"
    if versions is not None:
        sql += " AND list_contains(?, version)"
        params.append(list(versions))
    if segments is not None:
        sql += " AND list_contains(?, segment)"
        params.append(list(segments))
    return conn.execute(sql, params).fetchall()
