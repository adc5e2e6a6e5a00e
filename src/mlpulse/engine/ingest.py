"""Batch ingest of predictions and feedback into the store.

One call = one transaction: valid rows go to the raw table, bad rows to the quarantine,
and the bucket profiles of every touched (version, segment, minute/hour/day) are updated.
Labels live on the prediction's raw row, so a late label lands in the prediction's bucket
and a corrected label replaces the old one; the labeled part of each touched minute is then
recomputed from raw rows and rolled up, so nothing is ever counted twice.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._time import DAY, HOUR, MINUTE, RESOLUTIONS, now_micros, parse_duration
from ..errors import ConfigError, IdempotencyConflictError
from ..profiles.bucket import LABELED, decode_part, merge_part
from ..schema import ModelSpec, to_arrow
from ..store import lake, retention
from ..store import profiles as profile_store
from ..store.database import Store, quote, unregister
from ..store.database import arrow as query_arrow
from ..store.registry import Registry, feedback_table, pending_table, raw_table
from .profiling import batch_keys, batch_parts, labeled_minute_parts, rollup
from .validate import CleanBatch, Quarantine, payloads, validate_feedback, validate_predictions
from .workers import ProfilePool

#: the newest span of stored minutes a batch of labels is first joined against
LABEL_SPAN = DAY


log = logging.getLogger("mlpulse.ingest")

_PROFILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlpulse-profile")


@dataclass(frozen=True)
class IngestReport:
    """What happened to a batch: ``received == stored + quarantined``."""

    received: int
    stored: int
    quarantined: int
    pending: int = 0  # remote mode: rows spooled but not yet acknowledged
    matched: int = 0  # feedback: rows whose prediction was found
    held: int = 0  # feedback: rows held until their prediction arrives

    def __add__(self, other: IngestReport) -> IngestReport:
        return IngestReport(
            *(
                getattr(self, f) + getattr(other, f)
                for f in ("received", "stored", "quarantined", "pending", "matched", "held")
            )
        )


def _naive_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


#: Labels held per model for ids with no prediction yet (``$MLPULSE_MAX_HELD_LABELS``):
#: past the cap, labels for new unknown ids are quarantined, so a stream of labels for ids
#: that never come cannot grow the store without bound.
DEFAULT_MAX_HELD_LABELS = 1_000_000
#: How long a held label waits for its prediction (``$MLPULSE_HELD_LABEL_EXPIRY``, a duration
#: such as ``30d``, or ``never``) before it moves to the quarantine; checked as feedback arrives.
DEFAULT_HELD_LABEL_EXPIRY = "30d"


def held_label_limits() -> tuple[int, int | None]:
    """``(cap, expiry in microseconds or None)`` from the environment or the defaults."""
    text = os.environ.get("MLPULSE_MAX_HELD_LABELS") or str(DEFAULT_MAX_HELD_LABELS)
    try:
        cap = int(text.replace("_", ""))
    except ValueError:
        cap = -1
    if cap < 0:
        raise ConfigError(f"MLPULSE_MAX_HELD_LABELS must be a whole number >= 0, got {text!r}")
    expiry = (os.environ.get("MLPULSE_HELD_LABEL_EXPIRY") or DEFAULT_HELD_LABEL_EXPIRY).strip()
    if expiry.lower() in ("never", "none", "0"):
        return cap, None
    try:
        micros = parse_duration(expiry)
    except ConfigError as exc:
        raise ConfigError(f"MLPULSE_HELD_LABEL_EXPIRY: {exc} (or 'never')") from None
    return cap, micros


def _duration_text(micros: int) -> str:
    for unit, width in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1_000_000)):
        if micros % width == 0:
            return f"{micros // width}{unit}"
    return f"{micros}us"


class Engine:
    """Writes batches into a :class:`Store` and keeps its profiles current."""

    def __init__(self, store: Store, *, profiler: ProfilePool | None = None) -> None:
        self.store = store
        self.registry = Registry(store)
        # worker processes that profile large batches (the server's); None: in-process
        self.profiler = profiler
        # held labels per model (feedback before its prediction): cap and expiry
        self.max_held, self.held_expiry = held_label_limits()

    # -- predictions --------------------------------------------------------------------

    def ingest_predictions(
        self,
        spec: ModelSpec,
        version: str,
        table: Any,
        *,
        id_col: str = "id",
        ts_col: str | None = None,
        batch_id: str | None = None,
        batch_hash: str | None = None,
    ) -> IngestReport:
        """Validate and store a batch of predictions in one transaction.

        With a ``batch_id``, a batch already stored under that id is not stored again: its
        first report is returned (retried deliveries have an exactly-once effect). With a
        ``batch_hash`` too (a digest of the request), a batch id that stored a batch with
        another hash raises :class:`~mlpulse.errors.IdempotencyConflictError`.
        """
        arrow = to_arrow(table, what=f"model {spec.name!r}: log_batch table")
        if batch_id is not None and (done := self._seen(spec, batch_id, None, batch_hash)):
            return done
        # names, case collisions and the feature cap, before any per-column work
        self.registry.check_columns(
            spec, arrow.column_names, {id_col, spec.prediction, spec.label, ts_col or id_col}
        )
        clean = validate_predictions(
            arrow, spec, version, id_col=id_col, ts_col=ts_col, now=now_micros()
        )
        try:
            with self.store.write() as conn:
                if batch_id is not None and (done := self._seen(spec, batch_id, conn, batch_hash)):
                    return done
                spec = self._evolve(conn, spec, clean)
                report = self._store_predictions(conn, spec, version, arrow, clean)
                self._remember(conn, spec, batch_id, "prediction", report, batch_hash)
        except BaseException:
            self.registry._segments.clear()
            raise
        return report

    def _seen(
        self, spec: ModelSpec, batch_id: str, conn=None, batch_hash: str | None = None
    ) -> IngestReport | None:
        """The report of a batch already stored under ``batch_id``, if any; a stored batch
        whose hash differs from ``batch_hash`` is a conflict (both hashes known)."""
        sql = (
            "SELECT received, stored, quarantined, kind, request_hash FROM ingested_batches "
            "WHERE model_id = ? AND batch_id = ?"
        )
        params = [spec.model_id, str(batch_id)]
        rows = (
            conn.execute(sql, params).fetchall()
            if conn is not None
            else self.store.fetch_all(sql, params)
        )
        if not rows:
            return None
        received, stored, quarantined, kind, stored_hash = rows[0]
        if batch_hash is not None and stored_hash is not None and stored_hash != batch_hash:
            raise IdempotencyConflictError(
                f"model {spec.name!r}: batch id {str(batch_id)[:200]!r} (Idempotency-Key) "
                f"already stored another {kind} batch ({received} rows) that differs from "
                "this one in body, kind or version; nothing was stored. Use a new key for "
                "a new batch"
            )
        return IngestReport(received, stored, quarantined)

    def _remember(
        self,
        conn,
        spec: ModelSpec,
        batch_id: str | None,
        kind: str,
        report: IngestReport,
        batch_hash: str | None = None,
    ) -> None:
        if batch_id is None:
            return
        conn.execute(
            "INSERT INTO ingested_batches (model_id, batch_id, kind, received, stored, "
            "quarantined, recorded_at, request_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                spec.model_id,
                str(batch_id),
                kind,
                report.received,
                report.stored,
                report.quarantined,
                _naive_now(),
                batch_hash,
            ],
        )

    def _evolve(self, conn, spec: ModelSpec, clean: CleanBatch) -> ModelSpec:
        current = self.registry.get(spec.name)
        if clean.new_features:
            log.info("model %r: new columns %s", spec.name, sorted(clean.new_features))
            current = self.registry._add_features(conn, current, clean.new_features)
        return current

    def _store_predictions(
        self, conn, spec: ModelSpec, version: str, arrow: pa.Table, clean: CleanBatch
    ) -> IngestReport:
        raw = raw_table(spec)
        batch = clean.table
        minutes = batch.column("__minute").to_numpy()
        if len(minutes) and not np.all(minutes[1:] >= minutes[:-1]):
            # time order makes the grouping cheap and keeps DuckDB's zone maps tight
            batch = batch.sort_by("__minute")
            order = np.argsort(minutes, kind="stable")
            clean.type_errors = {c: m[order] for c, m in clean.type_errors.items()}
        conn.register("__batch", batch)
        try:
            dups = self._duplicates(conn, raw, batch.column("__id"))
            quarantine = clean.quarantine
            if len(dups["__row"]):
                dup_rows = np.asarray(dups["__row"], dtype=np.int64)
                quarantine = _merge_quarantine(
                    quarantine,
                    arrow,
                    dup_rows,
                    list(dups["__id"]),
                    [
                        f"model {spec.name!r}: duplicate id: a prediction with this id is already stored"
                        if stored
                        else f"model {spec.name!r}: duplicate id within the batch"
                        for stored in dups["stored"]
                    ],
                )
                conn.unregister("__batch")
                positions = batch.column("__row").to_numpy()
                keep = ~np.isin(positions, dup_rows)
                batch = batch.filter(pa.array(keep))
                errors = {c: m[keep] for c, m in clean.type_errors.items()}
                conn.register("__batch", batch)
            else:
                errors = clean.type_errors

            admitted = self._admit_segments(conn, spec, batch)
            pool = self.profiler
            pooled = pool is not None and batch.num_rows >= max(pool.min_rows, 1)
            profiling: Future | None
            if pooled:
                # a worker process profiles the batch and merges it into the stored bytes of
                # the parts it touches, so no profiling holds this process's GIL
                assert pool is not None
                keys = batch_keys(batch, spec, version, admitted)
                blobs = profile_store.load_encoded(conn, spec.model_id, keys, self.store.blobs)
                profiling = pool.submit(batch, spec, version, admitted, errors, blobs)
            else:
                # Profiling (numpy, datasketches) runs in a worker thread while DuckDB, which
                # releases the GIL, writes the raw rows: the two costs overlap on two cores.
                profiling = (
                    _PROFILER.submit(batch_parts, batch, spec, version, admitted, errors)
                    if batch.num_rows
                    else None
                )
            try:
                dirty = self._insert_raw(conn, spec, version, batch)
                minutes = batch.column("__minute").to_numpy()
                if len(minutes):  # sorted above: the distinct minutes are where values change
                    starts = np.flatnonzero(np.diff(minutes, prepend=minutes[0] - 1))
                    self.store.raw_rows_changed(spec.model_id, minutes[starts].tolist())
            finally:
                fresh: dict[Any, Any] = {}
                encoded: dict[Any, tuple[int, bytes]] = {}
                if pooled:
                    assert pool is not None and profiling is not None
                    encoded = pool.result(profiling, spec, batch.num_rows)
                elif profiling is not None:
                    fresh = profiling.result()
        finally:
            unregister(conn, "__batch")

        if encoded:  # merged and encoded by the worker
            profile_store.save_encoded(conn, spec.model_id, encoded, self.store.blobs)
        if fresh:
            stored = profile_store.load(conn, spec.model_id, fresh.keys(), self.store.blobs)
            for key, value in stored.items():
                fresh[key] = merge_part(key[4], value, fresh[key])
            profile_store.save(conn, spec.model_id, fresh, self.store.blobs)
        if dirty:
            self._recompute_labeled(conn, spec, dirty, admitted)
        self._quarantine(conn, spec, version, "prediction", quarantine)
        report = IngestReport(arrow.num_rows, batch.num_rows, len(quarantine))
        self._stats(conn, spec, "prediction", report)
        return report

    def _duplicates(self, conn, raw: str, ids: pa.ChunkedArray) -> dict[str, np.ndarray]:
        """Rows of ``__batch`` whose id is already stored, or repeats an earlier row's id."""
        if len(pc.unique(ids)) == len(ids):
            # no id repeats within the batch (the usual case, told in a millisecond by
            # Arrow): only the semi join against the stored ids is left
            return conn.execute(
                f"SELECT b.__row, b.__id, true AS stored FROM __batch b SEMI JOIN {raw} r "
                "ON r.__id = b.__id ORDER BY b.__row"
            ).fetchnumpy()
        return conn.execute(
            "WITH repeated AS (SELECT __id FROM __batch GROUP BY __id HAVING count(*) > 1), "
            "later AS (SELECT __row, __id FROM __batch WHERE __id IN (SELECT __id FROM repeated) "
            "QUALIFY row_number() OVER (PARTITION BY __id ORDER BY __row) > 1), "
            f"stored AS (SELECT b.__row, b.__id FROM __batch b SEMI JOIN {raw} r ON r.__id = b.__id) "
            "SELECT __row, any_value(__id) AS __id, bool_or(stored) AS stored FROM ("
            "SELECT __row, __id, true AS stored FROM stored UNION ALL "
            "SELECT __row, __id, false FROM later) GROUP BY __row ORDER BY __row"
        ).fetchnumpy()

    def _insert_raw(self, conn, spec: ModelSpec, version: str, batch: pa.Table) -> list:
        """Insert the batch (registered as ``__batch``) into the raw table, applying any
        feedback that arrived before these predictions; return the minutes it labels."""
        raw, pending = raw_table(spec), pending_table(spec)
        # no labels held (the usual case: labels follow their predictions): no join to run
        waiting = conn.execute(f"SELECT count(*) FROM {pending}").fetchall()[0][0]
        held = (
            query_arrow(
                conn,
                f"SELECT p.__id, p.__label, p.__ts FROM {pending} p SEMI JOIN __batch b "
                "ON b.__id = p.__id QUALIFY row_number() OVER (PARTITION BY p.__id ORDER BY p.__seq DESC) = 1",
            )
            if waiting
            else None
        )
        columns = [c for c in batch.column_names if c not in ("__row", "__label", "__label_ts")]
        select = "?::VARCHAR AS __version, " + ", ".join(f"b.{quote(c)}" for c in columns)
        if held is None or not held.num_rows:
            conn.execute(f"INSERT INTO {raw} BY NAME SELECT {select} FROM __batch b", [version])
            return []
        conn.register("__held", held)
        try:
            conn.execute(
                f"INSERT INTO {raw} BY NAME SELECT {select}, h.__label AS __label, "
                "h.__ts AS __label_ts FROM __batch b LEFT JOIN __held h ON h.__id = b.__id",
                [version],
            )
            conn.execute(f"DELETE FROM {pending} WHERE __id IN (SELECT __id FROM __held)")
            return conn.execute(
                "SELECT DISTINCT ?::VARCHAR, b.__minute FROM __batch b "
                "SEMI JOIN __held h ON h.__id = b.__id",
                [version],
            ).fetchall()
        finally:
            unregister(conn, "__held")

    def _admit_segments(self, conn, spec: ModelSpec, batch: pa.Table) -> dict[str, set[str]]:
        admitted: dict[str, set[str]] = {}
        for column in spec.segments:
            if column in batch.column_names:
                seen = pc.unique(batch.column(column).cast(pa.string())).drop_null().to_pylist()
                admitted[column] = self.registry.admit_segment_values(
                    conn, spec, column, sorted(seen)
                )
            else:
                admitted[column] = self.registry.segment_values(spec, column)
        return admitted

    # -- feedback -----------------------------------------------------------------------

    def ingest_feedback(
        self,
        spec: ModelSpec,
        table: Any,
        *,
        id_col: str = "id",
        label_col: str = "label",
        ts_col: str | None = None,
        batch_id: str | None = None,
        batch_hash: str | None = None,
    ) -> IngestReport:
        """Validate and store a batch of labels; idempotent per ``batch_id`` (and checked
        against ``batch_hash``) like predictions."""
        arrow = to_arrow(table, what=f"model {spec.name!r}: log_feedback_batch table")
        if batch_id is not None and (done := self._seen(spec, batch_id, None, batch_hash)):
            return done
        clean = validate_feedback(
            arrow, spec, id_col=id_col, label_col=label_col, ts_col=ts_col, now=now_micros()
        )
        with self.store.write() as conn:
            if batch_id is not None and (done := self._seen(spec, batch_id, conn, batch_hash)):
                return done
            spec = self.registry.get(spec.name)
            report = self._store_feedback(conn, spec, arrow, clean)
            self._remember(conn, spec, batch_id, "feedback", report, batch_hash)
        return report

    def _store_feedback(
        self, conn, spec: ModelSpec, arrow: pa.Table, clean: CleanBatch
    ) -> IngestReport:
        raw = raw_table(spec)
        batch = clean.table
        received_at = _naive_now()
        quarantine = clean.quarantine
        refused = 0
        conn.register("__fb", batch)
        try:
            self._expire_held(conn, spec, received_at)
            # the last row per id wins within a batch
            conn.execute(
                "CREATE OR REPLACE TEMP TABLE __fb_last AS SELECT __id, "
                "arg_max(__label, __seq) AS __label, arg_max(__ts, __seq) AS __ts, "
                "max(__seq) AS __seq FROM __fb GROUP BY __id"
            )
            distinct_ids = conn.execute("SELECT count(*) FROM __fb_last").fetchall()[0][0]
            dirty = self._apply_labels(conn, raw, distinct_ids)
            held = 0
            if dirty.num_rows < distinct_ids:
                conn.register("__fb_labeled", dirty.select(["__id"]))
                try:
                    held, over = self._hold(conn, spec, received_at)
                finally:
                    unregister(conn, "__fb_labeled")
                if len(over["__row"]):
                    refused = len(over["__row"])
                    cap = f"{self.max_held:,}"
                    quarantine = _merge_quarantine(
                        quarantine,
                        arrow,
                        np.asarray(over["__row"], dtype=np.int64),
                        list(over["__id"]),
                        [
                            f"model {spec.name!r}: too many held labels for unknown ids (cap "
                            f"{cap}, MLPULSE_MAX_HELD_LABELS): no prediction with this id is "
                            "stored; send the predictions first or raise the cap"
                        ]
                        * refused,
                    )
            # the audit log holds every accepted row (not those refused above)
            conn.execute(
                f"INSERT INTO {feedback_table(spec)} SELECT __id, __label, __ts, ? FROM __fb "
                "WHERE __id NOT IN (SELECT __id FROM __fb_refused)"
                if refused
                else f"INSERT INTO {feedback_table(spec)} SELECT __id, __label, __ts, ? FROM __fb",
                [received_at],
            )
            conn.execute("DROP TABLE __fb_last")
            conn.execute("DROP TABLE IF EXISTS __fb_refused")
        finally:
            unregister(conn, "__fb")
        if dirty.num_rows:
            distinct = dirty.group_by(["__version", "__minute"]).aggregate([])
            keys = set(
                zip(
                    distinct.column("__version").to_pylist(),
                    distinct.column("__minute").to_pylist(),
                    strict=True,
                )
            )
            self.store.raw_rows_changed(spec.model_id, {minute for _, minute in keys})
            admitted = {c: self.registry.segment_values(spec, c) for c in spec.segments}
            self._recompute_labeled(conn, spec, sorted(keys), admitted)
        self._quarantine(conn, spec, None, "feedback", quarantine)
        report = IngestReport(
            arrow.num_rows,
            batch.num_rows - refused,
            len(quarantine),
            matched=dirty.num_rows,
            held=held,
        )
        self._stats(conn, spec, "feedback", report)
        return report

    def _apply_labels(self, conn, raw: str, distinct: int) -> pa.Table:
        """Write the labels of ``__fb_last`` into the stored predictions with their ids;
        return ``__id, __version, __minute`` of the rows labeled.

        Late labels mostly follow recent predictions, so the join first covers the newest
        ``LABEL_SPAN`` of stored minutes, then spans twice as long further back, each for the
        ids still unmatched, until every id matched or the history ends. DuckDB skips the
        row groups outside a span by their min/max statistics (rows arrive roughly in time
        order), so applying labels costs what their lateness costs, not what history does.
        """
        first, last = conn.execute(f"SELECT min(__minute), max(__minute) FROM {raw}").fetchall()[0]
        found: list[pa.Table] = []
        if first is None:
            return pa.table(
                {
                    "__id": pa.array([], pa.string()),
                    "__version": pa.array([], pa.string()),
                    "__minute": pa.array([], pa.int64()),
                }
            )
        conn.execute("CREATE OR REPLACE TEMP TABLE __fb_open AS SELECT * FROM __fb_last")
        span, lo, hi = LABEL_SPAN, int(last) - LABEL_SPAN, None
        try:
            while True:
                bounds, params = f"{raw}.__minute >= ?", [lo]
                if hi is not None:
                    bounds, params = bounds + f" AND {raw}.__minute < ?", [lo, hi]
                part = query_arrow(
                    conn,
                    f"UPDATE {raw} SET __label = f.__label, __label_ts = f.__ts FROM __fb_open f "
                    f"WHERE {raw}.__id = f.__id AND {bounds} "
                    f"RETURNING {raw}.__id, {raw}.__version, {raw}.__minute",
                    params,
                )
                found.append(part)
                if sum(t.num_rows for t in found) >= distinct or lo <= int(first):
                    break
                if part.num_rows:
                    conn.register("__fb_found", part.select(["__id"]))
                    try:
                        conn.execute(
                            "DELETE FROM __fb_open WHERE __id IN (SELECT __id FROM __fb_found)"
                        )
                    finally:
                        unregister(conn, "__fb_found")
                span *= 2
                lo, hi = lo - span, lo
        finally:
            conn.execute("DROP TABLE IF EXISTS __fb_open")
        return pa.concat_tables(found)

    def _hold(self, conn, spec: ModelSpec, received_at: datetime) -> tuple[int, dict]:
        """Hold the labels of ``__fb_last`` whose prediction is not stored yet, one row per id
        (a newer label replaces a held one). Labels for new ids past ``max_held`` are refused:
        their ids go to ``__fb_refused`` and their rows of ``__fb`` (``__row``, ``__id``) are
        returned for the quarantine. Returns ``(held, refused rows)``."""
        pending = pending_table(spec)
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE __fb_held AS SELECT f.*, "
            f"f.__id IN (SELECT __id FROM {pending}) AS __known "
            "FROM __fb_last f ANTI JOIN __fb_labeled m ON m.__id = f.__id"
        )
        held_now = int(conn.execute(f"SELECT count(*) FROM {pending}").fetchall()[0][0])
        room = max(self.max_held - held_now, 0)
        # first come, first held: the new ids past the room left are refused
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE __fb_refused AS SELECT __id FROM __fb_held "
            f"WHERE NOT __known ORDER BY __seq OFFSET {int(room)}"
        )
        over = conn.execute(
            "SELECT f.__row, f.__id FROM __fb f SEMI JOIN __fb_refused r ON r.__id = f.__id "
            "ORDER BY f.__row"
        ).fetchnumpy()
        conn.execute(
            f"DELETE FROM {pending} WHERE __id IN (SELECT __id FROM __fb_held WHERE __known)"
        )
        base = conn.execute(f"SELECT coalesce(max(__seq), 0) FROM {pending}").fetchall()[0][0]
        inserted = conn.execute(
            f"INSERT INTO {pending} (__id, __label, __ts, __seq, __received_at) "
            "SELECT h.__id, h.__label, h.__ts, h.__seq + ? + 1, ? FROM __fb_held h "
            "ANTI JOIN __fb_refused r ON r.__id = h.__id",
            [base, received_at],
        ).fetchall()
        conn.execute("DROP TABLE __fb_held")
        return (int(inserted[0][0]) if inserted else 0), over

    def _expire_held(self, conn, spec: ModelSpec, now: datetime) -> None:
        """Move held labels older than ``held_expiry`` to the quarantine (nothing is lost
        silently: the quarantine keeps each label with the reason)."""
        pending = pending_table(spec)
        # pending tables made before held labels expired lack the arrival time: add it (a
        # no-op when present; new models get it here too) and start their clock now
        conn.execute(f"ALTER TABLE {pending} ADD COLUMN IF NOT EXISTS __received_at TIMESTAMP")
        conn.execute(f"UPDATE {pending} SET __received_at = ? WHERE __received_at IS NULL", [now])
        if self.held_expiry is None:
            return
        cutoff = now - timedelta(microseconds=self.held_expiry)
        expired = query_arrow(
            conn,
            f"DELETE FROM {pending} WHERE __received_at < ? "
            "RETURNING __id, __label, __ts, __received_at",
            [cutoff],
        )
        n = expired.num_rows
        if not n:
            return
        rows = pa.table(
            {
                "id": expired.column("__id"),
                "label": expired.column("__label"),
                "timestamp": expired.column("__ts"),
                "held_since": expired.column("__received_at"),
            }
        )
        reason = (
            f"model {spec.name!r}: held label expired: no prediction with this id arrived "
            f"within {_duration_text(self.held_expiry)} (MLPULSE_HELD_LABEL_EXPIRY)"
        )
        self._quarantine(
            conn,
            spec,
            None,
            "feedback",
            Quarantine(
                np.full(n, -1, dtype=np.int64),  # -1: not a row of the batch being ingested
                expired.column("__id").to_pylist(),
                [reason] * n,
                payloads(rows, np.arange(n)),
            ),
        )

    def _recompute_labeled(
        self, conn, spec: ModelSpec, dirty, admitted: dict[str, set[str]]
    ) -> None:
        """Rebuild the labeled part of every dirty (version, minute) and roll it up."""
        kept_from = retention.marks(self.store, spec.model_id, conn).minute
        if any(int(k[1]) < kept_from for k in dirty):
            old = [k for k in dirty if int(k[1]) < kept_from]
            self._recompute_labeled_coarse(conn, spec, old, admitted)
            dirty = [k for k in dirty if int(k[1]) >= kept_from]
            if not dirty:
                return
        keys = pa.table(
            {
                "version": pa.array([k[0] for k in dirty], pa.string()),
                "minute": pa.array([int(k[1]) for k in dirty], pa.int64()),
            }
        )
        lo = min(int(k[1]) for k in dirty)
        hi = max(int(k[1]) for k in dirty)
        segments = "".join(f", r.{quote(c)}" for c in spec.segments if c in spec.features)
        conn.register("__dirty", keys)
        try:
            rows = query_arrow(
                conn,
                f"SELECT r.__version, r.__minute, r.__prediction, r.__label{segments} "
                f"FROM {raw_table(spec)} r JOIN __dirty d ON r.__version = d.version AND r.__minute = d.minute "
                "WHERE r.__label IS NOT NULL AND r.__minute BETWEEN ? AND ?",
                [lo, hi],
            )
        finally:
            unregister(conn, "__dirty")
        minute = labeled_minute_parts(rows, spec, admitted)
        profile_store.save(conn, spec.model_id, minute, self.store.blobs)
        versions = sorted({k[0] for k in dirty})
        levels = list(RESOLUTIONS)
        for finer, resolution in zip(levels, levels[1:], strict=False):
            width = RESOLUTIONS[resolution]
            buckets = sorted({int(k[1]) - int(k[1]) % width for k in dirty})
            blobs = profile_store.load_range(
                conn,
                spec.model_id,
                resolution=finer,
                start=buckets[0],
                end=buckets[-1] + width,
                parts=[LABELED],
                versions=versions,
                cache=self.store.blobs,
            )
            wanted = set(buckets)
            finer_parts = {
                (v, s, finer, int(b), p): decode_part(p, blob)
                for v, s, b, p, _n, blob in blobs
                if blob is not None and int(b) - int(b) % width in wanted
            }
            profile_store.save(
                conn, spec.model_id, rollup(finer_parts, resolution), self.store.blobs
            )

    def _recompute_labeled_coarse(
        self, conn, spec: ModelSpec, dirty, admitted: dict[str, set[str]]
    ) -> None:
        """Rebuild labeled parts of minutes whose minute profiles retention rolled off: the
        finest bucket that is still stored (hour, or day before the hour mark) is rebuilt
        from all of its raw rows (the raw table and the lake), then days from hours."""
        marks = retention.marks(self.store, spec.model_id, conn)

        def level(minute: int) -> str:
            return "hour" if minute >= marks.hour else "day"

        targets = sorted(
            {
                (str(v), level(int(m)), int(m) - int(m) % RESOLUTIONS[level(int(m))])
                for v, m in dirty
            }
        )
        lo = min(b for _v, _lvl, b in targets)
        hi = max(b + RESOLUTIONS[lvl] for _v, lvl, b in targets)
        keys = pa.table(
            {
                "version": pa.array([t[0] for t in targets], pa.string()),
                "lo": pa.array([t[2] for t in targets], pa.int64()),
                "hi": pa.array([t[2] + RESOLUTIONS[t[1]] for t in targets], pa.int64()),
            }
        )
        source = lake.raw_source(
            self.store, spec, lo, hi, conn=conn, what="a late label for an old prediction"
        )
        segments = "".join(f", r.{quote(c)}" for c in spec.segments if c in spec.features)
        conn.register("__dirty", keys)
        try:
            rows = query_arrow(
                conn,
                f"SELECT r.__version, d.lo AS __minute, r.__prediction, r.__label{segments} "
                f"FROM {source} r JOIN __dirty d ON r.__version = d.version "
                "AND r.__minute >= d.lo AND r.__minute < d.hi "
                "WHERE r.__label IS NOT NULL AND r.__minute >= ? AND r.__minute < ?",
                [lo, hi],
            )
        finally:
            unregister(conn, "__dirty")
        # grouped by bucket start (in the __minute column): relabel each part's resolution
        parts = labeled_minute_parts(rows, spec, admitted)
        resolution = {(v, b): lvl for v, lvl, b in targets}
        coarse = {
            (v, s, resolution[(v, b)], b, p): value for (v, s, _r, b, p), value in parts.items()
        }
        profile_store.save(conn, spec.model_id, coarse, self.store.blobs)
        days = sorted({b - b % DAY for _v, lvl, b in targets if lvl == "hour"})
        if not days:
            return
        blobs = profile_store.load_range(
            conn,
            spec.model_id,
            resolution="hour",
            start=days[0],
            end=days[-1] + DAY,
            parts=[LABELED],
            versions=sorted({v for v, lvl, _b in targets if lvl == "hour"}),
            cache=self.store.blobs,
        )
        wanted = set(days)
        hours = {
            (v, s, "hour", int(b), p): decode_part(p, blob)
            for v, s, b, p, _n, blob in blobs
            if blob is not None and int(b) - int(b) % DAY in wanted
        }
        profile_store.save(conn, spec.model_id, rollup(hours, "day"), self.store.blobs)

    # -- quarantine and stats -----------------------------------------------------------

    def _quarantine(
        self, conn, spec: ModelSpec, version: str | None, kind: str, q: Quarantine
    ) -> None:
        if not len(q):
            return
        table = pa.table(
            {
                "model_id": pa.array(np.full(len(q), spec.model_id), pa.int32()),
                "version": pa.array([version] * len(q), pa.string()),
                "kind": pa.array([kind] * len(q), pa.string()),
                "received_at": pa.array([_naive_now()] * len(q), pa.timestamp("us")),
                "batch_row": pa.array(q.rows, pa.int64()),
                "id": pa.array(q.ids, pa.string()),
                "reason": pa.array(q.reasons, pa.string()),
                "payload": pa.array(q.payloads, pa.string()),
            }
        )
        conn.register("__q", table)
        try:
            conn.execute("INSERT INTO quarantine SELECT * FROM __q")
        finally:
            unregister(conn, "__q")
        log.warning("model %r: quarantined %d %s rows (%s)", spec.name, len(q), kind, q.reasons[0])

    def _stats(self, conn, spec: ModelSpec, kind: str, report: IngestReport) -> None:
        conn.execute(
            "INSERT INTO ingest_stats VALUES (?, ?, ?, ?, ?, ?)",
            [spec.model_id, kind, report.received, report.stored, report.quarantined, _naive_now()],
        )

    def quarantined(self, spec: ModelSpec, start: int | None = None, end: int | None = None):
        """Quarantined rows of a model, oldest first, with the reason and the row as JSON."""
        sql = (
            "SELECT received_at, kind, version, batch_row, id, reason, payload FROM quarantine "
            "WHERE model_id = ?"
        )
        params: list[Any] = [spec.model_id]
        if start is not None:
            sql += " AND received_at >= make_timestamp(?)"
            params.append(start)
        if end is not None:
            sql += " AND received_at < make_timestamp(?)"
            params.append(end)
        frame = self.store.fetch_arrow(sql + " ORDER BY received_at, batch_row", params).to_pandas()
        frame["received_at"] = frame["received_at"].dt.tz_localize("UTC")
        return frame


def _merge_quarantine(
    q: Quarantine, arrow: pa.Table, rows: np.ndarray, ids: list, reasons: list[str]
) -> Quarantine:
    """Add rows found bad after validation (duplicate ids) to a quarantine."""
    merged_rows = np.concatenate([q.rows, rows])
    order = np.argsort(merged_rows, kind="stable")
    all_ids = q.ids + list(ids)
    all_reasons = q.reasons + list(reasons)
    lines = q.payloads + payloads(arrow, rows)
    return Quarantine(
        merged_rows[order],
        [all_ids[i] for i in order],
        [all_reasons[i] for i in order],
        [lines[i] for i in order],
    )


__all__ = ["Engine", "IngestReport"]
