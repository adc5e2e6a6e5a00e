"""Reading and writing bucket-profile parts.

``profiles`` holds one small row per part (its key columns and row count) and
``profile_blobs`` the serialised part under a primary key. Queries filter the small rows,
then take the blobs they need from the store's :class:`~mlpulse.store.cache.BlobCache`,
going to ``profile_blobs`` only for those it lacks: a DuckDB scan reads every blob stored
beside the wanted ones, so the hot path must not depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from .._time import RESOLUTIONS
from ..engine.parts import CORE, FEATURES, LABELED, decode_part, encode_part, part_rows
from .cache import BlobCache

PARTS = (CORE, FEATURES, LABELED)

Key = tuple[str, str, str, int, str]  # version, segment, resolution, bucket, part


def blob_key(model_id: int, key: Key) -> str:
    """The primary key of a part's blob (the unit separator cannot occur in a bucket key)."""
    version, segment, resolution, bucket, part = key
    return "\x1f".join((str(model_id), version, segment, resolution, str(int(bucket)), part))


def _fetch(conn, keys: list[str], cache: BlobCache | None) -> dict[str, bytes]:
    """Blobs by key: from the cache where it has them, the rest in one database query."""
    found = cache.get_many(keys) if cache is not None else {}
    missing = [k for k in keys if k not in found]
    if missing:
        conn.register("__wanted_blobs", pa.table({"key": pa.array(missing, pa.string())}))
        try:
            rows = conn.execute(
                "SELECT b.key, b.blob FROM profile_blobs b SEMI JOIN __wanted_blobs w ON b.key = w.key"
            ).fetchall()
        finally:
            conn.unregister("__wanted_blobs")
        fetched = dict(rows)
        if cache is not None:
            cache.remember(fetched)
        found.update(fetched)
    return found


def _existing(conn, model_id: int, names: list[str]) -> list[str]:
    """Which of these blob keys are stored (asks the small ``profiles`` rows, not the blobs)."""
    conn.register("__wanted_keys", pa.table({"key": pa.array(names, pa.string())}))
    try:
        rows = conn.execute(
            "SELECT p.key FROM profiles p SEMI JOIN __wanted_keys w ON p.key = w.key "
            "WHERE p.model_id = ?",
            [model_id],
        ).fetchall()
    finally:
        conn.unregister("__wanted_keys")
    return [r[0] for r in rows]


def load(
    conn, model_id: int, keys: Iterable[Key], cache: BlobCache | None = None
) -> dict[Key, Any]:
    """Decoded parts for the keys that exist."""
    wanted = {blob_key(model_id, k): k for k in keys}
    if not wanted:
        return {}
    names = list(wanted)
    cached = cache.get_many(names) if cache is not None else {}
    rest = [n for n in names if n not in cached]
    if rest:
        cached.update(_fetch(conn, _existing(conn, model_id, rest), cache))
    return {wanted[name]: decode_part(wanted[name][4], blob) for name, blob in cached.items()}


def save(conn, model_id: int, parts: dict[Key, Any], cache: BlobCache | None = None) -> None:
    """Replace the stored parts for these keys."""
    if not parts:
        return
    keys = list(parts)
    names = [blob_key(model_id, k) for k in keys]
    encoded = [encode_part(k[4], parts[k]) for k in keys]
    columns: list[Any] = list(zip(*keys, strict=True))
    table = pa.table(
        {
            "model_id": pa.array([model_id] * len(keys), pa.int32()),
            "version": pa.array(columns[0], pa.string()),
            "segment": pa.array(columns[1], pa.string()),
            "resolution": pa.array(columns[2], pa.string()),
            "bucket": pa.array(columns[3], pa.int64()),
            "part": pa.array(columns[4], pa.string()),
            "n": pa.array([part_rows(k[4], parts[k]) for k in keys], pa.int64()),
            "key": pa.array(names, pa.string()),
        }
    )
    blobs = pa.table({"key": table.column("key"), "blob": pa.array(encoded, pa.binary())})
    conn.register("__new_parts", table)
    conn.register("__new_blobs", blobs)
    try:
        conn.execute(
            "DELETE FROM profiles p USING __new_parts k WHERE p.model_id = k.model_id "
            "AND p.key = k.key"
        )
        conn.execute("INSERT INTO profiles SELECT * FROM __new_parts")
        conn.execute("INSERT OR REPLACE INTO profile_blobs SELECT key, blob FROM __new_blobs")
    finally:
        conn.unregister("__new_parts")
        conn.unregister("__new_blobs")
    if cache is not None:
        cache.put_many(dict(zip(names, encoded, strict=True)))


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
    cache: BlobCache | None = None,
) -> list[tuple[str, str, int, str, int, bytes | None]]:
    """``(version, segment, bucket, part, n, blob)`` of one resolution in [start, end).

    ``blobs`` limits which parts' blobs are read (default: all); others come back as None.
    ``buckets`` limits the result to those bucket starts.
    """
    parts = [p for p in parts if p in PARTS]
    decoded = {p for p in (parts if blobs is None else blobs) if p in PARTS}
    # part names are internal constants and buckets integers: safe to inline
    in_parts = ", ".join(f"'{p}'" for p in parts) or "NULL"
    sql = (
        "SELECT version, segment, bucket, part, n, key FROM profiles WHERE model_id = ? "
        f"AND resolution = ? AND bucket >= ? AND bucket < ? AND part IN ({in_parts})"
    )
    params: list[Any] = [model_id, resolution, start, end]
    if buckets is not None:
        sql += f" AND bucket IN ({', '.join(str(int(b)) for b in buckets) or 'NULL'})"
    if versions is not None:
        sql += " AND list_contains(?, version)"
        params.append(list(versions))
    if segments is not None:
        sql += " AND list_contains(?, segment)"
        params.append(list(segments))
    rows = conn.execute(sql, params).fetchall()
    found = _fetch(conn, [r[5] for r in rows if r[3] in decoded], cache)
    return [(v, s, int(b), p, int(n), found.get(k)) for v, s, b, p, n, k in rows]


def load_buckets(
    conn,
    model_id: int,
    wanted: Mapping[str, Iterable[int]],
    *,
    parts: Iterable[str],
    versions: Iterable[str],
    segments: Iterable[str],
    blobs: Iterable[str],
    cache: BlobCache | None = None,
) -> list[tuple[str, int, str, int, bytes | None]]:
    """``(resolution, bucket, part, n, blob)`` for the given buckets of several resolutions,
    in one query; ``blobs`` names the parts whose blobs are read (others come back None)."""
    parts = [p for p in parts if p in PARTS]
    decoded = {p for p in blobs if p in PARTS}
    clauses = [
        f"(resolution = '{resolution}' AND bucket IN ({', '.join(str(int(b)) for b in sorted(starts))}))"
        for resolution, starts in wanted.items()
        if resolution in RESOLUTIONS and starts
    ]
    if not clauses or not parts:
        return []
    # resolutions, parts and buckets are internal constants or integers: safe to inline
    in_parts = ", ".join(f"'{p}'" for p in parts)
    rows = conn.execute(
        "SELECT resolution, bucket, part, n, key FROM profiles WHERE model_id = ? "
        f"AND part IN ({in_parts}) AND ({' OR '.join(clauses)}) "
        "AND list_contains(?, version) AND list_contains(?, segment)",
        [model_id, list(versions), list(segments)],
    ).fetchall()
    found = _fetch(conn, [r[4] for r in rows if r[2] in decoded], cache)
    return [(r, int(b), p, int(n), found.get(k)) for r, b, p, n, k in rows]
