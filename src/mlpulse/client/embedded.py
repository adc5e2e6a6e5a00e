"""The embedded client: ``Pulse`` owns a store in this process; ``Model`` is the logging and
query handle of one model version."""

from __future__ import annotations

import atexit
import logging
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .._time import to_micros
from ..engine.ingest import Engine, IngestReport
from ..engine.profiling import reference_features
from ..engine.query import compute_metrics, compute_summary
from ..errors import ConfigError, SchemaError, StoreError, UnknownModelError
from ..schema import (
    ModelSpec,
    check_column_name,
    check_distinct,
    check_feature_count,
    infer_features,
    shown,
    to_arrow,
)
from ..store import profiles as profile_store
from ..store.database import Store, quote, registered
from ..store.registry import reference_table
from .batcher import Batcher

log = logging.getLogger("mlpulse")

_ID, _TS = "__log_id", "__log_ts"


@dataclass
class Observation:
    """What ``Model.observe`` records; set ``prediction`` inside the block."""

    id: Any
    features: dict[str, Any]
    prediction: Any = None
    timestamp: Any = None
    trace_id: str | None = None
    latency_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Pulse:
    """An mlpulse store opened in this process (see :func:`mlpulse.connect`)."""

    def __init__(self, path: str = ":memory:", *, max_features: int | None = None) -> None:
        if max_features is not None and (
            not isinstance(max_features, int) or isinstance(max_features, bool) or max_features < 1
        ):
            raise ConfigError(f"max_features must be a positive integer, got {max_features!r}")
        self.path = path
        self.store = Store.open(path)
        self.engine = Engine(self.store)
        # feature columns per model (default $MLPULSE_MAX_FEATURES or 1,000)
        self.engine.registry.max_features = max_features
        self._models: dict[tuple[str, str], Model] = {}
        self._batcher = Batcher(self._deliver, self._failed)
        self._closed = False
        ref = weakref.ref(self)

        def _close_at_exit() -> None:
            p = ref()
            if p is not None:
                p.close()

        atexit.register(_close_at_exit)

    # -- registry -----------------------------------------------------------------------

    def model(
        self,
        name: str,
        version: str | None = None,
        *,
        task: str | None = None,
        reference: Any = None,
        prediction: str | None = None,
        label: str | None = None,
        features: Sequence[str] | None = None,
        threshold: float | None = None,
        classes: Sequence[Any] | None = None,
        segments: Sequence[str] | None = None,
    ) -> Model:
        """Register a model version (first call) or return the registered one.

        With only a name (and version), the stored model is returned; a call that
        contradicts what is stored (another task, say) raises ``ModelConflictError``.
        """
        self._check_open()
        registry = self.engine.registry
        try:
            stored: ModelSpec | None = registry.get(name)
        except UnknownModelError:
            stored = None
        if stored is None and task is None:
            raise UnknownModelError(
                f"unknown model {name!r}: pass task='binary'|'multiclass'|'regression' to register it"
            )
        ref_table = (
            to_arrow(reference, what=f"model {name!r}: reference")
            if reference is not None
            else None
        )
        prediction = prediction or (stored.prediction if stored else "prediction")
        label = label or (stored.label if stored else "label")
        if ref_table is not None:
            self._check_reference(name, ref_table, stored, prediction, label)
        if features is not None:
            if isinstance(features, str):
                raise ConfigError(f"model {name!r}: features must be a list of column names")
            if ref_table is not None:
                missing = [c for c in features if c not in ref_table.column_names]
                if missing:
                    raise SchemaError(
                        f"model {name!r}: features {missing} are not columns of the reference"
                    )
                kinds = {
                    k: v
                    for k, v in infer_features(ref_table, {prediction, label}).items()
                    if k in features
                }
            else:
                kinds = {
                    c: (stored.features.get(c, "numeric") if stored else "numeric")
                    for c in features
                }
        elif ref_table is not None:
            kinds = infer_features(ref_table, {prediction, label})
        else:
            kinds = {}
        spec = ModelSpec(
            name=name,
            task=task or (stored.task if stored else "binary"),
            prediction=prediction,
            label=label,
            threshold=float(threshold)
            if threshold is not None
            else (stored.threshold if stored else 0.5),
            classes=tuple(str(c) for c in classes)
            if classes is not None
            else (stored.classes if stored else None),
            segments=tuple(segments)
            if segments is not None
            else (stored.segments if stored else ()),
            features=kinds,
        )
        spec = registry.register(spec)
        if version is None:
            versions = registry.versions(spec)
            version = versions[-1] if versions else "v1"
        version = str(version)
        registry.ensure_version(spec, version)
        if ref_table is not None:
            self._store_reference(spec, version, ref_table)
        key = (name, version)
        if key not in self._models:
            self._models[key] = Model(self, name, version)
        return self._models[key]

    def models(self) -> list[str]:
        """Names of the registered models."""
        return self.engine.registry.names()

    def _check_reference(
        self, name: str, table: pa.Table, stored: ModelSpec | None, prediction: str, label: str
    ) -> None:
        """Reference columns become columns of the reference table (and features): check
        their names before anything is stored (raises SchemaError naming the column)."""
        columns = table.column_names
        for column in columns:
            check_column_name(name, column, "reference column")
            if column.startswith("__"):
                raise SchemaError(
                    f"model {name!r}: reference column {shown(column)}: names starting with "
                    "'__' are reserved for mlpulse's own columns"
                )
        known = [prediction, label]
        if stored is not None:
            known += [*stored.segments, *stored.features]
            known += self.store.table_columns(reference_table(stored))
        check_distinct(name, columns, known, what="reference column")
        others = [c for c in columns if c not in (prediction, label)]
        check_feature_count(name, len(others), self.engine.registry.feature_limit())

    def _store_reference(self, spec: ModelSpec, version: str, table: pa.Table) -> None:
        spec = self.engine.registry.get(spec.name)
        states = reference_features(table, spec)
        name = reference_table(spec)
        try:
            # The table is created (or widened) in a transaction of its own: DuckDB 2.0
            # loses the rows of a bulk INSERT into a table made by CREATE TABLE AS ... LIMIT 0
            # in the same transaction (count(*) sees them, scans do not).
            with self.store.write() as conn, registered(conn, "__ref", table):
                have = [
                    r[0]
                    for r in conn.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                        [name],
                    ).fetchall()
                ]
                if not have:
                    conn.execute(
                        f"CREATE TABLE {name} AS SELECT ?::VARCHAR AS __version, * FROM __ref LIMIT 0",
                        [version],
                    )
                else:
                    new = [c for c in table.column_names if c not in have]
                    check_distinct(spec.name, new, have, what="reference column")
                    for column in new:
                        kind = "DOUBLE" if spec.features.get(column) == "numeric" else "VARCHAR"
                        conn.execute(f"ALTER TABLE {name} ADD COLUMN {quote(column)} {kind}")
            with self.store.write() as conn:
                with registered(conn, "__ref", table):
                    conn.execute(f"DELETE FROM {name} WHERE __version = ?", [version])
                    conn.execute(
                        f"INSERT INTO {name} BY NAME SELECT ?::VARCHAR AS __version, * FROM __ref",
                        [version],
                    )
                profile_store.save(
                    conn,
                    spec.model_id,
                    {(version, "", "reference", 0, "features"): states},
                    self.store.blobs,
                )
        except duckdb.Error as exc:
            raise _reference_error(spec.name, version, exc) from exc

    # -- delivery -----------------------------------------------------------------------

    def _deliver(self, key: tuple[Any, ...], table: pa.Table) -> None:
        kind, name, version = key
        spec = self.engine.registry.get(name)
        if kind == "prediction":
            self.engine.ingest_predictions(spec, version, table, id_col=_ID, ts_col=_TS)
        else:
            self.engine.ingest_feedback(
                spec, table, id_col=_ID, label_col="__log_label", ts_col=_TS
            )

    def _failed(self, key: tuple[Any, ...], rows: Any, exc: BaseException) -> None:
        """A background batch could not be ingested: quarantine every row with the reason."""
        kind, name, version = key
        table = rows if isinstance(rows, pa.Table) else None
        n = table.num_rows if table is not None else len(rows)
        log.error("mlpulse: model %r: %d %s rows could not be stored: %s", name, n, kind, exc)
        from ..engine.validate import Quarantine, payloads

        ids: list[str | None]
        if table is None:
            import json

            lines = [json.dumps(r, default=str) for r in rows]
            ids = [str(r.get(_ID)) for r in rows]
        else:
            lines = payloads(table, np.arange(n))
            ids = (
                [None if v is None else str(v) for v in table.column(_ID).to_pylist()]
                if _ID in table.column_names
                else [None] * n
            )
        spec = self.engine.registry.get(name)
        q = Quarantine(np.arange(n), ids, [f"model {name!r}: {exc}"] * n, lines)
        with self.store.write() as conn:
            self.engine._quarantine(conn, spec, version if kind == "prediction" else None, kind, q)

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything logged so far is stored; False if ``timeout`` ran out."""
        return self._batcher.flush(timeout)

    @property
    def dropped(self) -> int:
        """Rows dropped because the background queue was full."""
        return self._batcher.dropped

    def close(self) -> None:
        """Flush pending rows and close the store; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._batcher.close()
        self.store.release()

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"this mlpulse connection to {self.path!r} is closed")

    def __enter__(self) -> Pulse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pulse({self.path!r})"


class Model:
    """Logging and query handle for one model version."""

    def __init__(self, pulse: Pulse, name: str, version: str) -> None:
        self._pulse = pulse
        self.name = name
        self.version = version
        self._key_prediction = ("prediction", name, version)
        self._key_feedback = ("feedback", name, version)
        self._prediction_col = pulse.engine.registry.get(name).prediction

    @property
    def spec(self) -> ModelSpec:
        """The model's current specification (its feature schema grows with new columns)."""
        return self._pulse.engine.registry.get(self.name)

    # -- logging ------------------------------------------------------------------------

    def log(
        self,
        id: Any,
        features: dict[str, Any] | None = None,
        prediction: Any = None,
        timestamp: Any = None,
        latency_ms: float | None = None,
        trace_id: str | None = None,
    ) -> None:
        """Queue one prediction; returns at once. Bad rows end up in the quarantine."""
        try:
            row = dict(features) if features else {}
            row[_ID] = id
            row[_TS] = time.time() if timestamp is None else _epoch_seconds(timestamp)
            row[self._prediction_col] = prediction
            if latency_ms is not None:
                row["latency_ms"] = latency_ms
            if trace_id is not None:
                row["trace_id"] = trace_id
            self._pulse._batcher.put(self._key_prediction, row)
        except Exception:  # the caller's service must never crash because of logging
            log.exception("mlpulse: model %r: could not queue a prediction", self.name)

    def log_feedback(self, id: Any, label: Any, timestamp: Any = None) -> None:
        """Queue the ground truth for a logged (or future) prediction; returns at once."""
        try:
            row = {
                _ID: id,
                "__log_label": label,
                _TS: time.time() if timestamp is None else _epoch_seconds(timestamp),
            }
            self._pulse._batcher.put(self._key_feedback, row)
        except Exception:
            log.exception("mlpulse: model %r: could not queue feedback", self.name)

    @contextmanager
    def observe(
        self, id: Any, features: dict[str, Any] | None = None, timestamp: Any = None
    ) -> Iterator[Observation]:
        """Time a block that sets ``obs.prediction``; logs it with its latency and trace id."""
        obs = Observation(
            id=id, features=dict(features or {}), timestamp=timestamp, trace_id=_current_trace_id()
        )
        started = time.perf_counter()
        yield obs
        obs.latency_ms = (time.perf_counter() - started) * 1000.0
        self.log(
            obs.id,
            obs.features,
            obs.prediction,
            timestamp=obs.timestamp,
            latency_ms=obs.latency_ms,
            trace_id=obs.trace_id,
        )

    def log_batch(self, table: Any, id: str = "id", timestamp: str | None = None) -> IngestReport:
        """Store many predictions now; returns ``received``, ``stored`` and ``quarantined``.

        The table's columns are the features, the prediction column and optionally
        ``latency_ms`` and ``trace_id``. ``timestamp`` names the event-time column (default:
        a ``timestamp`` column if present, else now).
        """
        arrow = to_arrow(table, what=f"model {self.name!r}: log_batch table")
        if timestamp is None and "timestamp" in arrow.column_names:
            timestamp = "timestamp"
        return self._pulse.engine.ingest_predictions(
            self.spec, self.version, arrow, id_col=id, ts_col=timestamp
        )

    def log_feedback_batch(
        self, table: Any, id: str = "id", label: str | None = None, timestamp: str | None = None
    ) -> IngestReport:
        """Store many labels now; each replaces any earlier label for its id."""
        spec = self.spec
        return self._pulse.engine.ingest_feedback(
            spec, table, id_col=id, label_col=label or spec.label, ts_col=timestamp
        )

    # -- queries ------------------------------------------------------------------------

    def _versions(self, version: str | None) -> list[str]:
        if version is None:
            return [self.version]
        if version in ("*", "all"):
            return self._pulse.engine.registry.versions(self.spec)
        self._pulse.engine.registry.require_version(self.spec, version)
        return [version]

    def metrics(
        self,
        metrics: Sequence[str] | str | None = None,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        version: str | None = None,
    ) -> pd.DataFrame:
        """One row per window: window_start, window_end, n, n_labeled and each metric.

        ``version=None`` is this handle's version; ``"*"`` merges all versions.
        """
        return compute_metrics(
            self._pulse.store,
            self._pulse.engine.registry,
            self.spec,
            metrics,
            start=start,
            end=end,
            step=step,
            segment=segment,
            versions=self._versions(version),
        )

    def summary(
        self,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        version: str | None = None,
    ) -> pd.DataFrame:
        """Per window and feature: count, missing, mean, std, min, p50, max, distinct, top."""
        return compute_summary(
            self._pulse.store,
            self._pulse.engine.registry,
            self.spec,
            start=start,
            end=end,
            step=step,
            segment=segment,
            versions=self._versions(version),
        )

    def quarantined(self, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Quarantined rows (received in [start, end)) with their ``reason``."""
        lo = to_micros(start) if start is not None else None
        hi = to_micros(end) if end is not None else None
        frame = self._pulse.engine.quarantined(self.spec, lo, hi)
        return frame[frame["version"].isna() | (frame["version"] == self.version)].reset_index(
            drop=True
        )

    def versions(self) -> list[str]:
        return self._pulse.engine.registry.versions(self.spec)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, version={self.version!r})"

    # -- drift, quality, estimation, monitors (mlpulse.drift / quality / estimation / monitors)

    def drift(
        self,
        start: Any = "-24h",
        end: Any = "now",
        against: Any = "reference",
        method: Any = "auto",
        mode: str = "sketch",
        segment: Any = None,
        *,
        thresholds: dict[str, float] | None = None,
        correction: str | None = "bh",
        drift_share: float = 0.0,
        columns: Sequence[str] | None = None,
        step: Any = None,
        fallback: bool = True,
        multivariate: bool | Sequence[str] = False,
        sample_size: int = 5000,
        version: str | None = None,
    ):
        """Drift of the window ``[start, end)`` against a baseline, per column and overall.

        ``against``: ``"reference"``, a version name, or ``{"start": ..., "end": ...}``.
        ``method``: ``"auto"``, a method name, or a dict column -> name; ``thresholds``: a
        dict keyed by method or column name. Returns a :class:`mlpulse.drift.DriftReport`
        (``.dataset_drift``, ``.to_pandas()``). See ``docs/drift.md``.
        """
        from ..drift.compute import compute_drift

        return compute_drift(
            self._pulse.store,
            self._pulse.engine.registry,
            self.spec,
            version=self.version,
            versions=self._versions(version),
            start=start,
            end=end,
            against=against,
            method=method,
            mode=mode,
            segment=segment,
            thresholds=thresholds,
            correction=correction,
            drift_share=drift_share,
            columns=list(columns) if columns is not None else None,
            step=step,
            fallback=fallback,
            multivariate=multivariate if isinstance(multivariate, bool) else list(multivariate),
            sample_size=sample_size,
        )

    def quality(
        self,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        *,
        constraints: Any = None,
        infer: bool = True,
        mode: str = "sketch",
        version: str | None = None,
    ):
        """Constraint violations in ``[start, end)`` (per window with ``step``).

        Constraints: inferred from the reference (``infer=True``), those stored with
        :meth:`set_constraints`, and ``constraints`` (YAML path or text, or a list).
        Returns a :class:`mlpulse.quality.check.QualityReport`; ``.to_pandas()`` has the
        columns column, rule, violations, rows, rate. See ``docs/quality.md``.
        """
        from ..quality.check import QualityReport, compute_quality

        return QualityReport(
            compute_quality(
                self._pulse.store,
                self._pulse.engine.registry,
                self.spec,
                version=self.version,
                versions=self._versions(version),
                start=start,
                end=end,
                step=step,
                segment=segment,
                mode=mode,
                constraints=constraints,
                stored=self.constraints(),
                infer_rules=infer,
            )
        )

    def set_constraints(self, constraints: Any, replace: bool = False) -> None:
        """Store user constraints (YAML path or text, dicts or ``Constraint`` objects)."""
        import json as _json
        from datetime import UTC, datetime

        from ..quality.constraints import parse_constraints

        parsed = parse_constraints(constraints)
        spec = self.spec
        with self._pulse.store.write() as conn:
            if replace:
                conn.execute("DELETE FROM quality_constraints WHERE model_id = ?", [spec.model_id])
            for c in parsed:
                conn.execute(
                    "DELETE FROM quality_constraints WHERE model_id = ? AND col = ? AND rule = ?",
                    [spec.model_id, c.column, c.rule],
                )
                conn.execute(
                    "INSERT INTO quality_constraints VALUES (?, ?, ?, ?, ?)",
                    [
                        spec.model_id,
                        c.column,
                        c.rule,
                        _json.dumps(c.params),
                        datetime.now(UTC).replace(tzinfo=None),
                    ],
                )

    def constraints(self) -> list:
        """The user constraints stored for this model."""
        import json as _json

        from ..quality.constraints import Constraint

        rows = self._pulse.store.fetch_all(
            "SELECT col, rule, params FROM quality_constraints WHERE model_id = ? "
            "ORDER BY created_at, col, rule",
            [self.spec.model_id],
        )
        return [Constraint(c, r, _json.loads(p)) for c, r, p in rows]

    def estimate(
        self,
        metrics: Sequence[str] | str | None = None,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        *,
        band: bool = False,
        mode: str = "sketch",
        version: str | None = None,
    ) -> pd.DataFrame:
        """Label-free estimates (CBPE) of accuracy, precision, recall, f1, roc_auc per window:
        the same frame as :meth:`metrics`; ``band=True`` adds ``<metric>_lower``/``_upper``
        (also in ``frame.attrs["band"]``). See ``docs/estimation.md``."""
        from ..estimation.compute import compute_estimate

        return compute_estimate(
            self._pulse.store,
            self._pulse.engine.registry,
            self.spec,
            metrics,
            version=self.version,
            versions=self._versions(version),
            start=start,
            end=end,
            step=step,
            segment=segment,
            mode=mode,
            band=band,
        )

    def log_training_features(self, table: Any, id: str = "id") -> int:
        """Store the features the model was trained on, keyed by ``id``, for the
        training/serving skew monitor; returns the number of rows stored."""
        from ..monitors.training import log_training_features

        return log_training_features(self._pulse.store, self.spec, table, id)

    def skew(self, tolerance: float = 1e-9) -> pd.DataFrame:
        """Training/serving skew per feature over ids seen in both: column, ids, mismatches,
        rate."""
        from ..monitors.training import skew

        return skew(self._pulse.store, self.spec, [self.version], tolerance=tolerance)

    def set_training_info(self, trained_at: Any = None, max_age: Any = None) -> None:
        """Record when this version was trained and how old it may get (``"30d"``)."""
        from ..monitors.training import set_training_info

        set_training_info(self._pulse.store, self.spec, self.version, trained_at, max_age)

    def log_resource_usage(self, memory_mb: float, timestamp: Any = None) -> None:
        """Record a memory sample (MB) of the serving process for this version."""
        from ..monitors.training import log_resource_usage

        log_resource_usage(self._pulse.store, self.spec, self.version, memory_mb, timestamp)

    def checks(self, start: Any = "-24h", end: Any = "now", **options: Any):
        """Run the seven ML Test Score monitors; returns a
        :class:`mlpulse.monitors.MonitorReport` (``.ok``, ``.to_pandas()``). Options:
        ``against``, ``monitors``, ``skew_tolerance``, ``regression``, ``quality_drop``,
        ``now``. See ``docs/monitors.md``."""
        from ..monitors.checks import run_checks

        return run_checks(self, start, end, **options)


def _reference_error(model: str, version: str, exc: duckdb.Error) -> Exception:
    """An mlpulse error for a failed reference upload: the store's own failures (I/O,
    memory) are StoreErrors; the rest come from the data (a column whose values do not
    fit the type stored earlier, say)."""
    if isinstance(
        exc,
        duckdb.IOException | duckdb.OutOfMemoryException | duckdb.FatalException,
    ):
        return StoreError(
            f"model {model!r}: the reference of version {version!r} could not be stored: {exc}"
        )
    return SchemaError(
        f"model {model!r}: the reference of version {version!r} does not fit the stored "
        f"reference data: {exc}"
    )


def _epoch_seconds(timestamp: Any) -> Any:
    """Seconds since the epoch for any accepted timestamp, so one background batch holds one
    type; a value that cannot be read is passed on as text and quarantined as malformed."""
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        return timestamp
    try:
        return to_micros(timestamp) / 1e6
    except Exception:
        return str(timestamp)


def _current_trace_id() -> str | None:
    """The active OpenTelemetry trace id, when opentelemetry is installed and a span is active."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
