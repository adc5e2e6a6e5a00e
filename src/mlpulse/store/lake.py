"""The Parquet lake: raw rows and feedback audit rows older than the raw retention, beside
the database file.

Rows that leave the DuckDB file (:mod:`mlpulse.store.retention`) are written as Parquet
files under ``<db>.lake/``. Each :class:`Kind` of table has its own layout: raw rows are
partitioned Hive-style by model, version and UTC date of their minute bucket; the feedback
audit log (``feedback_<id>``, which has no version) by model and UTC date of arrival, in a
``feedback`` folder that no ``version=`` pattern matches::

    pulse.duckdb.lake/model=churn/version=v1/date=2026-01-01/part-<first minute>-<n>.parquet
    pulse.duckdb.lake/model=churn/feedback/date=2026-01-02/part-<first minute>-<n>.parquet

Model and version names are user data: each path component percent-encodes them (no ``/``,
``..`` or control character survives), and a name too long for a file system's 255-byte
component limit is cut and suffixed with a hash of the whole name.

The ``lake_files`` table is the manifest: a file belongs to the lake exactly when its row
does, and its ``kind`` column says which table its rows came from. Files are written under a temporary name, renamed, and recorded in the transaction
that deletes their rows from the raw table, so a crash at any point leaves every row in
exactly one place; files on disk that the manifest does not name are leftovers of an
interrupted run and are removed (:func:`sweep`). Readers never list directories.

:func:`raw_source` is how every reader of raw rows sees both tiers: a SQL relation with the
raw table's columns over the hot rows and the raw lake files that overlap a time range
(never feedback files).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote as percent

from .._time import MINUTE, from_micros, now_micros
from ..errors import ConfigError
from ..schema import ModelSpec
from .database import Store, quote
from .registry import feedback_table, raw_table

#: The lake directory's suffix: ``pulse.duckdb`` keeps its lake in ``pulse.duckdb.lake/``.
LAKE_SUFFIX = ".lake"
#: Longest encoded name in one path component (the rest becomes a hash).
_MAX_COMPONENT = 120
_TMP = ".tmp"


def lake_dir(path: str) -> str | None:
    """Where the database at ``path`` keeps its lake (None for ``:memory:``)."""
    if path == ":memory:":
        return None
    return os.path.abspath(path) + LAKE_SUFFIX


def component(name: str) -> str:
    """A user-given name as one safe path component.

    >>> component("churn")
    'churn'
    >>> component("../../etc/passwd")
    '..%2F..%2Fetc%2Fpasswd'
    >>> component("..")
    '%2E%2E'
    """
    text = percent(name, safe="")
    if text in (".", ".."):
        text = text.replace(".", "%2E")
    if len(text) > _MAX_COMPONENT:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        text = f"{text[: _MAX_COMPONENT - 18]}~{digest}"
    return text


@dataclass(frozen=True)
class Kind:
    """A per-model table whose old rows the lake takes: how its rows are bucketed by
    minute, partitioned and ordered (SQL over the table's own columns)."""

    #: ``lake_files.kind``
    name: str
    table: Callable[[ModelSpec], str]
    #: column of the version (None: the table has none, one partition per model and date)
    version: str | None
    #: a row's minute bucket in microseconds (what chunks and ``first/last_minute`` count)
    minute: str
    #: rows whose minute bucket is in ``[?, ?)`` (microseconds; the planner can prune by it)
    between: str
    #: rows whose minute bucket is before ``?``
    before: str
    #: row order inside a file
    order: str


#: Raw rows by event time (``__minute``), per version.
RAW = Kind(
    name="raw",
    table=raw_table,
    version="__version",
    minute="__minute",
    between="__minute >= ? AND __minute < ?",
    before="__minute < ?",
    order="__ts",
)
#: The feedback audit log by arrival time (``__received_at``); labels on raw rows stay there.
FEEDBACK = Kind(
    name="feedback",
    table=feedback_table,
    version=None,
    minute="epoch_us(date_trunc('minute', __received_at))",
    between=(
        "__received_at >= make_timestamp(?::BIGINT) AND __received_at < make_timestamp(?::BIGINT)"
    ),
    before="__received_at < make_timestamp(?::BIGINT)",
    order="__received_at",
)
KINDS = (RAW, FEEDBACK)


def partition(spec: ModelSpec, version: str, minute: int, kind: Kind = RAW) -> str:
    """The directory (relative to the lake) of a version's rows of one UTC date (for a kind
    without versions, the model's rows of that date under a folder named after the kind)."""
    date = from_micros(minute).strftime("%Y-%m-%d")
    if kind.version is None:
        return f"model={component(spec.name)}/{kind.name}/date={date}"
    return f"model={component(spec.name)}/version={component(version)}/date={date}"


def scope(kind: Kind, version: str | None, first: int, stop: int) -> tuple[str, list[Any]]:
    """``WHERE`` clause and parameters of a chunk: ``kind``'s rows of ``version`` (ignored
    for a kind without versions) with minute buckets in ``[first, stop)``."""
    if kind.version is None:
        return kind.between, [first, stop]
    return f"{kind.version} = ? AND {kind.between}", [version, first, stop]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def write_file(
    conn,
    store: Store,
    spec: ModelSpec,
    version: str,
    first: int,
    stop: int,
    columns: dict[str, str],
    kind: Kind = RAW,
) -> tuple[str, int, int] | None:
    """Write ``kind``'s rows of ``version`` in minutes ``[first, stop)`` to a new Parquet
    file (inside the caller's write transaction) and return ``(relative path, rows, bytes)``,
    None when there are none. The file is complete and renamed when this returns; the caller
    records it and deletes the rows in the same transaction."""
    root = lake_dir(store.path)
    assert root is not None
    folder = partition(spec, version, first, kind)
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    name = f"part-{first // MINUTE}-{os.getpid()}-{now_micros()}.parquet"
    relative = f"{folder}/{name}"
    final = os.path.join(root, relative)
    temporary = final + _TMP
    select = ", ".join(quote(c) for c in columns)
    where, params = scope(kind, version, first, stop)
    # the file name is ours (encoded names, digits): a literal is safe, parameters are not
    # accepted by COPY's target
    conn.execute(
        f"COPY (SELECT {select} FROM {kind.table(spec)} WHERE {where} ORDER BY {kind.order}) "
        f"TO {_literal(temporary)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
        params,
    )
    rows = conn.execute(f"SELECT count(*) FROM read_parquet({_literal(temporary)})").fetchall()[0][
        0
    ]
    if not rows:
        os.remove(temporary)
        return None
    _fsync(temporary)
    crash_point("lake-written", kind.name)
    os.replace(temporary, final)
    _fsync(os.path.dirname(final))
    crash_point("lake-renamed", kind.name)
    return relative, int(rows), os.path.getsize(final)


def record(
    conn,
    spec: ModelSpec,
    version: str,
    relative: str,
    first: int,
    last: int,
    rows: int,
    size: int,
    columns: dict[str, str],
    kind: Kind = RAW,
) -> None:
    """Add a written file to the manifest (in the transaction that deletes its rows)."""
    conn.execute(
        "INSERT INTO lake_files (path, model_id, version, first_minute, last_minute, rows, "
        "bytes, columns, written_us, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            relative,
            spec.model_id,
            version,
            first,
            last,
            rows,
            size,
            json.dumps(columns),
            now_micros(),
            kind.name,
        ],
    )


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sweep(store: Store) -> int:
    """Remove files under the lake that the manifest does not name (temporary files and
    files renamed by a run that crashed before its transaction committed); returns how
    many. Runs before maintenance, under the write lock."""
    root = lake_dir(store.path)
    if root is None or not os.path.isdir(root):
        return 0
    known = {row[0] for row in store.fetch_all("SELECT path FROM lake_files")}
    removed = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            relative = os.path.relpath(full, root).replace(os.sep, "/")
            if relative not in known:
                os.remove(full)
                removed += 1
    return removed


def files(
    store: Store,
    spec: ModelSpec,
    lo: int | None = None,
    hi: int | None = None,
    conn=None,
    kind: Kind = RAW,
) -> list[tuple[str, dict[str, str], str]]:
    """``(absolute path, columns, version)`` of the model's lake files of ``kind`` (raw rows
    unless told) whose minutes overlap ``[lo, hi)`` (microseconds; None: unbounded), oldest
    first."""
    root = lake_dir(store.path)
    if root is None:
        return []
    sql = "SELECT path, columns, version FROM lake_files WHERE model_id = ? AND kind = ?"
    params: list[Any] = [spec.model_id, kind.name]
    if lo is not None:
        sql += " AND last_minute >= ?"
        params.append(lo - lo % MINUTE)
    if hi is not None:
        sql += " AND first_minute < ?"
        params.append(hi)
    sql += " ORDER BY first_minute, path"
    rows = (
        conn.execute(sql, params).fetchall() if conn is not None else store.fetch_all(sql, params)
    )
    return [(os.path.join(root, p), json.loads(c), v) for p, c, v in rows]


def raw_source(
    store: Store,
    spec: ModelSpec,
    lo: int | None = None,
    hi: int | None = None,
    *,
    conn=None,
    what: str = "this query",
) -> str:
    """A SQL relation over the model's raw rows of ``[lo, hi)`` wherever they are: the raw
    table alone while no row of the range has left it, else the raw table and the lake's
    Parquet files overlapping the range (``UNION ALL``, columns by name, a column that a
    file lacks reads as NULL). Callers filter by time themselves; the range only chooses
    files. Rows deleted by retention (``raw_archive="delete"``) cannot be read: a range
    reaching before that mark raises :class:`~mlpulse.errors.ConfigError` naming the model,
    the range, the mark and ``what`` needed the rows.

    Use it wherever the raw table was named: ``f"SELECT ... FROM {raw_source(...)} r"``.
    """
    from .retention import marks

    table = raw_table(spec)
    mark = marks(store, spec.model_id, conn)
    if lo is not None and lo < mark.raw_deleted:
        # only the hot rows of the range reach back before the mark (backfills): refuse
        raise ConfigError(
            f"model {spec.name!r}: {what} needs raw rows from "
            f"{from_micros(lo).isoformat()} to {from_micros(min(hi or mark.raw_deleted, mark.raw_deleted)).isoformat()}, "
            f"but raw rows before {from_micros(mark.raw_deleted).isoformat()} were deleted by "
            "the raw retention (raw_archive='delete'); profiles still answer windows aligned "
            "to the stored buckets, and raw_archive='parquet' keeps raw rows in the lake"
        )
    if lo is not None and lo >= mark.raw:
        return table
    found = files(store, spec, lo, hi, conn)
    if not found:
        return table
    hot = store.table_columns(table) if conn is None else _columns(conn, table)
    paths = ", ".join(_literal(path) for path, _cols, _v in found)
    present: set[str] = set()
    for _path, cols, _v in found:
        present.update(cols)
    select = ", ".join(
        quote(c) if c in present else f"CAST(NULL AS {kind}) AS {quote(c)}"
        for c, kind in hot.items()
    )
    return (
        f"(SELECT * FROM {table} UNION ALL BY NAME SELECT {select} FROM "
        f"read_parquet([{paths}], union_by_name = true))"
    )


def _columns(conn, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {name: kind for name, kind in rows}


def size(store: Store) -> tuple[int, int]:
    """``(files, bytes)`` in the lake's manifest (every kind)."""
    row = store.fetch_one("SELECT count(*), coalesce(sum(bytes), 0) FROM lake_files")
    return (int(row[0]), int(row[1])) if row else (0, 0)


#: ``$MLPULSE_CRASH_AT``: the maintenance step at which to kill this process (``kill -9``),
#: for crash-safety tests only. Steps: lake-written, lake-renamed, archive-before-commit,
#: profiles-before-commit, compact-copied, compact-swapped. The lake's steps also answer to
#: ``<kind>:<step>`` (``feedback:lake-written``): that step of that kind only.
CRASH_ENV = "MLPULSE_CRASH_AT"
_STEP = re.compile(r"^[a-z:-]+$")


def crash_point(step: str, kind: str | None = None) -> None:
    """Kill this process (SIGKILL, no cleanup) when ``$MLPULSE_CRASH_AT`` names ``step``
    (or ``kind:step``)."""
    wanted = os.environ.get(CRASH_ENV)
    if wanted and _STEP.match(wanted) and wanted in (step, f"{kind}:{step}"):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
