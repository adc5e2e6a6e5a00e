"""Retention tiers: raw rows to the Parquet lake (or deleted), old profiles rolled off,
the file compacted.

A :class:`RetentionPolicy` says how long each tier stays in the database file:

==========  =========  ===================================================================
tier        default    after that
==========  =========  ===================================================================
raw rows    ``30d``    moved to Parquet files beside the database (:mod:`.lake`), or deleted
feedback    as raw     the feedback audit log, by arrival time: moved or deleted like raw rows
minute      ``7d``     minute and 10-minute profiles deleted (hour buckets hold the same)
hour        ``400d``   hour profiles deleted (day buckets hold the same)
day         never
==========  =========  ===================================================================

Every bucket of a coarser resolution is stored from the start as the merge of the finer
ones (:mod:`mlpulse.engine.profiling`), so rolling the finer ones off changes no window that
the coarser buckets tile. The feedback audit log (``feedback_<id>``: every accepted label
with its arrival time) follows the raw retention by ``__received_at``; the current label of
each prediction lives on its raw row, so nothing a query reads leaves with it.
:func:`maintain` does the work in small transactions (a chunk of at most ``chunk_rows`` raw
or feedback rows, one day of profile buckets), each of which records how far
it got (``retention_marks``); queries read the marks to choose the finest resolution that
still exists at each instant (:func:`marks`). A crash between transactions loses nothing
and duplicates nothing: see :mod:`.lake` for the order of file writes and commits.

Cut-offs are aligned: raw rows and hour profiles leave by whole UTC days, minute profiles by
whole hours, so a bucket is never half in one tier.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._time import DAY, HOUR, MINUTE, align_down, now_micros, parse_duration, to_micros
from ..errors import ConfigError
from ..schema import ModelSpec
from .database import Store

if TYPE_CHECKING:
    from .lake import Kind

log = logging.getLogger("mlpulse.retention")

#: Before every stored instant: a tier that was never pruned.
NEVER = -(2**62)

DEFAULT_RAW_RETENTION = "30d"
DEFAULT_PROFILE_RETENTION = {"minute": "7d", "hour": "400d"}
ARCHIVES = ("parquet", "delete")
#: Raw rows per lake file / transaction: bounds how long maintenance holds the write lock.
DEFAULT_CHUNK_ROWS = 200_000
#: Profile parts deleted per transaction.
PARTS_PER_TRANSACTION = 20_000
#: Compact the file when a run removed at least this share of its rows and parts...
COMPACT_REMOVED_FRACTION = 0.2
#: ...or this share of its blocks is free. DuckDB reuses free blocks, so the churn of late
#: labels and replaced profile parts keeps 20-40 % of a live file free without growing it;
#: compaction holds the write lock for the whole copy (10-20 s for 300 MB in the soak, where
#: a 0.2 bar rewrote the file every other run), so it waits until the file is twice its data.
COMPACT_FREE_FRACTION = 0.5

_SUB_HOUR = ("minute", "10min")


def _duration(value: Any, what: str) -> int | None:
    """Microseconds, or None for ``None`` / ``"never"``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("never", "none")):
        return None
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc} (or 'never')") from None


def duration_text(micros: int | None) -> str:
    """``30d``, ``12h``... for messages (``never`` for None)."""
    if micros is None:
        return "never"
    for unit, width in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1_000_000)):
        if micros % width == 0:
            return f"{micros // width}{unit}"
    return f"{micros}us"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each tier stays in the database file (microseconds; None: forever).

    >>> policy = RetentionPolicy.parse("30d", "parquet", {"minute": "2d"})
    >>> duration_text(policy.raw), policy.archive, duration_text(policy.minute), duration_text(policy.hour)
    ('30d', 'parquet', '2d', '400d')
    """

    raw: int | None = parse_duration(DEFAULT_RAW_RETENTION)
    archive: str = "parquet"
    minute: int | None = parse_duration(DEFAULT_PROFILE_RETENTION["minute"])
    hour: int | None = parse_duration(DEFAULT_PROFILE_RETENTION["hour"])
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    @classmethod
    def parse(
        cls,
        raw_retention: Any = DEFAULT_RAW_RETENTION,
        raw_archive: str = "parquet",
        profile_retention: dict[str, Any] | None = None,
    ) -> RetentionPolicy:
        """From user settings: durations such as ``"30d"`` (or ``"never"``), ``raw_archive``
        ``"parquet"`` or ``"delete"``, ``profile_retention`` with keys ``minute``/``hour``
        (``day`` may only be ``"never"``)."""
        if raw_archive not in ARCHIVES:
            raise ConfigError(f"raw_archive must be 'parquet' or 'delete', got {raw_archive!r}")
        given = dict(profile_retention or {})
        unknown = sorted(set(given) - {"minute", "hour", "day"}, key=str)
        if unknown:
            raise ConfigError(
                f"profile_retention: unknown resolution(s) {unknown}; use 'minute' and 'hour' "
                "(day profiles are kept forever)"
            )
        if "day" in given and _duration(given["day"], "profile_retention['day']") is not None:
            raise ConfigError("profile_retention: day profiles are kept forever ('never')")
        settings = {**DEFAULT_PROFILE_RETENTION, **{k: v for k, v in given.items() if k != "day"}}
        minute = _duration(settings["minute"], "profile_retention['minute']")
        hour = _duration(settings["hour"], "profile_retention['hour']")
        if minute is not None and (hour is None or hour >= minute) is False:
            raise ConfigError(
                f"profile_retention: hour profiles ({duration_text(hour)}) must be kept at "
                f"least as long as minute profiles ({duration_text(minute)})"
            )
        if minute is None and hour is not None:
            raise ConfigError(
                "profile_retention: minute profiles kept forever need hour profiles kept "
                "forever too"
            )
        return cls(
            raw=_duration(raw_retention, "raw_retention"),
            archive=raw_archive,
            minute=minute,
            hour=hour,
        )

    def describe(self) -> dict[str, str]:
        return {
            "raw_retention": duration_text(self.raw),
            "raw_archive": self.archive,
            "minute_retention": duration_text(self.minute),
            "hour_retention": duration_text(self.hour),
        }


@dataclass(frozen=True)
class Marks:
    """How far a model's tiers were pruned: before each instant (microseconds), that tier
    holds nothing any more (``raw``: raw rows moved to the lake or deleted; ``raw_deleted``:
    deleted, not archived; ``minute``: minute and 10-minute profiles; ``hour``: hour
    profiles)."""

    raw: int = NEVER
    raw_deleted: int = NEVER
    minute: int = NEVER
    hour: int = NEVER


def marks(store: Store, model_id: int, conn=None) -> Marks:
    """The model's :class:`Marks` (cached on the store; maintenance updates them when its
    transactions commit)."""
    found = store.retention_marks.get(model_id)
    if found is not None:
        return found
    sql = "SELECT tier, before FROM retention_marks WHERE model_id = ?"
    rows = (
        conn.execute(sql, [model_id]).fetchall()
        if conn is not None
        else store.fetch_all(sql, [model_id])
    )
    found = Marks(**{tier: int(before) for tier, before in rows if tier in Marks.__annotations__})
    if conn is None:  # a writer's view may not commit: cache only what readers see
        store.retention_marks[model_id] = found
    return found


def _advance(conn, store: Store, model_id: int, tier: str, before: int) -> None:
    """Raise a mark inside the caller's transaction (marks only move forward)."""
    conn.execute(
        "INSERT INTO retention_marks VALUES (?, ?, ?) ON CONFLICT (model_id, tier) "
        "DO UPDATE SET before = greatest(retention_marks.before, excluded.before)",
        [model_id, tier, before],
    )


def _committed(store: Store, model_id: int) -> None:
    store.retention_marks.pop(model_id, None)


@dataclass
class MaintenanceReport:
    """What one :func:`maintain` run did."""

    archived_rows: int = 0
    deleted_rows: int = 0
    #: rows of the feedback audit log moved to the lake / deleted
    archived_feedback_rows: int = 0
    deleted_feedback_rows: int = 0
    #: lake files written (raw and feedback)
    lake_files: int = 0
    profile_parts_deleted: int = 0
    compacted: bool = False
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def maintain(
    store: Store,
    policy: RetentionPolicy,
    *,
    now: Any = None,
    compact: bool | None = None,
) -> MaintenanceReport:
    """Apply ``policy`` now: move or delete old raw rows and feedback audit rows, roll off old
    profiles, and compact the file when enough of it is free (``compact=True`` always,
    ``False`` never).

    ``now`` (default: the current time) is the instant retention counts back from. Work is
    done in small transactions, so ingest and queries wait at most for one chunk.
    """
    from . import lake
    from .registry import Registry

    started = time.monotonic()
    at = now_micros() if now is None else to_micros(now)
    report = MaintenanceReport()
    if not store.maintenance_lock.acquire(blocking=False):
        raise ConfigError(f"maintenance of {store.path!r} is already running in this process")
    try:
        report.bytes_before = _file_size(store)
        with store.lock:
            lake.sweep(store)
        registry = Registry(store)
        names = [row[0] for row in store.fetch_all("SELECT name FROM models ORDER BY model_id")]
        specs = [registry.get(name) for name in names]
        stored = _stored(store, specs)
        for spec in specs:
            if policy.raw is not None:
                cutoff = align_down(at - policy.raw, DAY)
                for kind in lake.KINDS:
                    _lake_tier(store, spec, policy, kind, cutoff, report)
            if policy.minute is not None:
                cutoff = align_down(at - policy.minute, HOUR)
                report.profile_parts_deleted += _roll_off(store, spec, _SUB_HOUR, "minute", cutoff)
            if policy.hour is not None:
                cutoff = align_down(at - policy.hour, DAY)
                report.profile_parts_deleted += _roll_off(store, spec, ("hour",), "hour", cutoff)
        if store.path != ":memory:":
            with store.lock:  # fold the write-ahead log in, so free blocks show
                store.checkpoint()
        removed = (
            report.archived_rows
            + report.deleted_rows
            + report.archived_feedback_rows
            + report.deleted_feedback_rows
            + report.profile_parts_deleted
        )
        # deletes leave row groups half empty, which DuckDB counts as used blocks: what was
        # removed says more about what a rewrite gains than the free blocks do
        worth = removed >= COMPACT_REMOVED_FRACTION * stored or (
            store.free_fraction() >= COMPACT_FREE_FRACTION
        )
        if compact or (compact is None and removed and worth):
            store.compact()
            report.compacted = store.path != ":memory:"
        report.bytes_after = _file_size(store)
    finally:
        store.maintenance_lock.release()
    report.seconds = time.monotonic() - started
    log.info("maintenance", extra=report.to_dict())
    return report


def _stored(store: Store, specs: list[ModelSpec]) -> int:
    """Raw rows, feedback rows and profile parts in the file (what a compaction is weighed
    against)."""
    from .lake import KINDS

    total = 0
    tables = [kind.table(spec) for spec in specs for kind in KINDS]
    for sql in [*(f"SELECT count(*) FROM {t}" for t in tables), "SELECT count(*) FROM profiles"]:
        row = store.fetch_one(sql)
        total += int(row[0]) if row else 0
    return total


def _file_size(store: Store) -> int:
    """Bytes of the database file and its write-ahead log."""
    if store.path == ":memory:":
        return 0
    total = 0
    for path in (store.path, store.path + ".wal"):
        with contextlib.suppress(OSError):
            total += os.path.getsize(path)
    return total


def _chunks(counts: list[tuple[str, int, int]], limit: int) -> list[tuple[str, int, int, int]]:
    """``(version, first minute, stop minute, rows)`` runs of one version and one UTC day of
    at most ``limit`` rows (a single minute above the limit is a chunk of its own)."""
    out: list[tuple[str, int, int, int]] = []
    for version, minute, n in counts:
        if out:
            v, first, _stop, rows = out[-1]
            if v == version and first // DAY == minute // DAY and rows + n <= limit:
                out[-1] = (v, first, minute + MINUTE, rows + n)
                continue
        out.append((version, minute, minute + MINUTE, n))
    return out


def _lake_tier(
    store: Store,
    spec: ModelSpec,
    policy: RetentionPolicy,
    kind: Kind,
    cutoff: int,
    report: MaintenanceReport,
) -> None:
    """Move (or delete) the model's rows of ``kind`` (:data:`.lake.RAW` or
    :data:`.lake.FEEDBACK`) of minutes before ``cutoff``, chunk by chunk: each chunk's file
    is written and renamed, then recorded in the manifest in the transaction that deletes its
    rows. Raw rows also advance the ``raw`` marks that queries read."""
    from . import lake

    raw = kind is lake.RAW
    table = kind.table(spec)
    version = kind.version or "''"
    counts = store.fetch_all(
        f"SELECT {version} AS v, {kind.minute} AS m, count(*) FROM {table} WHERE {kind.before} "
        f"GROUP BY v, m ORDER BY m // {DAY}, v, m",
        [cutoff],
    )
    archive = policy.archive == "parquet" and lake.lake_dir(store.path) is not None
    for version_name, first, stop, _rows in _chunks(
        [(str(v), int(m), int(n)) for v, m, n in counts], policy.chunk_rows
    ):
        with store.write() as conn:
            where, params = lake.scope(kind, version_name, first, stop)
            if archive:
                columns = lake._columns(conn, table)
                written = lake.write_file(
                    conn, store, spec, version_name, first, stop, columns, kind
                )
                if written is not None:
                    path, rows, size = written
                    last = conn.execute(
                        f"SELECT max({kind.minute}) FROM {table} WHERE {where}", params
                    ).fetchall()[0][0]
                    lake.record(
                        conn, spec, version_name, path, first, int(last), rows, size, columns, kind
                    )
                    report.lake_files += 1
            [(deleted,)] = conn.execute(f"DELETE FROM {table} WHERE {where}", params).fetchall()
            if raw:
                _advance(conn, store, spec.model_id, "raw", stop)
                if not archive:
                    _advance(conn, store, spec.model_id, "raw_deleted", stop)
                store.raw_rows_changed(spec.model_id, range(first, stop, MINUTE))
            if archive and raw:
                report.archived_rows += int(deleted)
            elif archive:
                report.archived_feedback_rows += int(deleted)
            elif raw:
                report.deleted_rows += int(deleted)
            else:
                report.deleted_feedback_rows += int(deleted)
            lake.crash_point("archive-before-commit", kind.name)
        _committed(store, spec.model_id)
    if not raw:
        return
    # nothing (left) to move: the mark still says how far the tier reaches
    with store.write() as conn:
        _advance(conn, store, spec.model_id, "raw", cutoff)
        if not archive:
            _advance(conn, store, spec.model_id, "raw_deleted", cutoff)
    _committed(store, spec.model_id)


def _roll_off(
    store: Store, spec: ModelSpec, resolutions: tuple[str, ...], tier: str, cutoff: int
) -> int:
    """Delete the model's profile parts of ``resolutions`` before ``cutoff``: whole UTC days
    of buckets, at most :data:`PARTS_PER_TRANSACTION` parts per transaction (a single
    day above it goes alone); returns how many parts went."""
    from .lake import crash_point

    listed = ", ".join(f"'{r}'" for r in resolutions)  # internal constants
    scope = f"model_id = ? AND resolution IN ({listed}) AND bucket >= ? AND bucket < ?"
    per_day = store.fetch_all(
        f"SELECT bucket // {DAY} AS day, count(*) FROM profiles WHERE model_id = ? "
        f"AND resolution IN ({listed}) AND bucket < ? GROUP BY day ORDER BY day",
        [spec.model_id, cutoff],
    )
    chunks: list[tuple[int, int, int]] = []  # first day, stop day, parts
    for day, n in per_day:
        day, n = int(day), int(n)
        if chunks and chunks[-1][2] + n <= PARTS_PER_TRANSACTION:
            chunks[-1] = (chunks[-1][0], day + 1, chunks[-1][2] + n)
        else:
            chunks.append((day, day + 1, n))
    removed = 0
    for first_day, stop_day, _n in chunks:
        params = [spec.model_id, first_day * DAY, min(stop_day * DAY, cutoff)]
        with store.write() as conn:
            keys = [
                k
                for (k,) in conn.execute(
                    f"SELECT key FROM profiles WHERE {scope}", params
                ).fetchall()
            ]
            conn.execute(
                f"DELETE FROM profile_blobs WHERE key IN (SELECT key FROM profiles WHERE {scope})",
                params,
            )
            conn.execute(f"DELETE FROM profiles WHERE {scope}", params)
            store.blobs.drop_many(keys)
            _advance(conn, store, spec.model_id, tier, params[2])
            crash_point("profiles-before-commit")
        _committed(store, spec.model_id)
        removed += len(keys)
    with store.write() as conn:
        _advance(conn, store, spec.model_id, tier, cutoff)
    _committed(store, spec.model_id)
    return removed


__all__ = ["Marks", "MaintenanceReport", "RetentionPolicy", "maintain", "marks"]
