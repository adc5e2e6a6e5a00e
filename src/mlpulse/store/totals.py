"""All-time totals per model and version, for the Prometheus exporter, in a few queries.

Counts come from the day-resolution profile rows (one small row per day, version and part,
kept for ever), not from raw rows: ``core`` parts count stored predictions and ``labeled``
parts the predictions with a label (a corrected label replaces the first, so nothing is
counted twice). The hour buckets say when a version last saw a prediction, so that a
window the version has no row in is known empty without a query.

>>> from mlpulse.store.database import Store
>>> store = Store(":memory:")
>>> version_totals(store)
[]
>>> model_counts(store)
ModelCounts(quarantined={}, held={}, notifications_pending=0)
>>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass

from .database import Store, quote


@dataclass(frozen=True)
class VersionTotals:
    """Totals of one model version; ``first_hour``/``last_hour`` are the earliest and latest
    hour buckets (microseconds) holding its predictions, None before the first."""

    model: str
    version: str
    predictions: int
    labeled: int
    first_hour: int | None
    last_hour: int | None
    has_reference: bool


@dataclass(frozen=True)
class ModelCounts:
    """Per-model counts (model name -> rows) and the notification outbox depth."""

    quarantined: dict[str, int]
    held: dict[str, int]
    notifications_pending: int


def version_totals(store: Store) -> list[VersionTotals]:
    """Every registered version with its totals (zeros for a version with no rows yet)."""
    rows = store.fetch_all(
        "WITH p AS (SELECT model_id, version, "
        "sum(n) FILTER (WHERE resolution = 'day' AND part = 'core') AS predictions, "
        "sum(n) FILTER (WHERE resolution = 'day' AND part = 'labeled') AS labeled, "
        "min(bucket) FILTER (WHERE resolution = 'hour' AND part = 'core') AS first_hour, "
        "max(bucket) FILTER (WHERE resolution = 'hour' AND part = 'core') AS last_hour, "
        "bool_or(resolution = 'reference') AS has_reference "
        "FROM profiles WHERE segment = '' AND resolution IN ('day', 'hour', 'reference') "
        "GROUP BY model_id, version) "
        "SELECT m.name, v.version, coalesce(p.predictions, 0), coalesce(p.labeled, 0), "
        "p.first_hour, p.last_hour, coalesce(p.has_reference, false) "
        "FROM versions v JOIN models m USING (model_id) "
        "LEFT JOIN p ON p.model_id = v.model_id AND p.version = v.version "
        "ORDER BY m.name, v.created_at, v.version"
    )
    return [
        VersionTotals(
            name, version, int(n), int(labeled),
            None if first is None else int(first), None if last is None else int(last),
            bool(ref),
        )  # fmt: skip
        for name, version, n, labeled, first, last, ref in rows
    ]


def model_counts(store: Store) -> ModelCounts:
    """Quarantined rows and held labels (feedback waiting for its prediction) per model,
    and the notifications not yet sent nor given up."""
    quarantined = dict(
        store.fetch_all(
            "SELECT m.name, count(*) FROM quarantine q JOIN models m USING (model_id) "
            "GROUP BY m.name"
        )
    )
    # one pending_<id> table per model; the ids come from the catalog, so one statement
    tables = store.fetch_all(
        "SELECT m.name, t.table_name FROM duckdb_tables() t JOIN models m "
        "ON t.table_name = 'pending_' || m.model_id::VARCHAR WHERE t.schema_name = 'main'"
    )
    held: dict[str, int] = {}
    if tables:
        union = " UNION ALL ".join(
            f"SELECT ? AS name, count(*) AS n FROM {quote(table)}" for _name, table in tables
        )
        held = dict(store.fetch_all(union, [name for name, _table in tables]))
    [(pending,)] = store.fetch_all(
        "SELECT count(*) FROM notification_outbox WHERE sent_us IS NULL AND gave_up_us IS NULL"
    )
    return ModelCounts(
        {str(k): int(v) for k, v in quarantined.items()},
        {str(k): int(v) for k, v in held.items()},
        int(pending),
    )


__all__ = ["ModelCounts", "VersionTotals", "model_counts", "version_totals"]
