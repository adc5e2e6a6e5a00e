"""Reading and writing bucket-profile parts.

``profiles`` holds one small row per part (its key columns and row count) and
``profile_blobs`` the serialised part under a primary key. Both are read through the store's
profile cache (:func:`profile_cache`), whose entries are ``(rows, blob)`` or None for a key
known to hold nothing: a DuckDB scan reads every blob stored beside the wanted ones, so the
hot path must not depend on it, and a query over recent windows needs no SQL at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

import pyarrow as pa

from ..profiles.bucket import CORE, FEATURES, LABELED, decode_part, encode_part, part_rows
from .cache import TxnCache

PARTS = (CORE, FEATURES, LABELED)

Key = tuple[str, str, str, int, str]  # version, segment, resolution, bucket, part
Entry = tuple[int, bytes]  # rows in the part, serialised part


def blob_key(model_id: int, key: Key) -> str:
    """The primary key of a part's blob (the unit separator cannot occur in a bucket key)."""
    version, segment, resolution, bucket, part = key
    return "\x1f".join((str(model_id), version, segment, resolution, str(int(bucket)), part))


def _entry_size(entry: Entry | None) -> int:
    return 64 if entry is None else 64 + len(entry[1])


def profile_cache(max_bytes: int | None = None) -> TxnCache:
    """The cache of profile entries a store keeps (bounded by ``$MLPULSE_CACHE_MB``)."""
    return TxnCache(max_bytes, _entry_size)


def entries(conn, names: list[str], cache: TxnCache | None) -> dict[str, Entry]:
    """``(rows, blob)`` of the blob keys that exist: from the cache where it knows them, the
    rest from the database, remembered (absent keys too, so empty buckets cost nothing later)."""
    found = cache.get_many(names) if cache is not None else {}
    missing = [k for k in names if k not in found]
    if missing:
        with cache.filling() if cache is not None else nullcontext(None) as remember:
            # which keys exist, from the small rows; then the blobs of those alone (a join
            # straight to profile_blobs would read every blob, and new buckets have none)
            counts = dict(_select_keys(conn, "SELECT p.key, p.n FROM profiles p", missing))
            blobs = dict(
                _select_keys(conn, "SELECT p.key, p.blob FROM profile_blobs p", list(counts))
            )
            fetched: dict[str, Entry | None] = dict.fromkeys(missing)
            fetched.update((key, (int(n), blobs[key])) for key, n in counts.items() if key in blobs)
            if remember is not None:
                remember(fetched)
        found.update(fetched)
    return {k: v for k, v in found.items() if v is not None}


def unregister(conn, *names: str) -> None:
    """:func:`mlpulse.store.database.unregister` (imported late: that module imports this)."""
    from .database import unregister as release

    release(conn, *names)


def _select_keys(conn, select: str, keys: list[str]) -> list[tuple[Any, ...]]:
    """Rows of ``select`` (aliased ``p``, with a ``key`` column) for these keys."""
    if not keys:
        return []
    conn.register("__wanted_keys", pa.table({"key": pa.array(keys, pa.string())}))
    try:
        return conn.execute(f"{select} SEMI JOIN __wanted_keys w ON p.key = w.key").fetchall()
    finally:
        unregister(conn, "__wanted_keys")


def load(conn, model_id: int, keys: Iterable[Key], cache: TxnCache | None = None) -> dict[Key, Any]:
    """Decoded parts for the keys that exist."""
    wanted = {blob_key(model_id, k): k for k in keys}
    if not wanted:
        return {}
    found = entries(conn, list(wanted), cache)
    return {wanted[name]: decode_part(wanted[name][4], blob) for name, (_n, blob) in found.items()}


def load_encoded(
    conn, model_id: int, keys: Iterable[Key], cache: TxnCache | None = None
) -> dict[Key, bytes]:
    """The stored bytes of the keys that exist (not decoded: a profiling worker decodes)."""
    wanted = {blob_key(model_id, k): k for k in keys}
    if not wanted:
        return {}
    return {wanted[name]: blob for name, (_n, blob) in entries(conn, list(wanted), cache).items()}


def save(conn, model_id: int, parts: dict[Key, Any], cache: TxnCache | None = None) -> None:
    """Replace the stored parts for these keys."""
    save_encoded(
        conn,
        model_id,
        {k: (part_rows(k[4], v), encode_part(k[4], v)) for k, v in parts.items()},
        cache,
    )


def save_encoded(
    conn, model_id: int, parts: dict[Key, tuple[int, bytes]], cache: TxnCache | None = None
) -> None:
    """Replace the stored parts for these keys with ``(rows, bytes)`` already encoded."""
    if not parts:
        return
    keys = list(parts)
    names = [blob_key(model_id, k) for k in keys]
    encoded = [parts[k][1] for k in keys]
    rows = [parts[k][0] for k in keys]
    columns: list[Any] = list(zip(*keys, strict=True))
    table = pa.table(
        {
            "model_id": pa.array([model_id] * len(keys), pa.int32()),
            "version": pa.array(columns[0], pa.string()),
            "segment": pa.array(columns[1], pa.string()),
            "resolution": pa.array(columns[2], pa.string()),
            "bucket": pa.array(columns[3], pa.int64()),
            "part": pa.array(columns[4], pa.string()),
            "n": pa.array(rows, pa.int64()),
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
        # delete + insert: DuckDB's INSERT OR REPLACE on the primary key cost ~10x as much
        # (25-70 ms against 5 ms for 90 labeled parts, the parts a late-label batch rewrites)
        conn.execute("DELETE FROM profile_blobs WHERE key IN (SELECT key FROM __new_blobs)")
        conn.execute("INSERT INTO profile_blobs SELECT key, blob FROM __new_blobs")
    finally:
        unregister(conn, "__new_parts", "__new_blobs")
    if cache is not None:
        cache.put_many(
            {name: (n, blob) for name, n, blob in zip(names, rows, encoded, strict=True)}
        )


def replace_buckets(
    conn,
    model_id: int,
    version: str,
    buckets: Iterable[tuple[str, int]],
    parts: dict[Key, Any],
    cache: TxnCache | None = None,
) -> int:
    """Drop every stored part (all segments) of ``version``'s ``(resolution, bucket)``
    pairs, then save ``parts``: the buckets hold exactly what was computed for them (profiles
    recomputed elsewhere, in Spark say, replace the buckets they cover). Returns the parts
    dropped."""
    covered = sorted({(str(r), int(b)) for r, b in buckets})
    dropped: list[str] = []
    if covered:
        table = pa.table(
            {
                "resolution": pa.array([r for r, _b in covered], pa.string()),
                "bucket": pa.array([b for _r, b in covered], pa.int64()),
            }
        )
        conn.register("__covered", table)
        try:
            dropped = [
                row[0]
                for row in conn.execute(
                    "DELETE FROM profiles p USING __covered c WHERE p.model_id = ? "
                    "AND p.version = ? AND p.resolution = c.resolution AND p.bucket = c.bucket "
                    "RETURNING p.key",
                    [model_id, version],
                ).fetchall()
            ]
        finally:
            unregister(conn, "__covered")
        if dropped:
            conn.register("__dropped", pa.table({"key": pa.array(dropped, pa.string())}))
            try:
                conn.execute("DELETE FROM profile_blobs WHERE key IN (SELECT key FROM __dropped)")
            finally:
                unregister(conn, "__dropped")
            if cache is not None:
                cache.put_many(dict.fromkeys(dropped))  # known to hold nothing now
    save(conn, model_id, parts, cache)
    return len(dropped)


def bucket_span(conn, model_id: int) -> tuple[int, int] | None:
    """(earliest, latest) bucket start stored for a model over every time resolution, or
    None when it has none: window queries clamp long windows to it."""
    from .._time import RESOLUTIONS

    names = ", ".join(f"'{name}'" for name in RESOLUTIONS)  # internal constants
    [row] = conn.execute(
        f"SELECT min(bucket), max(bucket) FROM profiles WHERE model_id = ? "
        f"AND resolution IN ({names})",
        [model_id],
    ).fetchall()
    return None if row[0] is None else (int(row[0]), int(row[1]))


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
    cache: TxnCache | None = None,
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
    found = entries(conn, [r[5] for r in rows if r[3] in decoded], cache)
    return [
        (v, s, int(b), p, int(n), found[k][1] if k in found else None) for v, s, b, p, n, k in rows
    ]


def version_spans(conn, model_id: int) -> dict[str, tuple[int, int]]:
    """Version -> (first, last) bucket start holding its predictions, over every time
    resolution (a compacted bucket starts at or before its first row): when each version
    started and stopped taking traffic, to the resolution its buckets are kept at."""
    from .._time import RESOLUTIONS

    names = ", ".join(f"'{name}'" for name in RESOLUTIONS)  # internal constants
    rows = conn.execute(
        f"SELECT version, min(bucket), max(bucket) FROM profiles WHERE model_id = ? "
        f"AND segment = '' AND part = 'core' AND resolution IN ({names}) GROUP BY version",
        [model_id],
    ).fetchall()
    return {str(v): (int(lo), int(hi)) for v, lo, hi in rows}
