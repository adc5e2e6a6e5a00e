"""``mlpulse report/check --reference REF --current CUR``: two Parquet or CSV files compared
without a server, through the same analyses as a stored model.

The files are loaded into a throwaway in-memory store: the reference as the model's
reference, the current file as its predictions with their labels, so drift, quality,
metrics and estimates are what ``model.drift()`` and the others say for the same data.

A current file without a timestamp column (the usual case) is profiled in this process by
the code that profiles each logged batch (:func:`mlpulse.spark.profile_arrow`: the engine's
validation, then its profiles with each row's label, as a Spark partition makes them) and
only the bucket profiles are stored (``Service.put_profiles``): every row sits at the start
of one hour, the report's window is that hour, so every analysis reads whole stored
buckets and no raw row or label join is needed. Counts and sums equal the logged path's;
sketches are merged from chunks of rows, within their rank bound. Where an answer would
need raw rows (see :func:`profiles_only`: timestamps, a timeline, a regression, repeated
ids, small samples) the current file is logged as rows and labels (``log_batch`` and
``log_feedback_batch``) instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, SchemaError

#: Column names taken for the prediction and the label when none is given (first found).
PREDICTION_NAMES = ("prediction", "score", "y_pred", "pred", "proba", "probability", "output")
LABEL_NAMES = ("label", "target", "y", "y_true", "actual", "truth")
TIMESTAMP_NAMES = ("timestamp", "ts", "time", "event_time")
ID_NAMES = ("id", "request_id", "prediction_id")
#: The model a file comparison registers.
MODEL = "model"
VERSION = "current"


def read_table(path: Any) -> pa.Table:
    """A Parquet (``.parquet``, ``.pq``) or CSV (``.csv``, ``.tsv``, optionally ``.gz``)
    file as an Arrow table; a pandas / polars / pyarrow table is passed through."""
    if not isinstance(path, str | os.PathLike):
        from ..schema import to_arrow

        return to_arrow(path, what="report table")
    name = os.fspath(path)
    lower = name.lower()
    if not os.path.exists(name):
        raise ConfigError(f"no file at {name!r}")
    try:
        if lower.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return pq.read_table(name)
        if lower.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
            import pyarrow.csv as pcsv

            delimiter = "\t" if ".tsv" in lower else ","
            return pcsv.read_csv(name, parse_options=pcsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"cannot read {name!r}: {exc}") from None
    raise ConfigError(f"{name!r}: expected a Parquet (.parquet) or CSV (.csv, .tsv) file")


@dataclass(frozen=True)
class Roles:
    """Which columns of the two tables are what."""

    task: str
    prediction: str
    label: str | None
    timestamp: str | None
    id: str | None


def _pick(given: str | None, names: tuple[str, ...], *tables: pa.Table) -> str | None:
    if given is not None:
        return given
    for name in names:
        if all(name in t.column_names for t in tables):
            return name
    return None


def infer_roles(
    reference: pa.Table,
    current: pa.Table,
    *,
    task: str | None = None,
    prediction: str | None = None,
    label: str | None = None,
    timestamp: str | None = None,
    id: str | None = None,
) -> Roles:
    """The columns' roles: those given, else the usual names (``prediction``/``score``,
    ``label``/``target``, ``timestamp``, ``id``); the task from the prediction and label
    values when not given (probabilities in [0, 1] with a two-valued label: binary; text
    or few whole-number classes: multiclass; else regression)."""
    prediction = _pick(prediction, PREDICTION_NAMES, reference, current)
    if prediction is None:
        raise ConfigError(
            "cannot tell which column is the prediction: pass --prediction NAME (looked for "
            f"{', '.join(PREDICTION_NAMES)} in both files)"
        )
    for what, table in (("reference", reference), ("current", current)):
        if prediction not in table.column_names:
            raise SchemaError(f"the {what} file has no prediction column {prediction!r}")
    label = _pick(label, LABEL_NAMES, reference)
    if label is not None and label not in reference.column_names:
        raise SchemaError(f"the reference file has no label column {label!r}")
    timestamp = _pick(timestamp, TIMESTAMP_NAMES, current)
    if timestamp is not None and timestamp not in current.column_names:
        raise SchemaError(f"the current file has no timestamp column {timestamp!r}")
    id = _pick(id, ID_NAMES, current)
    if id is not None and id not in current.column_names:
        raise SchemaError(f"the current file has no id column {id!r}")
    if task is None:
        task = _infer_task(reference.column(prediction), reference.column(label) if label else None)
    if task not in ("binary", "multiclass", "regression"):
        raise ConfigError(f"task must be binary, multiclass or regression, got {task!r}")
    return Roles(task, prediction, label, timestamp, id)


def _infer_task(pred: pa.ChunkedArray, label: pa.ChunkedArray | None) -> str:
    if not (pa.types.is_integer(pred.type) or pa.types.is_floating(pred.type)
            or pa.types.is_boolean(pred.type)):  # fmt: skip
        return "multiclass"
    labels = pc.unique(label.drop_null()) if label is not None else None
    if pa.types.is_floating(pred.type):
        lo_hi = pc.min_max(pred)
        lo, hi = lo_hi["min"].as_py(), lo_hi["max"].as_py()
        in_unit = lo is not None and hi is not None and lo >= 0.0 and hi <= 1.0
        if in_unit and (labels is None or len(labels) <= 2):
            return "binary"
        return "regression"
    distinct = len(pc.unique(pred.drop_null()))
    if distinct <= 2:
        return "binary"
    return "multiclass" if distinct <= 50 else "regression"


@dataclass(frozen=True)
class _Handle:
    """What :func:`mlpulse.spark.profile_arrow` reads of a model handle."""

    name: str
    version: str
    spec: Any


def profiles_only(
    reference: pa.Table, current: pa.Table, roles: Roles, step: Any = "auto"
) -> bool:
    """Whether the current table can be stored as bucket profiles alone (see the module
    docstring), every answer then coming from whole stored buckets as the logged rows'
    would: no timestamp column and no timeline asked (windows cutting hours read raw
    rows), not a regression (its label's drift is read from raw rows), unique ids (the
    logged path quarantines repeats), no unchosen column named like the label, and every
    column compared by a distance (more than ``SMALL_SAMPLE`` values on both sides, or none
    on one): hypothesis tests on small samples recompute a decision that sketch noise
    straddles from the raw rows."""
    from ..drift.methods import SMALL_SAMPLE

    if roles.timestamp is not None or step not in ("auto", None) or roles.task == "regression":
        return False
    if roles.label is None and "label" in current.column_names:
        return False
    if roles.id is not None:
        ids = current.column(roles.id)
        if pc.count_distinct(ids, mode="all").as_py() != len(ids):
            return False
    for name in current.column_names:
        if name in (roles.id, roles.timestamp):
            continue
        n_cur = _values(current.column(name))
        n_ref = _values(reference.column(name)) if name in reference.column_names else 0
        if n_cur and n_ref and min(n_cur, n_ref) <= SMALL_SAMPLE:
            return False
    return True


def _values(column: pa.ChunkedArray) -> int:
    """Values a column's profile counts: non-null, and finite where it holds floats."""
    if pa.types.is_floating(column.type):
        return int(pc.sum(pc.is_finite(column)).as_py() or 0)
    return len(column) - column.null_count


def load(
    service: Any,
    reference: pa.Table,
    current: pa.Table,
    roles: Roles,
    *,
    name: str = MODEL,
    step: Any = "auto",
) -> tuple[str, str, datetime, datetime]:
    """Register ``name`` with the reference and store the current rows with their labels
    (as bucket profiles where :func:`profiles_only` allows, else as rows and feedback);
    returns ``(name, version, start, end)`` of the window holding every current row."""
    drop = [c for c in (roles.id, roles.timestamp) if c and c in reference.column_names]
    ref = reference.drop_columns(drop)
    label = roles.label or "label"
    service.register(name, VERSION, task=roles.task, reference=ref, prediction=roles.prediction,
                     label=label, recommended_rules=False)  # fmt: skip
    if profiles_only(reference, current, roles, step):
        return _load_profiles(service, current, roles, name)
    table = current
    id_col = roles.id
    if id_col is None:
        id_col = "id"
        if id_col in table.column_names:
            raise SchemaError(
                "the current file has an 'id' column that was not chosen as the id: pass --id id"
            )
        table = table.append_column(id_col, pa.array(np.arange(table.num_rows)).cast(pa.string()))
    if roles.timestamp is None:
        # no event times: every row in one minute, the report's single window
        at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        ts_col = "timestamp"
        if ts_col in table.column_names:
            raise SchemaError(
                "the current file has a 'timestamp' column that was not chosen: pass --timestamp"
            )
        stamps = pa.array(np.full(table.num_rows, int(at.timestamp() * 1e6), dtype=np.int64))
        table = table.append_column(ts_col, stamps.cast(pa.timestamp("us", tz="UTC")))
        start, end = at, at + timedelta(minutes=1)
    else:
        ts_col = roles.timestamp
        bounds = pc.min_max(pc.cast(table.column(ts_col), pa.timestamp("us", tz="UTC")))
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if lo is None:
            raise SchemaError(f"the current file's timestamp column {ts_col!r} is empty")
        start = lo.replace(tzinfo=lo.tzinfo or UTC)
        end = hi.replace(tzinfo=hi.tzinfo or UTC) + timedelta(microseconds=1)
    labels = None
    if roles.label is not None and roles.label in table.column_names:
        labels = table.select([id_col, roles.label])
        table = table.drop_columns([roles.label])
    service.log_batch(name, VERSION, table, id=id_col, timestamp=ts_col)
    if labels is not None:
        labels = labels.filter(pc.is_valid(labels.column(roles.label)))
        if labels.num_rows:
            service.log_feedback_batch(name, labels, id=id_col, label=roles.label)
    return name, VERSION, _floor_second(start), _ceil_second(end)


def _load_profiles(
    service: Any, current: pa.Table, roles: Roles, name: str
) -> tuple[str, str, datetime, datetime]:
    """Profile ``current`` (rows and labels) here and store only its bucket profiles, every
    row at the start of the last whole hour; the window is that hour."""
    from ..spark import profile_arrow

    table = current
    id_col = roles.id
    if id_col is None:
        id_col = "id"
        if id_col in table.column_names:
            raise SchemaError(
                "the current file has an 'id' column that was not chosen as the id: pass --id id"
            )
        table = table.append_column(id_col, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    if "timestamp" in table.column_names:
        raise SchemaError(
            "the current file has a 'timestamp' column that was not chosen: pass --timestamp"
        )
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    stamps = pa.array(np.full(table.num_rows, int(start.timestamp() * 1e6), dtype=np.int64))
    table = table.append_column("timestamp", stamps.cast(pa.timestamp("us", tz="UTC")))
    label = roles.label if roles.label in table.column_names else None
    handle = _Handle(name, VERSION, service.spec(name))
    profiles = profile_arrow(handle, table, id=id_col, timestamp="timestamp",
                             label=label)  # fmt: skip
    if profiles.num_rows:
        service.put_profiles(name, VERSION, profiles, replace=True)
    return name, VERSION, start, start + timedelta(hours=1)


def _floor_second(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _ceil_second(t: datetime) -> datetime:
    return t if t.microsecond == 0 else t.replace(microsecond=0) + timedelta(seconds=1)


__all__ = ["Roles", "infer_roles", "load", "profiles_only", "read_table"]
