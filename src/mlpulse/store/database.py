"""The embedded DuckDB store: one file (or ``:memory:``), one writer, many readers.

All writes go through :meth:`Store.write`, which holds the store's lock and a transaction,
so the background batcher and synchronous ``log_batch`` calls never interleave. Reads use
their own cursor and see the last committed state.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import SchemaError, StoreError, StoreLockedError
from .cache import InputMemo, TxnCache
from .migrations import MIGRATIONS
from .profiles import profile_cache

_PID = re.compile(r"PID (\d+)")


#: Bound on the cached raw rows of window-edge minutes (a few hundred minutes of a busy model).
MINUTE_ROWS_BYTES = 32 * 1024 * 1024
#: Bound on memoised merges (a dense binary-classifier state is ~160 kB).
MERGED_RUNS_BYTES = 64 * 1024 * 1024
#: Bound on parsed model specs (a spec costs about 100 bytes per column).
SPECS_BYTES = 16 * 1024 * 1024
#: Bound on what is derived from reference data (calibrators, prediction/label states).
REFERENCE_MEMO_BYTES = 32 * 1024 * 1024

#: DuckDB's buffer pool would otherwise grow to 80% of RAM, crowding the service it runs in.
DEFAULT_MEMORY_LIMIT = "768MB"


#: WAL size that triggers DuckDB's automatic checkpoint (its default is 16 MB). Each
#: checkpoint rewrites every row group that rows were appended to, so under steady ingest of
#: small batches (20,000 rows, ~5 MB of WAL each) a 16 MB threshold recompressed each raw row
#: group several times: server CPU per 1,000 rows ingested 13.4-14.0 ms at 16 MB, 10.3 ms
#: at 128 MB (BENCHMARKS.md, issue 14 part 4). The cost: up to 128 MB of WAL to replay when
#: a killed server restarts (a few seconds), and as much uncheckpointed data in the buffer pool.
CHECKPOINT_THRESHOLD = "128MB"


def _config() -> dict[str, str | bool | int | float | list[str]]:
    return {"memory_limit": memory_limit(), "checkpoint_threshold": CHECKPOINT_THRESHOLD}


def memory_limit() -> str:
    """DuckDB memory limit: ``$MLPULSE_MEMORY_LIMIT`` (e.g. ``"4GB"``) or 768 MB."""
    return os.environ.get("MLPULSE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


def arrow(
    conn: duckdb.DuckDBPyConnection, sql: str, params: list | tuple | None = None
) -> pa.Table:
    """Run a query and return its result as an Arrow table (no extra copy)."""
    return conn.sql(sql, params=list(params) if params else None).to_arrow_table()


def quote(name: str) -> str:
    """Quote an identifier for SQL: the result is one identifier whatever ``name`` holds
    (``"``, ``;``, ``--`` are plain characters inside it). Names DuckDB cannot take as
    identifiers (not text, a NUL, a lone surrogate) raise :class:`SchemaError`; the names
    mlpulse stores were checked earlier, with the model named (``mlpulse.schema``).

    >>> quote('a"b; DROP TABLE t; --')
    '"a""b; DROP TABLE t; --"'
    """
    if not isinstance(name, str):
        raise SchemaError(f"column name must be a string, not {type(name).__name__}")
    if "\x00" in name:
        raise SchemaError(f"column name {name!r} contains a NUL character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise SchemaError(f"column name {name!r} is not valid Unicode") from None
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def registered(
    conn: duckdb.DuckDBPyConnection, name: str, table: pa.Table
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Register ``table`` as the view ``name`` for the block, then unregister it.

    When the block fails inside a transaction, DuckDB has aborted the transaction and
    ``unregister`` itself would raise (a ``TransactionException`` hiding the real error):
    the view goes with the rollback, so the original error propagates instead.
    """
    conn.register(name, table)
    try:
        yield conn
    finally:
        unregister(conn, name)


def unregister(conn: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Unregister views, in a ``finally`` block: inside a transaction that a failed
    statement aborted, DuckDB refuses (``TransactionException``), which would replace the
    error that is propagating; the views go with the rollback, so that refusal is ignored
    (with no error propagating, the transaction's COMMIT reports the abort)."""
    for name in names:
        with suppress(duckdb.TransactionException):
            conn.unregister(name)


def owner_file(path: str) -> str:
    """Where a server that owns the database file at ``path`` notes its process and URL."""
    return f"{os.path.abspath(path)}.server.json"


def note_server(path: str, url: str) -> str | None:
    """Record that this process serves the database at ``path`` on ``url`` (so that another
    process refused by the file lock is told where to connect); returns the note's path."""
    if path == ":memory:":
        return None
    note = owner_file(path)
    with suppress(OSError), open(note, "w", encoding="utf-8") as fh:
        json.dump({"pid": os.getpid(), "url": url}, fh)
        return note
    return None


def server_url(path: str, pid: int) -> str | None:
    """The URL a server process ``pid`` noted for the database at ``path``, if it did."""
    try:
        with open(owner_file(path), encoding="utf-8") as fh:
            note = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or note.get("pid") != pid or not isinstance(note.get("url"), str):
        return None
    return note["url"]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fsync_dir(path: str) -> None:
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _spec_size(spec) -> int:
    return 512 + 100 * (len(spec.features) + len(spec.segments))


class Store:
    """A DuckDB database holding raw events, profiles and the model registry.

    >>> store = Store(":memory:")
    >>> store.fetch_one("SELECT count(*) FROM models")
    (0,)
    >>> store.close()
    """

    _open: dict[str, Store] = {}
    _open_lock = threading.Lock()

    @classmethod
    def open(cls, path: str = ":memory:") -> Store:
        """The process's store for ``path``: connections to one file share one store (one
        writer lock), so two ``mlpulse.connect(path)`` calls never race each other."""
        if path == ":memory:":
            return cls(path)
        key = os.path.realpath(path)
        with cls._open_lock:
            store = cls._open.get(key)
            if store is None or store._closed:
                store = cls(path)
                cls._open[key] = store
            store._users += 1
            return store

    def release(self) -> None:
        """Give back a store from :meth:`open`; the last user closes it."""
        with Store._open_lock:
            self._users -= 1
            if self._users > 0:
                return
            Store._open.pop(os.path.realpath(self.path), None)
        self.close()

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._users = 0
        self._closed = False
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        try:
            self._conn = duckdb.connect(path, config=_config())
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                pid = _PID.search(text)
                owner = f"process {pid.group(1)}" if pid else "another process"
                url = server_url(path, int(pid.group(1))) if pid else None
                where = (
                    f"mlpulse.connect({url!r})"
                    if url
                    else "mlpulse.connect('http://HOST:PORT') with the address it serves on"
                )
                raise StoreLockedError(
                    f"the database file {path!r} is in use by {owner}; only one process may "
                    f"write to it. Connect to that process's server instead ({where}) or use "
                    "another file."
                ) from None
            raise StoreError(f"cannot open the database file {path!r}: {text}") from None
        self.lock = threading.RLock()
        # profile entries, and the raw rows of minutes that window edges fell in lately:
        # both staged by write transactions, so readers only ever see committed data
        self.blobs = profile_cache()
        self.minute_rows = TxnCache(MINUTE_ROWS_BYTES, size=lambda rows: rows.nbytes)
        # parsed model specs by name (Registry.get), staged by the writes that change them
        self.specs = TxnCache(SPECS_BYTES, size=_spec_size)
        # merged states of runs of stored buckets, valid while their blobs are the same
        self.merged_runs = InputMemo(MERGED_RUNS_BYTES)
        # what is derived from a version's reference (estimation calibrators, prediction and
        # label states), valid while the reference's stored profile blob is the same object
        self.reference_memo = InputMemo(REFERENCE_MEMO_BYTES)
        # Cursor creation is guarded apart from the write lock, so reads never queue
        # behind a long write transaction.
        self._cursor_lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        # bumped when compaction swaps the file: threads' cursors of the old file are stale
        self._generation = 0
        # how far retention pruned each model's tiers (mlpulse.store.retention.marks)
        self.retention_marks: dict[int, Any] = {}
        # one maintenance run at a time (mlpulse.store.retention.maintain)
        self.maintenance_lock = threading.Lock()
        self._migrate()

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the write lock and a transaction; commit on success, roll back on error."""
        with self.lock:
            self._conn.execute("BEGIN TRANSACTION")
            caches = (self.blobs, self.minute_rows, self.specs)
            for cache in caches:
                cache.begin()
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                for cache in caches:
                    cache.rollback()
                raise
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                for cache in caches:
                    cache.rollback()
                raise
            for cache in caches:
                cache.commit()

    def raw_rows_changed(self, model_id: int, minutes) -> None:
        """Tell the minute-row cache that a write changed these minutes' raw rows."""
        self.minute_rows.drop_many((model_id, int(m)) for m in set(minutes))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's read cursor (sees committed data; never waits for a writer)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None or getattr(self._local, "generation", 0) != self._generation:
            with self._cursor_lock:
                cur = self._conn.cursor()
                self._cursors.append(cur)
            self._local.cursor = cur
            self._local.generation = self._generation
        return cur

    def fetch_one(self, sql: str, params: list | tuple | None = None) -> tuple | None:
        rows = self.cursor().execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    def fetch_all(self, sql: str, params: list | tuple | None = None) -> list[tuple]:
        return self.cursor().execute(sql, params or []).fetchall()

    def fetch_arrow(self, sql: str, params: list | tuple | None = None) -> pa.Table:
        return arrow(self.cursor(), sql, params)

    def close(self) -> None:
        with self.lock:
            if self._closed:
                return
            self._closed = True
            for cur in self._cursors:
                with suppress(duckdb.Error):
                    cur.close()
            try:
                if self.path != ":memory:":
                    self._conn.execute("CHECKPOINT")
            except duckdb.Error:
                pass
            self._conn.close()

    # -- compaction ---------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file (DuckDB's ``CHECKPOINT``)."""
        with self.lock:
            self._conn.execute("CHECKPOINT")

    def free_fraction(self) -> float:
        """The share of the file's blocks that are free (DuckDB reuses them but never gives
        them back to the file system); 0 for ``:memory:``."""
        if self.path == ":memory:":
            return 0.0
        row = self.fetch_one(
            "SELECT total_blocks, free_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()"
        )
        if not row or not row[0]:
            return 0.0
        return float(row[1]) / float(row[0])

    def compact(self) -> tuple[int, int]:
        """Rewrite the database into a new file without its free blocks and swap it in
        atomically, holding the write lock; returns the file's ``(bytes before, after)``.

        Copies with ``COPY FROM DATABASE`` into ``<db>.compact``, closes this store's
        connection (so the file lock and the ``.wal`` go), renames the copy over the file
        and opens it again. A crash before the rename leaves the old file (and a leftover
        copy, removed at the next compaction); after it, the new one. Reads running on
        another thread during the swap may fail once; later reads use the new file.
        """
        from .lake import crash_point

        if self.path == ":memory:":
            return 0, 0
        path = os.path.abspath(self.path)
        target = path + ".compact"
        with self.lock:
            before = os.path.getsize(path)
            self._conn.execute("CHECKPOINT")
            for leftover in (target, target + ".wal"):
                with suppress(FileNotFoundError):
                    os.remove(leftover)
            # DuckDB would draw a progress bar on the terminal for the copy
            self._conn.execute("SET enable_progress_bar = false")
            [(current,)] = self._conn.execute("SELECT current_database()").fetchall()
            self._conn.execute(f"ATTACH {_literal(target)} AS __compact")
            try:
                self._conn.execute(f"COPY FROM DATABASE {quote(current)} TO __compact")
                self._conn.execute("CHECKPOINT __compact")
            finally:
                self._conn.execute("DETACH __compact")
            crash_point("compact-copied")
            with self._cursor_lock:
                for cur in self._cursors:
                    with suppress(duckdb.Error):
                        cur.close()
                self._cursors.clear()
                self._generation += 1
                self._conn.close()
                os.replace(target, path)
                _fsync_dir(os.path.dirname(path))
                crash_point("compact-swapped")
                self._conn = duckdb.connect(path, config=_config())
            return before, os.path.getsize(path)

    # -- schema -------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
            )
            done = {
                row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()
            }
            for number, name, statements in MIGRATIONS:
                if number in done:
                    continue
                for sql in statements:
                    conn.execute(sql)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [number, name, datetime.now(UTC).replace(tzinfo=None)],
                )

    def schema_version(self) -> int:
        row = self.fetch_one("SELECT max(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

    def table_columns(self, table: str) -> dict[str, str]:
        """Column name -> DuckDB type of a table (empty if it does not exist)."""
        rows = self.fetch_all(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        )
        return {name: dtype for name, dtype in rows}
