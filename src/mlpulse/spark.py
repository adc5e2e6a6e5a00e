"""Apache Spark: bucket profiles computed where the data lives, sent to the model's store.

>>> from mlpulse import spark as mlspark                             # doctest: +SKIP
>>> mlspark.profile(model, predictions_sdf, labels=labels_sdf,      # doctest: +SKIP
...                 id="rid", timestamp="ts", label="y")

:func:`profile` runs mlpulse's own validation and profiling code
(:func:`mlpulse.engine.validate.validate_predictions`,
:func:`mlpulse.engine.profiling.batch_parts` and
:func:`~mlpulse.engine.profiling.labeled_minute_parts`) inside Spark partitions through
``mapInArrow``; the labels are validated the same way, the latest per id (by its timestamp)
is joined to the predictions by id in Spark, rows are partitioned by event hour so that a
bucket's rows meet in one partition, the per-partition profiles are collected as Arrow and
the few that several partitions share (day buckets, counters) are merged on the driver; only
the merged profiles travel to the store (embedded or a server) through
``Model.put_profiles``. All of it is one Spark job. The buckets a run covers are *replaced*: re-running after more
labels arrived updates them, and re-running on the same data changes nothing.

:func:`sink` is a Structured Streaming ``foreachBatch`` function: each micro-batch's profiles
are *merged* into the stored buckets (a micro-batch holds new rows of buckets that earlier
ones may have begun), once per micro-batch id, so a micro-batch that Spark replays after a
failure is not counted twice.

pyspark is an optional dependency (``pip install 'mlpulse[spark]'``): importing this module
works without it; calling a function that needs Spark raises a clear error.
"""

from __future__ import annotations

import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._time import RESOLUTIONS, now_micros
from .errors import ConfigError
from .profiles.bucket import CORE, LABELED, decode_part, encode_part, merge_part
from .schema import OTHER_SEGMENT, SEGMENT_CAP, ModelSpec, infer_features

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

#: Internal column names added to the rows a partition profiles.
ID, LABEL, LABEL_TS = "__mlpulse_id", "__mlpulse_label", "__mlpulse_label_ts"
#: Columns added to the predictions when an id occurs more than once: each row's place in the
#: input (``monotonically_increasing_id``) and whether its id repeats (null: it does not).
ORDER, REPEATED = "__mlpulse_order", "__mlpulse_repeated"
#: Columns of the label check's output: a quarantine reason and the number of labels a row of
#: that reason stands for (each partition's rejected labels are summarised by reason).
REASON, COUNT = "__mlpulse_reason", "__mlpulse_count"
#: Parts of the partition output that are counters (of rows received, and of predictions and
#: labels quarantined, by reason in ``segment``), not profiles; the count is in ``blob``.
RECEIVED, QUARANTINED, LABELS_QUARANTINED = "__received__", "__quarantined__", "__labels_q__"
COUNTERS = (RECEIVED, QUARANTINED, LABELS_QUARANTINED)
#: Rows a partition profiles at once (its Arrow batches are gathered up to this many).
CHUNK_ROWS = 262_144
#: Bytes of profiles per request to the store (each request holds whole buckets).
REQUEST_BYTES = 32 * 1024 * 1024
#: Values of a segment column a chunk profiles as slices of their own: its first ones in sorted
#: order; the rest are pooled into ``__other__`` there. The store admits up to the cap of the
#: values it sees (sorted, after those it knows) and pools the rest: a value the store admits
#: has fewer than ``2 * SEGMENT_CAP`` values sorting before it in any chunk, so this loses
#: nothing unless a value the store already knew has this many smaller values in one chunk.
SEGMENT_VALUES_KEPT = 10 * SEGMENT_CAP
#: Rows of the profiles table per output record batch of a partition.
OUTPUT_ROWS = 8_192

_OUTPUT_SCHEMA = pa.schema(
    [
        ("segment", pa.string()),
        ("resolution", pa.string()),
        ("bucket", pa.int64()),
        ("part", pa.string()),
        ("blob", pa.binary()),
    ]
)


def _require_spark() -> Any:
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import functions
    except ImportError:
        raise ConfigError(
            "mlpulse.spark needs pyspark: pip install 'mlpulse[spark]' (and Java 17 for a "
            "local Spark)"
        ) from None
    return functions


@dataclass
class SparkReport:
    """What a run profiled and sent: ``received == stored + quarantined`` rows of
    predictions; ``labeled`` predictions carry a label; ``reasons`` counts quarantined
    rows (predictions and labels) by reason; ``bytes_sent`` is the size of the profiles
    sent to the store, in ``requests`` requests. ``job_seconds``: the Spark job (with the
    driver's merge of shared parts); ``send_seconds``: storing the profiles (the store's
    ``put_profiles``, in process or over HTTP)."""

    received: int = 0
    stored: int = 0
    quarantined: int = 0
    labeled: int = 0
    labels_quarantined: int = 0
    parts: int = 0
    buckets: int = 0
    replaced: int = 0
    requests: int = 0
    bytes_sent: int = 0
    duplicate: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    job_seconds: float = 0.0
    send_seconds: float = 0.0


# -- what runs in the partitions (plain Python, testable without Spark) ---------------------


@dataclass(frozen=True)
class Profiler:
    """Profiles the Arrow batches of one partition with the embedded engine's code.

    ``admitted`` names the values of each segment column that get slices of their own; None
    (the default) keeps each chunk's first :data:`SEGMENT_VALUES_KEPT` values in sorted order
    and lets the store admit and pool them (see there). Rows with a ``__mlpulse_count`` are
    not predictions but the label check's summary of rejected labels, counted by reason."""

    spec: ModelSpec
    version: str
    admitted: dict[str, set[str]] | None
    id: str
    timestamp: str | None
    now: int
    chunk_rows: int = CHUNK_ROWS

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        parts: dict[tuple, Any] = {}
        counts: Counter[tuple[str, str]] = Counter()
        pending: list[pa.RecordBatch] = []
        held: list[pa.RecordBatch] = []  # rows whose id repeats: profiled last, together
        rows = 0
        for batch in batches:
            if batch.num_rows and REPEATED in batch.schema.names:
                repeats = pc.fill_null(batch.column(REPEATED), False)
                if pc.any(repeats).as_py():
                    held.append(batch.filter(repeats))
                    batch = batch.filter(pc.invert(repeats))
                batch = batch.select([c for c in batch.schema.names if c not in (ORDER, REPEATED)])
            if batch.num_rows == 0:
                continue
            pending.append(batch)
            rows += batch.num_rows
            if rows >= self.chunk_rows:
                self.chunk(pa.Table.from_batches(pending), parts, counts)
                pending, rows = [], 0
        if pending:
            self.chunk(pa.Table.from_batches(pending), parts, counts)
        if held:
            for table in self.by_id(pa.Table.from_batches(held).drop_columns([REPEATED])):
                self.chunk(table, parts, counts)
        out = output(parts, counts)
        for start in range(0, max(out.num_rows, 1), OUTPUT_ROWS):
            yield out.slice(start, OUTPUT_ROWS)

    def by_id(self, table: pa.Table) -> Iterator[pa.Table]:
        """Rows whose id repeats (all of their id's rows: Spark partitions them by id), in
        chunks of whole ids, sorted by id and input order."""
        table = table.take(pc.sort_indices(table, [(self.id, "ascending"), (ORDER, "ascending")]))
        n = table.num_rows
        if n <= self.chunk_rows:
            yield table
            return
        ids = table.column(self.id).combine_chunks()
        starts = np.flatnonzero(pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)) + 1
        targets = np.arange(self.chunk_rows, n, self.chunk_rows)
        at = np.searchsorted(starts, targets)
        cuts = np.unique(np.concatenate([[0], starts[at[at < len(starts)]], [n]]))
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            yield table.slice(int(lo), int(hi - lo))

    def chunk(self, table: pa.Table, parts: dict[tuple, Any], counts: Counter[tuple[str, str]]) -> None:
        """Count the label check's summary rows, profile the predictions."""
        if COUNT in table.column_names:
            summary = pc.is_valid(table.column(COUNT))
            if pc.any(summary).as_py():
                rejected = table.filter(summary)
                for reason, n in zip(rejected.column(REASON).to_pylist(),
                                     rejected.column(COUNT).to_pylist(), strict=True):  # fmt: skip
                    counts[(LABELS_QUARANTINED, reason)] += int(n)
                table = table.filter(pc.invert(summary))
            table = table.drop_columns([c for c in (REASON, COUNT) if c in table.column_names])
        if table.num_rows:
            self.profile(table, parts, counts)

    def segment_values(self, table: pa.Table) -> dict[str, set[str]]:
        """The segment values of a chunk that get slices of their own."""
        if self.admitted is not None:
            return self.admitted
        kept: dict[str, set[str]] = {}
        for column in self.spec.segments:
            if column in table.column_names:
                values = pc.unique(table.column(column).cast(pa.string())).drop_null()
                names = sorted(v for v in values.to_pylist() if v != OTHER_SEGMENT)
                kept[column] = set(names[:SEGMENT_VALUES_KEPT])
        return kept

    def profile(self, table: pa.Table, parts: dict[tuple, Any], counts: Counter[tuple[str, str]]) -> None:
        """Add a chunk's parts to ``parts`` and its counters to ``counts``."""
        from .engine.profiling import batch_parts, labeled_minute_parts, rollup
        from .engine.validate import validate_predictions

        spec = self.spec
        labels = table.column(LABEL) if LABEL in table.column_names else None
        order = table.column(ORDER) if ORDER in table.column_names else None
        drop = [c for c in (LABEL, LABEL_TS, ID, ORDER, REPEATED) if c in table.column_names]
        table = table.drop_columns(drop)
        clean = validate_predictions(
            table, spec, self.version, id_col=self.id, ts_col=self.timestamp, now=self.now
        )
        counts[(RECEIVED, "")] += table.num_rows
        counts.update((QUARANTINED, reason) for reason in clean.quarantine.reasons)
        batch = clean.table
        errors = clean.type_errors
        if order is not None and batch.num_rows:
            keep = first_of_each_id(batch.column("__id"), order.take(batch.column("__row")))
            if not keep.all():
                reason = f"model {spec.name!r}: duplicate id within the batch"
                counts[(QUARANTINED, reason)] += int((~keep).sum())
                batch = batch.filter(pa.array(keep))
                errors = {c: m[keep] for c, m in errors.items()}
        if labels is not None:
            kept = labels.take(batch.column("__row"))
            label_type = pa.string() if spec.task == "multiclass" else pa.float64()
            batch = batch.set_column(
                batch.schema.get_field_index("__label"), "__label", kept.cast(label_type)
            )
        minutes = batch.column("__minute").to_numpy()
        if len(minutes) and not np.all(minutes[1:] >= minutes[:-1]):  # as the engine does
            order = np.argsort(minutes, kind="stable")
            batch = batch.take(pa.array(order))
            errors = {c: m[order] for c, m in errors.items()}
        if batch.num_rows == 0:
            return
        admitted = self.segment_values(batch)
        fresh = batch_parts(batch, spec, self.version, admitted, errors)
        if labels is not None:
            labeled = batch.filter(pc.is_valid(batch.column("__label")))
            if labeled.num_rows:
                labeled = labeled.append_column(
                    "__version", pa.array([self.version] * labeled.num_rows, pa.string())
                )
                finer = labeled_minute_parts(labeled, spec, admitted)
                fresh.update(finer)
                for resolution in list(RESOLUTIONS)[1:]:
                    finer = rollup(finer, resolution)
                    fresh.update(finer)
        for key, value in fresh.items():
            short = key[1:]  # (segment, resolution, bucket, part): the version is known
            parts[short] = value if short not in parts else merge_part(key[4], parts[short], value)


def first_of_each_id(ids: Any, order: Any) -> np.ndarray:
    """Which rows are the first of their id by ``order`` (what the embedded engine keeps of
    a batch: the earliest valid row of each id; the later ones are duplicates)."""
    codes = pc.dictionary_encode(pa.chunked_array(ids).combine_chunks()).indices.to_numpy()
    rank = pa.chunked_array(order).combine_chunks().to_numpy(zero_copy_only=False)
    sorted_rows = np.lexsort((rank, codes))
    grouped = codes[sorted_rows]
    keep = np.zeros(len(codes), dtype=bool)
    keep[sorted_rows[np.r_[True, grouped[1:] != grouped[:-1]]]] = True
    return keep


def output(parts: dict[tuple, Any], counts: Counter[tuple[str, str]]) -> pa.RecordBatch:
    """A partition's parts (serialised) and counters as one record batch."""
    keys = sorted(parts, key=lambda k: (k[1], k[2], k[0], k[3]))
    segments = [k[0] for k in keys] + [reason for _kind, reason in counts]
    resolutions = [k[1] for k in keys] + [""] * len(counts)
    buckets = [int(k[2]) for k in keys] + [0] * len(counts)
    names = [k[3] for k in keys] + [kind for kind, _reason in counts]
    blobs = [encode_part(k[3], parts[k]) for k in keys] + [_count(n) for n in counts.values()]
    return pa.RecordBatch.from_arrays(
        [
            pa.array(segments, pa.string()),
            pa.array(resolutions, pa.string()),
            pa.array(buckets, pa.int64()),
            pa.array(names, pa.string()),
            pa.array(blobs, pa.binary()),
        ],
        schema=_OUTPUT_SCHEMA,
    )


def _count(n: int) -> bytes:
    return int(n).to_bytes(8, "big")


def merge_blobs(a: tuple[str, bytes], b: tuple[str, bytes]) -> tuple[str, bytes]:
    """Merge two serialised parts of the same key: ``(part, blob)`` pairs."""
    part = a[0]
    return part, encode_part(part, merge_part(part, decode_part(part, a[1]), decode_part(part, b[1])))


@dataclass(frozen=True)
class LabelChecker:
    """Validates labels with the engine's code: ``(id, label, timestamp µs, reason, count)``
    rows, one per valid label (reason and count null) and one per reason of each batch's
    rejected labels (id, label and timestamp null; count: how many)."""

    spec: ModelSpec
    id: str
    label: str
    timestamp: str | None
    now: int

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from .engine.validate import validate_feedback

        label_type = pa.string() if self.spec.task == "multiclass" else pa.float64()
        for batch in batches:
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            clean = validate_feedback(
                table, self.spec, id_col=self.id, label_col=self.label, ts_col=self.timestamp,
                now=self.now,
            )  # fmt: skip
            good = clean.table
            rejected = Counter(clean.quarantine.reasons)
            k = len(rejected)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.concat_arrays([good.column("__id").combine_chunks().cast(pa.string()),
                                      pa.nulls(k, pa.string())]),
                    pa.concat_arrays([good.column("__label").combine_chunks().cast(label_type),
                                      pa.nulls(k, label_type)]),
                    pa.concat_arrays([good.column("__ts").combine_chunks().cast(pa.int64()),
                                      pa.nulls(k, pa.int64())]),
                    pa.concat_arrays([pa.nulls(good.num_rows, pa.string()),
                                      pa.array(list(rejected), pa.string())]),
                    pa.concat_arrays([pa.nulls(good.num_rows, pa.int64()),
                                      pa.array(list(rejected.values()), pa.int64())]),
                ],  # fmt: skip
                names=[ID, LABEL, LABEL_TS, REASON, COUNT],
            )


def _shipped(task: Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]) -> Any:
    """``task`` as the function ``mapInArrow`` ships to the Python workers.

    The function is pickled by value and holds ``task`` as pickle bytes, so a worker
    unpickles it without importing mlpulse; when it runs, it imports the modules that
    profiling needs (:mod:`mlpulse.spark`, the engine's validation and profiling, the
    profiles: numpy and pyarrow) but not the package's ``__init__`` (the client, store,
    server and display modules, DuckDB, jinja2: ~0.3 s of CPU per worker). The ``mlpulse``
    package module is set up without running its ``__init__``, which runs the first time
    one of the package's own names (``mlpulse.connect``, …) is asked for in that worker."""
    state = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pickle
        import sys

        if "mlpulse" not in sys.modules:
            import importlib
            import importlib.util

            spec = importlib.util.find_spec("mlpulse")
            assert spec is not None and spec.loader is not None
            package = importlib.util.module_from_spec(spec)

            def complete(name: str) -> Any:
                if not name.startswith("__") and importlib.util.find_spec(f"mlpulse.{name}"):
                    return importlib.import_module(f"mlpulse.{name}")  # a submodule
                if name.startswith("__") and name not in ("__version__", "__all__"):
                    raise AttributeError(name)
                del package.__getattr__  # the package's own names: run its __init__ now
                spec.loader.exec_module(package)  # type: ignore[union-attr]
                return getattr(package, name)

            package.__getattr__ = complete  # type: ignore[method-assign]
            sys.modules["mlpulse"] = package
        return pickle.loads(state)(batches)

    return run


# -- the driver ------------------------------------------------------------------------------


def _columns(sdf: DataFrame) -> list[str]:
    return list(sdf.columns)


def _arrow_schema(sdf: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    try:
        return to_arrow_schema(sdf.schema, timezone="UTC")
    except TypeError:  # pragma: no cover - pyspark 3.5 takes no time zone
        return to_arrow_schema(sdf.schema)


def _check_columns(model: Any, sdf: DataFrame, what: str, needed: dict[str, str | None]) -> None:
    present = set(_columns(sdf))
    for role, column in needed.items():
        if column is not None and column not in present:
            raise ConfigError(
                f"model {model.name!r}: {what} have no {role} column {column!r}; their columns "
                f"are: {', '.join(sorted(present)) or 'none'}"
            )


def _id_type_ok(schema: pa.Schema, column: str) -> bool:
    dtype = schema.field(column).type
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_integer(dtype)


def _to_arrow(sdf: DataFrame) -> pa.Table:
    if hasattr(sdf, "toArrow"):  # pyspark >= 4
        return sdf.toArrow()
    batches = sdf._collect_as_arrow()  # type: ignore[operator]  # pragma: no cover - 3.5
    return pa.Table.from_batches(batches, schema=_OUTPUT_SCHEMA)  # pragma: no cover


def _spec_for(model: Any, sdf_schema: pa.Schema, exclude: set[str]) -> ModelSpec:
    """The model's spec with the feature columns the data adds (the store adds them too)."""
    spec: ModelSpec = model.spec
    empty = sdf_schema.empty_table()
    new = {k: v for k, v in infer_features(empty, exclude).items() if k not in spec.features}
    return spec.with_features(new) if new else spec


def _profiles(
    model: Any,
    predictions: DataFrame,
    *,
    labels: DataFrame | None,
    id: str,
    timestamp: str | None,
    label: str | None,
    label_timestamp: str | None,
    partitions: int | None,
    report: SparkReport,
    unique_ids: bool = False,
) -> pa.Table:
    """Run the Spark job; return the merged parts and counters.

    One job: the labels are checked in their partitions (valid ones keyed by id, rejected ones
    summarised by reason), the latest valid label per id is joined to the predictions, the
    summaries ride along as extra rows, rows are partitioned by event hour and profiled, and
    the partitions' profiles are collected as Arrow and merged here."""
    F = _require_spark()
    spec: ModelSpec = model.spec
    label = label or spec.label
    now = now_micros()
    _check_columns(model, predictions, "predictions", {"id": id, "timestamp": timestamp,
                                                         "prediction": spec.prediction})  # fmt: skip
    schema = _arrow_schema(predictions)
    if not _id_type_ok(schema, id):
        raise ConfigError(
            f"model {model.name!r}: predictions id column {id!r} is {schema.field(id).type}; "
            "ids must be strings or integers"
        )
    exclude = {id, spec.prediction, label, *((timestamp,) if timestamp else ())}
    spec = _spec_for(model, schema, exclude)
    if not unique_ids:
        predictions = _mark_repeats(predictions, id, F)
    rows = predictions
    if labels is not None:
        ts = label_timestamp or (timestamp if timestamp in labels.columns else None)
        if ts is None:
            raise ConfigError(
                f"model {model.name!r}: labels need a timestamp column so that the latest "
                f"label of an id wins; pass label_timestamp= (their columns: "
                f"{', '.join(sorted(labels.columns))})"
            )
        _check_columns(model, labels, "labels", {"id": id, "label": label, "timestamp": ts})
        if not _id_type_ok(_arrow_schema(labels), id):
            raise ConfigError(f"model {model.name!r}: labels id column {id!r} must hold strings "
                              "or integers")  # fmt: skip
        label_type = "string" if spec.task == "multiclass" else "double"
        checked = labels.select(id, label, ts).mapInArrow(
            _shipped(LabelChecker(spec, id, label, ts, now)),
            f"{ID} string, {LABEL} {label_type}, {LABEL_TS} long, {REASON} string, {COUNT} long",
        )
        # valid labels: the latest per id (its count is null); rejected: one row per reason,
        # carried to the profilers as extra rows (no job of their own). The label check runs
        # in both branches of the plan; it costs ~0.5 µs a label, less than caching them.
        grouped = checked.groupBy(ID, REASON).agg(
            F.max_by(F.col(LABEL), F.struct(F.col(LABEL_TS), F.col(LABEL))).alias(LABEL),
            F.sum(COUNT).alias(COUNT),
        )
        latest = grouped.where(F.col(COUNT).isNull()).select(ID, LABEL)
        rejected = grouped.where(F.col(COUNT).isNotNull()).select(REASON, COUNT)
        rows = (
            predictions.withColumn(ID, F.col(id).cast("string"))
            .join(latest, on=ID, how="left")
            .unionByName(rejected, allowMissingColumns=True)
        )
    else:
        if label in predictions.columns:  # labels inline (an already joined table or stream)
            rows = predictions.withColumn(LABEL, F.col(label))
    if timestamp is not None or REPEATED in rows.columns:
        rows = _by_hour(rows, id, timestamp, partitions, F)
    profiler = Profiler(spec, model.version, None, id, timestamp, now)
    if LABEL in rows.columns and labels is None:
        profiler = _InlineLabels(spec, model.version, None, id, timestamp, now, label=label)
    return merge_parts(_to_arrow(rows.mapInArrow(_shipped(profiler), _schema_ddl())))


def mark_repeats(table: pa.Table, id: str) -> pa.Table:
    """An Arrow table of predictions as :func:`_mark_repeats` marks a DataFrame (the input
    order is the table's)."""
    if id not in table.column_names or not table.num_rows:
        return table
    counts = pc.value_counts(table.column(id).drop_null())
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if not len(repeated):
        return table
    table = table.append_column(ORDER, pa.array(np.arange(table.num_rows), pa.int64()))
    return table.append_column(REPEATED, pc.is_in(table.column(id), value_set=repeated))


def _mark_repeats(predictions: DataFrame, id: str, F: Any) -> DataFrame:
    """``predictions`` as they are when every id is unique (the usual case; finding out is
    a small job over the id column); otherwise with each row's place in the input
    (:data:`ORDER`) and :data:`REPEATED` true on the rows whose id repeats: the profilers
    keep the first valid row of each id, as the embedded engine does within a batch."""
    dups = predictions.where(F.col(id).isNotNull()).groupBy(id).count().where(F.col("count") > 1)
    if dups.isEmpty():
        return predictions
    marks = dups.select(F.col(id), F.lit(True).alias(REPEATED))
    return predictions.withColumn(ORDER, F.monotonically_increasing_id()).join(
        marks, on=id, how="left"
    )


def merge_parts(table: pa.Table) -> pa.Table:
    """One row per key of profiles tables' rows (``segment, resolution, bucket, part,
    blob``): parts of the same key merged with the profiles' own merge, counters summed."""
    keys = list(zip(*(table.column(c).to_pylist() for c in _OUTPUT_SCHEMA.names[:4]), strict=True))
    first: dict[tuple, int] = {}
    repeated: dict[tuple, list[int]] = {}
    for row, key in enumerate(keys):
        if key in first:
            repeated.setdefault(key, [first[key]]).append(row)
        else:
            first[key] = row
    if not repeated:
        return table
    single = [row for key, row in first.items() if key not in repeated]
    blobs = table.column("blob")
    merged: list[bytes] = []
    for (_segment, _resolution, _bucket, part), rows in repeated.items():
        if part in COUNTERS:
            merged.append(_count(sum(int.from_bytes(blobs[r].as_py(), "big") for r in rows)))
            continue
        value = decode_part(part, blobs[rows[0]].as_py())
        for r in rows[1:]:
            value = merge_part(part, value, decode_part(part, blobs[r].as_py()))
        merged.append(encode_part(part, value))
    extra = pa.table(
        {
            name: pa.array([k[i] for k in repeated], _OUTPUT_SCHEMA.field(name).type)
            for i, name in enumerate(_OUTPUT_SCHEMA.names[:4])
        }
        | {"blob": pa.array(merged, pa.binary())}
    )
    return pa.concat_tables([table.take(pa.array(single, pa.int64())), extra])


def _schema_ddl() -> str:
    return "segment string, resolution string, bucket long, part string, blob binary"


def _by_hour(
    rows: DataFrame, id: str, timestamp: str | None, partitions: int | None, F: Any
) -> DataFrame:
    """Rows hash-partitioned by their event hour and sorted by it (then the timestamp)
    within each partition, so that each partition holds whole hours, a bucket's profile
    comes from one partition, a partition's chunks hold consecutive hours (only their day
    parts and the boundary hour's parts merge) and arrive in time order (no re-sort in
    Python). Only an optimisation: the merges make any partitioning correct. Rows whose id
    repeats (:data:`REPEATED`) are partitioned by id instead: all rows of an id meet in
    one partition, which keeps the first."""
    n = max(int(partitions or rows.sparkSession.sparkContext.defaultParallelism), 1)
    if timestamp is None:
        hour = column = F.col(ORDER)  # no event time: spread the rows
    else:
        dtype = dict(rows.dtypes)[timestamp]
        column = F.col(timestamp)
        if dtype.startswith("timestamp"):
            hour = F.floor(F.unix_micros(column.cast("timestamp")) / 3_600_000_000)
        elif dtype in ("string",):
            hour = F.substring(column, 1, 13)
        elif dtype == "date":
            hour = column
        else:  # numbers: seconds since the epoch
            hour = F.floor(column.cast("double") / 3600)
    key = hour
    if REPEATED in rows.columns:
        key = F.when(F.col(REPEATED), F.concat(F.lit("id "), F.col(id).cast("string"))).otherwise(
            F.concat(F.lit("hour "), hour.cast("string"))
        )
    return rows.repartition(n, key).sortWithinPartitions(hour, column)


@dataclass(frozen=True)
class _InlineLabels(Profiler):
    """A profiler for rows that carry their label in a column (validated per chunk)."""

    label: str = "label"

    def profile(self, table: pa.Table, parts: dict[tuple, Any], counts: Counter[tuple[str, str]]) -> None:
        from .engine.validate import validate_feedback

        source = table.column(LABEL)
        present = pc.is_valid(source)
        label_type = pa.string() if self.spec.task == "multiclass" else pa.float64()
        labels = pa.nulls(table.num_rows, label_type)
        if pc.any(present).as_py():
            rows = np.flatnonzero(present.to_numpy(zero_copy_only=False))
            sub = pa.table({self.id: table.column(self.id).take(pa.array(rows)),
                            self.label: source.take(pa.array(rows))})  # fmt: skip
            clean = validate_feedback(
                sub, self.spec, id_col=self.id, label_col=self.label, ts_col=None, now=self.now
            )
            counts.update((LABELS_QUARANTINED, reason) for reason in clean.quarantine.reasons)
            good = rows[clean.table.column("__row").to_numpy()]
            # each row's valid label by one take (null where none): no Python objects per row
            where = np.full(table.num_rows, -1, dtype=np.int64)
            where[good] = np.arange(len(good), dtype=np.int64)
            labels = clean.table.column("__label").cast(label_type).take(
                pa.array(where, mask=where < 0)
            )
        super().profile(table.set_column(table.schema.get_field_index(LABEL), LABEL, labels),
                        parts, counts)  # fmt: skip


def _send(model: Any, table: pa.Table, replace: bool, batch_id: str | None, report: SparkReport,
          max_bytes: int = REQUEST_BYTES) -> None:  # fmt: skip
    """Send the parts in requests of whole buckets, each at most ``max_bytes`` (but one
    bucket, whatever its size)."""
    if table.num_rows == 0:
        return
    table = table.sort_by([("resolution", "ascending"), ("bucket", "ascending"),
                           ("segment", "ascending"), ("part", "ascending")])  # fmt: skip
    res = table.column("resolution").to_pylist()
    bkt = table.column("bucket").to_pylist()
    sizes = pc.binary_length(table.column("blob")).to_numpy(zero_copy_only=False)
    starts = [0]
    size = 0
    for i in range(table.num_rows):
        if i and (res[i], bkt[i]) != (res[i - 1], bkt[i - 1]) and size + sizes[i] > max_bytes:
            starts.append(i)
            size = 0
        size += int(sizes[i]) + 64
    starts.append(table.num_rows)
    for number, (lo, hi) in enumerate(zip(starts, starts[1:], strict=False)):
        chunk = table.slice(lo, hi - lo)
        key = None if batch_id is None else f"{batch_id}#{number}"
        answer = model.put_profiles(chunk, replace=replace, batch_id=key)
        report.requests += 1
        report.bytes_sent += int(chunk.nbytes)
        report.parts += int(answer["parts"])
        report.buckets += int(answer["buckets"])
        report.replaced += int(answer["replaced"])
        report.duplicate = report.duplicate or bool(answer["duplicate"])


def _run(model: Any, predictions: DataFrame, *, replace: bool, batch_id: str | None,
         **options: Any) -> SparkReport:  # fmt: skip
    report = SparkReport()
    started = time.perf_counter()
    table = _profiles(model, predictions, report=report, **options)
    report.job_seconds = time.perf_counter() - started
    counters = pc.is_in(table.column("part"), pa.array(COUNTERS))
    for reason, part, blob in zip(
        *(table.filter(counters).column(c).to_pylist() for c in ("segment", "part", "blob")),
        strict=True,
    ):
        n = int.from_bytes(blob, "big")
        if part == RECEIVED:
            report.received += n
            continue
        report.reasons[reason] = report.reasons.get(reason, 0) + n
        if part == QUARANTINED:
            report.quarantined += n
        else:
            report.labels_quarantined += n
    parts = table.filter(pc.invert(counters))
    _count_rows(parts, report)
    started = time.perf_counter()
    _send(model, parts, replace, batch_id, report)
    report.send_seconds = time.perf_counter() - started
    return report


def _count_rows(parts: pa.Table, report: SparkReport) -> None:
    """Stored and labeled rows from the all-rows minute parts."""
    mask = pc.and_(pc.equal(parts.column("segment"), ""), pc.equal(parts.column("resolution"), "minute"))
    finest = parts.filter(mask)
    for part, blob in zip(finest.column("part").to_pylist(), finest.column("blob").to_pylist(),
                          strict=True):  # fmt: skip
        if part == CORE:
            report.stored += decode_part(CORE, blob).n
        elif part == LABELED:
            report.labeled += int(getattr(decode_part(LABELED, blob), "n", 0))


# -- public API --------------------------------------------------------------------------------


def profile_arrow(
    model: Any,
    table: Any,
    *,
    id: str = "id",
    timestamp: str | None = "timestamp",
    label: str | None = None,
) -> pa.Table:
    """The profiles import (``segment, resolution, bucket, part, blob``) of a pandas, polars
    or Arrow table of predictions, computed in this process by the code :func:`profile` runs
    in each Spark partition (no Spark needed): for another engine's workers (Dask, Ray), or
    to check a job. A ``label`` column (default: the model's) is each row's label. Send it
    with ``model.put_profiles(table)``; the profiles of several tables merge into one import
    with :func:`merge_parts` (``merge_parts(pa.concat_tables(imports))``). Of rows that
    share an id, the first valid one is profiled and the later ones are duplicates (as in
    one ``log_batch``), within this table."""
    from .schema import to_arrow

    spec: ModelSpec = model.spec
    arrow = to_arrow(table, what=f"model {model.name!r}: profile_arrow table")
    label = label or spec.label
    exclude = {id, spec.prediction, label, *((timestamp,) if timestamp else ())}
    spec = _spec_for(model, arrow.schema, exclude)
    arrow = mark_repeats(arrow, id)
    now = now_micros()
    profiler: Profiler = Profiler(spec, model.version, None, id, timestamp, now)
    if label in arrow.column_names:
        arrow = arrow.append_column(LABEL, arrow.column(label))
        profiler = _InlineLabels(spec, model.version, None, id, timestamp, now, label=label)
    out = pa.Table.from_batches(list(profiler(arrow.to_batches())), schema=_OUTPUT_SCHEMA)
    return out.filter(pc.invert(pc.is_in(out.column("part"), pa.array(COUNTERS))))



def profile(
    model: Any,
    predictions: DataFrame,
    *,
    labels: DataFrame | None = None,
    id: str = "id",
    timestamp: str | None = "timestamp",
    label: str | None = None,
    label_timestamp: str | None = None,
    partitions: int | None = None,
    unique_ids: bool = False,
) -> SparkReport:
    """Profile a Spark DataFrame of predictions (and labels) into ``model``'s store.

    ``predictions`` holds the id, the event time ``timestamp``, the model's prediction
    column, features and optionally ``latency_ms``; ``labels`` holds the id, the ``label``
    column (default: the model's) and a timestamp (``label_timestamp``, default the column
    named ``timestamp``): the latest valid label of each id wins. Without ``labels``, a
    ``label`` column in ``predictions`` is taken as each row's label. Every bucket the rows
    fall in (minute, 10 minutes, hour, day; every segment and part) is *replaced* by what
    this run computes, so give a run whole days (or whole hours) of data.

    Of prediction rows that share an id, the first valid one (in the DataFrame's order) is
    profiled and the later ones are quarantined as duplicates, as one ``log_batch`` does;
    finding repeated ids is a small job of its own over the id column (~5 % of a run):
    ``unique_ids=True`` skips it where the ids are known to be unique (a primary key), and
    repeated ids would then be profiled as separate rows.
    """
    _require_spark()
    return _run(model, predictions, replace=True, batch_id=None, labels=labels, id=id,
                timestamp=timestamp, label=label, label_timestamp=label_timestamp,
                partitions=partitions, unique_ids=unique_ids)  # fmt: skip


def sink(
    model: Any,
    *,
    id: str = "id",
    timestamp: str | None = "timestamp",
    label: str | None = None,
    name: str | None = None,
    partitions: int | None = None,
    unique_ids: bool = False,
) -> Callable[[DataFrame, int], SparkReport]:
    """A ``foreachBatch`` function for Structured Streaming: each micro-batch's profiles are
    merged into the stored buckets, once per micro-batch (``name`` + the batch id is the
    idempotency key: give each streaming query writing to this model version its own
    ``name``; the default is the model and version). Repeated ids are found within each
    micro-batch (see :func:`profile`; ``unique_ids=True`` skips that)."""
    key = name or f"mlspark:{model.name}:{model.version}"

    def write(batch: DataFrame, epoch_id: int) -> SparkReport:
        return _run(model, batch, replace=False, batch_id=f"{key}:{int(epoch_id)}",
                    labels=None, id=id, timestamp=timestamp, label=label,
                    label_timestamp=None, partitions=partitions,
                    unique_ids=unique_ids)  # fmt: skip

    return write


def stream(
    model: Any,
    predictions: DataFrame,
    *,
    checkpoint: str,
    id: str = "id",
    timestamp: str | None = "timestamp",
    label: str | None = None,
    name: str | None = None,
    trigger: dict[str, Any] | None = None,
    unique_ids: bool = False,
) -> Any:
    """Start a streaming query that profiles ``predictions`` (a streaming DataFrame) into
    ``model`` with :func:`sink`; returns the ``StreamingQuery``."""
    _require_spark()
    write: Any = sink(model, id=id, timestamp=timestamp, label=label, name=name,
                      unique_ids=unique_ids)  # fmt: skip
    writer = predictions.writeStream.foreachBatch(write).option("checkpointLocation", checkpoint)
    if trigger:
        writer = writer.trigger(**trigger)
    return writer.start()


__all__ = [
    "Profiler", "SparkReport", "merge_blobs", "merge_parts", "profile", "profile_arrow", "sink",
    "stream",
]
