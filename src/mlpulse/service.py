"""The application service: every operation a user or the server can ask of a store.

``Service`` is the one place where a request becomes work: registration is resolved here
(once), batches are validated and stored through the :class:`~mlpulse.engine.ingest.Engine`,
and queries get a :class:`~mlpulse.engine.scope.Scope` and run the analyses. The embedded
client calls it in-process; the server's routes parse a request, call it and serialise the
answer; the HTTP client rebuilds the same results. Methods take the model's name (and the
handle's version) so that both sides call them with the same arguments.

>>> import pandas as pd
>>> service = Service.open(":memory:")
>>> spec, version = service.register("churn", task="binary", prediction="score")
>>> rows = pd.DataFrame({"id": ["a", "b"], "score": [0.2, 0.9], "age": [31, 47],
...                      "timestamp": ["2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z"]})
>>> service.log_batch("churn", version, rows).stored
2
>>> service.metrics("churn", version, ["count"], start="2026-01-01", end="2026-01-02")["count"].item()
2.0
>>> service.close()
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ._time import from_micros, now_micros, parse_duration, to_micros
from .engine.ingest import Engine, IngestReport
from .engine.profiling import reference_features
from .engine.query import compute_metrics, compute_summary
from .engine.scope import Scope
from .engine.workers import ProfilePool
from .errors import ConfigError, RuleError, SchemaError, UnknownModelError
from .metrics.catalog import metric_names
from .metrics.custom import registered
from .schema import (
    ModelSpec,
    check_column_name,
    check_distinct,
    check_feature_count,
    infer_features,
    shown,
    to_arrow,
)
from .store import alerts as alert_store
from .store import constraints as constraint_store
from .store import retention as retention_store
from .store.database import Store
from .store.reference import reference_columns, store_reference
from .store.retention import RetentionPolicy

log = logging.getLogger("mlpulse")

#: Internal column names of rows queued by ``Model.log`` / ``log_feedback``.
LOG_ID, LOG_TS, LOG_PREDICTION, LOG_LABEL = "__log_id", "__log_ts", "__log_prediction", "__log_label"


class Service:
    """Every operation on one store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        max_features: int | None = None,
        retention: RetentionPolicy | None = None,
        profile_workers: int = 0,
    ) -> None:
        if max_features is not None and (
            not isinstance(max_features, int) or isinstance(max_features, bool) or max_features < 1
        ):
            raise ConfigError(f"max_features must be a positive integer, got {max_features!r}")
        self.store = store
        # profile_workers > 0: large ingest batches are profiled in worker processes (the
        # server's setting; mlpulse.engine.workers), closed with the service
        self.profiler = ProfilePool(profile_workers) if profile_workers else None
        self.engine = Engine(store, profiler=self.profiler)
        self.registry = self.engine.registry
        # feature columns per model (default $MLPULSE_MAX_FEATURES or 1,000)
        self.registry.max_features = max_features
        from .alerts.evaluator import Settings

        self.alert_settings = Settings()
        # how long raw rows and fine profiles stay in the file (maintain())
        self.retention = retention if retention is not None else RetentionPolicy()

    @classmethod
    def open(
        cls,
        path: str = ":memory:",
        *,
        max_features: int | None = None,
        retention: RetentionPolicy | None = None,
        profile_workers: int = 0,
    ) -> Service:
        """A service over the store at ``path`` (shared within the process)."""
        store = Store.open(path)
        try:
            return cls(
                store,
                max_features=max_features,
                retention=retention,
                profile_workers=profile_workers,
            )
        except BaseException:
            store.release()
            raise

    @property
    def path(self) -> str:
        return self.store.path

    def close(self) -> None:
        """Release the store (closed when its last user releases it)."""
        if self.profiler is not None:
            self.profiler.close()
        self.store.release()

    def reopen(self) -> None:
        """Close the store and open its file again, in place (the server does this after a
        fatal error invalidated the database). Raises if the file cannot be opened; the
        service then still holds the closed store and may try again."""
        old = self.store
        try:
            old.close()  # idempotent; it is broken already, so closing is best effort
        except Exception as exc:
            log.debug("closing the invalidated store: %s", exc)
        store = Store.open(old.path)
        try:
            engine = Engine(store, profiler=self.profiler)
            engine.registry.max_features = self.registry.max_features
        except BaseException:
            store.release()
            raise
        self.store, self.engine, self.registry = store, engine, engine.registry

    # -- registry -----------------------------------------------------------------------

    def register(
        self,
        name: str,
        version: str | None = None,
        *,
        task: str | None = None,
        reference: Any = None,
        prediction: str | None = None,
        label: str | None = None,
        features: Sequence[str] | dict[str, str] | None = None,
        threshold: float | None = None,
        classes: Sequence[Any] | None = None,
        segments: Sequence[str] | None = None,
        recommended_rules: bool = True,
    ) -> tuple[ModelSpec, str]:
        """Register a model version (first call) or return the registered one, as
        ``(spec, version)``; ``version=None`` is the latest version (``"v1"`` for a new model).
        ``recommended_rules=False``: no default alert rules for this model.

        ``features`` is a list of column names, or a mapping column -> kind (``numeric`` |
        ``categorical``) as inferred from a reference elsewhere. A call that contradicts the
        stored model raises ``ModelConflictError``; a name-only call for an unknown model
        raises ``UnknownModelError``.
        """
        registry = self.registry
        try:
            stored: ModelSpec | None = registry.get(name)
        except UnknownModelError:
            stored = None
        if stored is None and task is None:
            raise UnknownModelError(
                f"unknown model {name!r}: pass task='binary'|'multiclass'|'regression' to register it"
            )
        ref_table = (
            to_arrow(reference, what=f"model {name!r}: reference") if reference is not None else None
        )
        prediction = prediction or (stored.prediction if stored else "prediction")
        label = label or (stored.label if stored else "label")
        if ref_table is not None:
            self._check_reference(name, ref_table, stored, prediction, label)
        kinds = self._feature_kinds(name, stored, ref_table, features, prediction, label)
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
            segments=tuple(segments) if segments is not None else (stored.segments if stored else ()),
            features=kinds,
        )
        spec = registry.register(spec)
        if version is None:
            versions = registry.versions(spec)
            version = versions[-1] if versions else "v1"
        version = str(version)
        registry.ensure_version(spec, version)
        if ref_table is not None:
            first = stored is None or not reference_columns(self.store, stored)
            spec = self._store_reference(spec, version, ref_table)
            if first and recommended_rules:
                self._recommend(name, version)
        return spec, version

    def _recommend(self, name: str, version: str) -> None:
        """Create the recommended alert rules of a model that just got its first reference
        (rules of those names that exist already, edited by the user, are kept)."""
        from .alerts.recommended import recommended_for

        existing = {d["name"] for d in alert_store.load_rule_dicts(self.store)}
        rules = [r for r in recommended_for(self, name, version) if r.name not in existing]
        if rules:
            alert_store.save_rules(self.store, rules)

    @staticmethod
    def _feature_kinds(
        name: str,
        stored: ModelSpec | None,
        ref_table: pa.Table | None,
        features: Sequence[str] | dict[str, str] | None,
        prediction: str,
        label: str,
    ) -> dict[str, str]:
        """Column -> kind of the features this registration names."""
        if isinstance(features, str):
            raise ConfigError(f"model {name!r}: features must be a list of column names")
        if isinstance(features, dict):
            return {str(k): str(v) for k, v in features.items()}
        inferred = infer_features(ref_table, {prediction, label}) if ref_table is not None else {}
        if features is None:
            return inferred
        if ref_table is not None:
            missing = [c for c in features if c not in ref_table.column_names]
            if missing:
                raise SchemaError(
                    f"model {name!r}: features {missing} are not columns of the reference"
                )
            return {k: v for k, v in inferred.items() if k in features}
        return {c: (stored.features.get(c, "numeric") if stored else "numeric") for c in features}

    def put_reference(
        self,
        name: str,
        version: str,
        table: Any,
        features: Sequence[str] | None = None,
        *,
        recommended_rules: bool = True,
    ) -> ModelSpec:
        """Upload (replace) a registered version's reference; new columns become features
        (only ``features`` if given)."""
        spec, _ = self.register(
            name, version, reference=table, features=features or None,
            recommended_rules=recommended_rules,
        )  # fmt: skip
        return spec

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
            known += reference_columns(self.store, stored)
        check_distinct(name, columns, known, what="reference column")
        others = [c for c in columns if c not in (prediction, label)]
        check_feature_count(name, len(others), self.registry.feature_limit())

    def _store_reference(self, spec: ModelSpec, version: str, table: pa.Table) -> ModelSpec:
        spec = self.registry.get(spec.name)
        store_reference(self.store, spec, version, table, reference_features(table, spec))
        return spec

    def spec(self, name: str) -> ModelSpec:
        """The model's current specification (its feature schema grows with new columns)."""
        return self.registry.get(name)

    def models(self) -> list[str]:
        """Names of the registered models."""
        return self.registry.names()

    def versions(self, name: str) -> list[str]:
        """The model's versions, oldest first."""
        return self.registry.versions(self.registry.get(name))

    def query_versions(self, spec: ModelSpec, version: str, versions: str | None) -> list[str]:
        """The versions a query reads: ``None`` -> the handle's ``version``; ``"*"`` or
        ``"all"`` -> every version; else that one version (which must exist)."""
        if versions is None:
            return [version]
        if versions in ("*", "all"):
            return self.registry.versions(spec)
        self.registry.require_version(spec, versions)
        return [versions]

    def scope(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        versions: str | None = None,
        align: bool = True,
    ) -> Scope:
        """What a query over this model reads (see :class:`Scope`)."""
        spec = self.registry.get(name)
        return Scope(
            spec,
            version,
            self.query_versions(spec, version, versions),
            start=start,
            end=end,
            step=step,
            segment=segment,
            align=align,
        )

    # -- ingest -------------------------------------------------------------------------

    def log_batch(
        self,
        name: str,
        version: str,
        table: Any,
        *,
        id: str = "id",
        timestamp: str | None = None,
        batch_id: str | None = None,
        batch_hash: str | None = None,
    ) -> IngestReport:
        """Store many predictions of a version now (see ``Model.log_batch``); ``batch_id``
        makes a retried batch idempotent (``batch_hash`` guards its content)."""
        spec = self.registry.get(name)
        self.registry.require_version(spec, version)
        arrow = to_arrow(table, what=f"model {name!r}: log_batch table")
        if timestamp is None and "timestamp" in arrow.column_names:
            timestamp = "timestamp"
        return self.engine.ingest_predictions(
            spec,
            version,
            arrow,
            id_col=id,
            ts_col=timestamp,
            batch_id=batch_id,
            batch_hash=batch_hash,
        )

    def log_feedback_batch(
        self,
        name: str,
        table: Any,
        *,
        id: str = "id",
        label: str | None = None,
        timestamp: str | None = None,
        batch_id: str | None = None,
        batch_hash: str | None = None,
    ) -> IngestReport:
        """Store many labels now; each replaces any earlier label for its id."""
        spec = self.registry.get(name)
        return self.engine.ingest_feedback(
            spec,
            table,
            id_col=id,
            label_col=label or spec.label,
            ts_col=timestamp,
            batch_id=batch_id,
            batch_hash=batch_hash,
        )

    def log_queued(
        self,
        kind: str,
        name: str,
        version: str,
        table: pa.Table,
        *,
        batch_id: str | None = None,
        batch_hash: str | None = None,
    ) -> IngestReport:
        """Store a batch of rows queued by ``Model.log`` / ``log_feedback`` (internal column
        names :data:`LOG_ID`, :data:`LOG_TS`, :data:`LOG_PREDICTION`, :data:`LOG_LABEL`).

        Nobody waits for this batch's answer, so a batch that does not fit as a whole (two
        columns differing only in case, say) is quarantined row by row with the reason
        instead of being refused: every logged row is stored or quarantined."""
        spec = self.registry.get(name)
        try:
            if kind == "prediction":
                table = as_prediction(table, LOG_PREDICTION, spec.prediction)
                return self.engine.ingest_predictions(
                    spec, version, table, id_col=LOG_ID, ts_col=LOG_TS,
                    batch_id=batch_id, batch_hash=batch_hash,
                )
            return self.engine.ingest_feedback(
                spec, table, id_col=LOG_ID, label_col=LOG_LABEL, ts_col=LOG_TS,
                batch_id=batch_id, batch_hash=batch_hash,
            )
        except (SchemaError, ConfigError) as exc:
            self.quarantine_queued(kind, name, version, table, exc)
            return IngestReport(table.num_rows, 0, table.num_rows)

    def quarantine_queued(
        self, kind: str, name: str, version: str, rows: Any, exc: BaseException
    ) -> None:
        """Queued rows that could not be ingested at all: quarantine every one with the
        reason, so nothing logged is lost."""
        from .engine.validate import Quarantine, payloads

        table = rows if isinstance(rows, pa.Table) else None
        n = table.num_rows if table is not None else len(rows)
        log.error("mlpulse: model %r: %d %s rows could not be stored: %s", name, n, kind, exc)
        ids: list[str | None]
        if table is None:
            import json

            lines = [json.dumps(r, default=str) for r in rows]
            ids = [str(r.get(LOG_ID)) for r in rows]
        else:
            lines = payloads(table, np.arange(n))
            ids = (
                [None if v is None else str(v) for v in table.column(LOG_ID).to_pylist()]
                if LOG_ID in table.column_names
                else [None] * n
            )
        spec = self.registry.get(name)
        q = Quarantine(np.arange(n), ids, [f"model {name!r}: {exc}"] * n, lines)
        with self.store.write() as conn:
            self.engine._quarantine(conn, spec, version if kind == "prediction" else None, kind, q)

    # -- queries ------------------------------------------------------------------------

    def metrics(
        self,
        name: str,
        version: str,
        metrics: Sequence[str] | str | None = None,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        versions: str | None = None,
        align: bool = True,
        ci: float | None = None,
    ) -> pd.DataFrame:
        """``Model.metrics``: one row per window (``ci``: add each metric's interval)."""
        scope = self.scope(
            name, version, start=start, end=end, step=step, segment=segment, versions=versions,
            align=align,
        )
        return compute_metrics(self.store, self.registry, scope, metrics, ci=ci)

    def summary(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        versions: str | None = None,
        align: bool = True,
    ) -> pd.DataFrame:
        """``Model.summary``: per window and feature column."""
        scope = self.scope(
            name, version, start=start, end=end, step=step, segment=segment, versions=versions,
            align=align,
        )
        return compute_summary(self.store, self.registry, scope)

    def quarantined(
        self, name: str, version: str | None = None, *, start: Any = None, end: Any = None
    ) -> pd.DataFrame:
        """Quarantined rows received in ``[start, end)``: the version's rows and feedback
        rows (every row with ``version=None``)."""
        spec = self.registry.get(name)
        lo = to_micros(start) if start is not None else None
        hi = to_micros(end) if end is not None else None
        frame = self.engine.quarantined(spec, lo, hi)
        if version is None:
            return frame
        keep = frame["version"].isna() | (frame["version"] == version)
        return frame[keep].reset_index(drop=True)

    def drift(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        against: Any = "reference",
        method: Any = "auto",
        mode: str = "sketch",
        segment: Any = None,
        thresholds: dict[str, float] | None = None,
        correction: str | None = "bh",
        drift_share: float = 0.0,
        columns: Sequence[str] | None = None,
        step: Any = None,
        fallback: bool = True,
        multivariate: bool | Sequence[str] = False,
        sample_size: int = 5000,
        versions: str | None = None,
        align: bool = True,
    ):
        """``Model.drift``: a :class:`~mlpulse.drift.DriftReport`."""
        from .drift.compute import compute_drift

        scope = self.scope(
            name, version, start=start, end=end, step=step, segment=segment, versions=versions,
            align=align,
        )
        return compute_drift(
            self.store,
            self.registry,
            scope,
            against=against,
            method=method,
            mode=mode,
            thresholds=thresholds,
            correction=correction,
            drift_share=drift_share,
            columns=list(columns) if columns is not None else None,
            fallback=fallback,
            multivariate=multivariate if isinstance(multivariate, bool) else list(multivariate),
            sample_size=sample_size,
        )

    def quality(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        constraints: Any = None,
        infer: bool = True,
        mode: str = "sketch",
        versions: str | None = None,
        align: bool = True,
    ):
        """``Model.quality``: a :class:`~mlpulse.quality.check.QualityReport`."""
        from .quality.check import QualityReport, compute_quality

        scope = self.scope(
            name, version, start=start, end=end, step=step, segment=segment, versions=versions,
            align=align,
        )
        return QualityReport(
            compute_quality(
                self.store,
                self.registry,
                scope,
                mode=mode,
                constraints=constraints,
                stored=self.constraints(name),
                infer_rules=infer,
            )
        )

    def estimate(
        self,
        name: str,
        version: str,
        metrics: Sequence[str] | str | None = None,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        band: bool = False,
        mode: str = "sketch",
        versions: str | None = None,
        align: bool = True,
    ) -> pd.DataFrame:
        """``Model.estimate``: label-free estimates, the metrics frame's shape."""
        from .estimation.compute import compute_estimate

        scope = self.scope(
            name, version, start=start, end=end, step=step, segment=segment, versions=versions,
            align=align,
        )
        return compute_estimate(self.store, self.registry, scope, metrics, mode=mode, band=band)

    # -- investigation (docs/investigation.md) ----------------------------------------------

    def segments(
        self,
        name: str,
        version: str,
        metric: str,
        start: Any = "-24h",
        end: Any = "now",
        against: Any = None,
        segment: Any = None,
        versions: str | None = None,
    ) -> pd.DataFrame:
        """``Model.segments``: segment values ranked by their contribution to the metric's
        change against a baseline (``mlpulse.investigate.segments``)."""
        from .investigate.segments import compute_segments

        scope = self.scope(name, version, start=start, end=end, versions=versions)
        return compute_segments(self.store, self.registry, scope, metric, against, segment)

    def slices(
        self,
        name: str,
        version: str,
        start: Any = "-24h",
        end: Any = "now",
        metric: str = "error",
        max_conditions: int = 2,
        min_support: Any = None,
        limit: int = 20,
        versions: str | None = None,
        alpha: float = 0.05,
    ) -> pd.DataFrame:
        """``Model.slices``: feature slices where the model errs significantly more
        (``mlpulse.investigate.slices``)."""
        from .investigate.slices import compute_slices

        scope = self.scope(name, version, start=start, end=end, versions=versions)
        return compute_slices(
            self.store, self.registry, scope, metric, max_conditions, min_support, limit, alpha
        )

    def rows(
        self,
        name: str,
        version: str,
        start: Any = "-24h",
        end: Any = "now",
        where: dict[str, Any] | None = None,
        ids: Sequence[str] | str | None = None,
        limit: int = 100,
        include_quarantined: bool = False,
        cursor: str | None = None,
        versions: str | None = None,
    ) -> pd.DataFrame:
        """``Model.rows``: raw predictions with labels and trace ids (and quarantined rows
        with their reason); ``frame.attrs["next"]`` continues after the last row."""
        from .investigate.drill import drill_rows

        scope = self.scope(name, version, start=start, end=end, versions=versions)
        return drill_rows(
            self.store, scope, where, ids, limit, include_quarantined=include_quarantined,
            cursor=cursor,
        )  # fmt: skip

    def checks(self, name: str, version: str, *, start: Any = "-24h", end: Any = "now", **options: Any):
        """``Model.checks``: the ML Test Score monitors, a
        :class:`~mlpulse.monitors.MonitorReport`."""
        from .monitors.checks import run_checks

        self.registry.require_version(self.registry.get(name), version)
        return run_checks(ModelView(self, name, version), start, end, **options)

    # -- constraints and training records ------------------------------------------------

    def set_constraints(self, name: str, constraints: Any, replace: bool = False) -> None:
        """Store user constraints (YAML path or text, dicts or ``Constraint`` objects)."""
        from .quality.constraints import parse_constraints

        parsed = parse_constraints(constraints)
        spec = self.registry.get(name)
        constraint_store.save_constraints(self.store, spec.model_id, parsed, replace=replace)

    def constraints(self, name: str) -> list:
        """The user constraints stored for the model."""
        from .quality.constraints import Constraint

        spec = self.registry.get(name)
        return [
            Constraint(c, r, p) for c, r, p in constraint_store.load_constraints(self.store, spec.model_id)
        ]

    def log_training_features(self, name: str, table: Any, id: str = "id") -> int:
        """Store training features keyed by ``id``; returns the rows stored."""
        from .monitors.training import log_training_features

        return log_training_features(self.store, self.registry.get(name), table, id)

    def skew(self, name: str, version: str, tolerance: float = 1e-9) -> pd.DataFrame:
        """Training/serving skew per feature: column, ids, mismatches, rate."""
        from .monitors.training import skew

        return skew(self.store, self.registry.get(name), [version], tolerance=tolerance)

    def set_training_info(
        self, name: str, version: str, trained_at: Any = None, max_age: Any = None
    ) -> None:
        """Record when a version was trained and how old it may get."""
        from .monitors.training import set_training_info

        spec = self.registry.get(name)
        self.registry.require_version(spec, version)
        set_training_info(self.store, spec, version, trained_at, max_age)

    def log_resource_usage(
        self, name: str, version: str, memory_mb: float, timestamp: Any = None
    ) -> None:
        """Record a memory sample (MB) of the serving process for a version."""
        from .monitors.training import log_resource_usage

        if isinstance(memory_mb, bool) or not isinstance(memory_mb, int | float):
            raise ConfigError(f"model {name!r}: memory_mb must be a number, not {memory_mb!r}")
        if not (math.isfinite(memory_mb) and memory_mb >= 0):
            raise ConfigError(f"model {name!r}: memory_mb must be finite and >= 0, got {memory_mb}")
        spec = self.registry.get(name)
        self.registry.require_version(spec, version)
        log_resource_usage(self.store, spec, version, memory_mb, timestamp)

    def put_profiles(
        self,
        name: str,
        version: str,
        profiles: Any,
        *,
        replace: bool = True,
        batch_id: str | None = None,
        batch_hash: str | None = None,
    ) -> dict[str, Any]:
        """Store bucket profiles computed elsewhere (``mlpulse.spark``): an Arrow table with
        ``segment, resolution, bucket, part, blob`` rows. ``replace=True`` replaces every
        bucket it covers (a re-run is idempotent); ``replace=False`` merges into the stored
        buckets, once per ``batch_id``. Returns ``rows``, ``parts``, ``buckets``,
        ``replaced`` and ``duplicate`` (see :mod:`mlpulse.engine.imports`)."""
        from .engine.imports import put_profiles

        spec = self.registry.get(name)
        self.registry.require_version(spec, version)
        return put_profiles(
            self.engine, spec, version, profiles,
            replace=bool(replace), batch_id=batch_id, batch_hash=batch_hash,
        )  # fmt: skip


    # -- alerting ---------------------------------------------------------------------------

    def load_rules(self, source: Any, replace: bool = False) -> list[str]:
        """Store rules and notifiers from a path, YAML text or list of dicts (a rule of the
        same name is replaced; ``replace`` drops the other user rules and notifiers first);
        returns the rule names. Raises ``RuleError`` naming the rule and the field."""
        from .alerts.rules import parse_rules

        parsed = parse_rules(source)
        for rule in parsed.rules:
            if rule.model != "*":
                self._check_rule_model(rule)
        alert_store.save_rules(self.store, parsed.rules, replace=replace)
        if parsed.notifiers or replace:
            alert_store.save_notifiers(self.store, parsed.notifiers, replace=replace)
        return [r.name for r in parsed.rules]

    def _check_rule_model(self, rule: Any) -> None:
        """A rule naming a registered model must name a value that model has."""
        from .alerts.values import kind

        try:
            spec = self.registry.get(rule.model)
        except UnknownModelError:
            return  # a model registered later: judged when it exists
        metric = rule.metric
        if kind(metric) == "metrics" and metric not in metric_names(spec.task) and metric not in registered():
            raise RuleError(
                f"rule {rule.name!r}: field 'metric': model {spec.name!r} ({spec.task}) has no metric "
                f"{metric!r}; known: {', '.join(metric_names(spec.task))}"
            )
        if rule.segment is not None:
            from .engine.query import parse_segment

            try:
                parse_segment(spec, rule.segment)
            except ConfigError as exc:
                raise RuleError(f"rule {rule.name!r}: field 'segment': {exc}") from None

    def rules(self) -> pd.DataFrame:
        """The stored rules, one row each: name, model, metric, op, threshold, baseline,
        window, for, source, enabled, and the rule as a dict in ``rule``."""

        dicts = alert_store.load_rule_dicts(self.store)
        columns = ["name", "model", "metric", "op", "threshold", "baseline", "window", "for",
                   "min_rows", "source", "enabled"]  # fmt: skip
        frame = pd.DataFrame([{c: d.get(c) for c in columns} for d in dicts], columns=columns)
        frame["rule"] = dicts
        return frame

    def delete_rules(self, names: Sequence[str] | str) -> int:
        """Delete rules by name; returns how many existed."""

        names = [names] if isinstance(names, str) else list(names)
        # a name no rule can have (not text, a lone surrogate) names no rule
        return alert_store.delete_rules(self.store, [n for n in names if _sql_text(n)])

    def notifiers(self) -> list[dict[str, Any]]:
        """The stored notifier configurations, safe to show: ``${ENV}`` references are kept,
        secrets written literally read ``<redacted>``."""
        from .alerts.notifiers import redact_config

        return [redact_config(c) for c in alert_store.load_notifiers(self.store)]

    def evaluate(self, at: Any = None) -> pd.DataFrame:
        """Evaluate every stored rule at ``at`` (default now): one row per rule and model."""
        from .alerts.evaluator import evaluate

        return evaluate(self, at, settings=self.alert_settings)

    def alerts(self, state: str | None = None, model: str | None = None) -> pd.DataFrame:
        """Every alert (pending, firing, resolved), newest first."""

        if state is not None and state not in ("pending", "firing", "resolved"):
            raise ConfigError(f"state must be 'pending', 'firing' or 'resolved', got {state!r}")
        if model is not None and not _sql_text(model):
            raise ConfigError(f"model must be a name (valid Unicode text), got {model!r}")
        return alert_store.alerts_frame(self.store, state=state, model=model)

    def incidents(self, status: str | None = None) -> pd.DataFrame:
        """Incidents, newest first: id, title, status, opened_at, resolved_at, models, alerts."""

        if status is not None and status not in ("open", "acknowledged", "resolved"):
            raise ConfigError(f"status must be 'open', 'acknowledged' or 'resolved', got {status!r}")
        return alert_store.incidents_frame(self.store, status=status)

    def incident(self, incident_id: int) -> dict[str, Any]:
        """One incident: its fields, ``alerts`` and ``timeline`` (DataFrames)."""

        number = _incident_id(incident_id)
        row = alert_store.get_incident(self.store, number)
        if row is None:
            raise RuleError(f"unknown incident {incident_id!r}")
        return {
            "id": row.id,
            "title": row.title,
            "status": row.status,
            "opened_at": _time(row.opened_us),
            "acknowledged_at": _time(row.acknowledged_us),
            "resolved_at": _time(row.resolved_us),
            "models": row.models,
            "alerts": alert_store.incident_alerts(self.store, number),
            "timeline": alert_store.incident_timeline(self.store, number),
        }

    def root_cause(self, incident_id: int) -> pd.DataFrame:
        """What changed when the incident began, ranked: rank, kind, subject, score, detail
        (see :mod:`mlpulse.alerts.rootcause`)."""
        from .alerts.rootcause import root_cause

        return root_cause(self, _incident_id(incident_id))

    def acknowledge(self, incident_id: int) -> None:
        """Mark an open incident acknowledged (notifications go on)."""

        if not alert_store.acknowledge_incident(self.store, _incident_id(incident_id), now_micros()):
            raise RuleError(f"unknown incident {incident_id!r}")

    def silence(
        self,
        matchers: dict[str, str],
        duration: Any = "2h",
        comment: str = "",
        created_by: str | None = None,
        start: Any = None,
    ) -> str:
        """Silence the alerts whose labels (and ``rule``, ``model``) match every matcher,
        from ``start`` (default now) for ``duration``; returns the silence's id."""
        import uuid


        if not isinstance(matchers, dict) or not matchers:
            raise RuleError("silence: field 'matchers': a non-empty mapping of label -> value is required")
        for key, value in matchers.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key:
                raise RuleError(f"silence: field 'matchers': {key!r}: {value!r} must map a label to a string")
        try:
            length = parse_duration(duration)
        except ConfigError as exc:
            raise RuleError(f"silence: field 'duration': {exc}") from None
        if not isinstance(comment, str) or (created_by is not None and not isinstance(created_by, str)):
            raise RuleError("silence: fields 'comment' and 'created_by' must be strings")
        if not all(_sql_text(t) for t in (comment, created_by or "", *matchers, *matchers.values())):
            raise RuleError("silence: matchers, comment and created_by must be valid Unicode text")
        now = now_micros()
        begin = to_micros(start) if start is not None else now
        silence = alert_store.SilenceRow(
            id=uuid.uuid4().hex[:12], matchers=dict(matchers), starts_us=begin,
            ends_us=begin + length, comment=comment, created_by=created_by, created_us=now,
        )  # fmt: skip
        alert_store.add_silence(self.store, silence)
        return silence.id

    def silences(self) -> pd.DataFrame:
        """Every silence: id, matchers, starts_at, ends_at, comment, created_by, active."""

        return alert_store.silences_frame(self.store, now_micros())

    def expire_silence(self, silence_id: str) -> None:
        """End a silence now."""

        if not _sql_text(silence_id) or not alert_store.expire_silence(self.store, silence_id, now_micros()):
            raise RuleError(f"unknown silence {silence_id!r}")

    def notifications(self) -> pd.DataFrame:
        """The notification outbox: id, notifier, status (pending|sent|failed), attempts, ..."""

        return alert_store.outbox(self.store)

    # -- retention ----------------------------------------------------------------------

    def maintain(self, now: Any = None) -> dict[str, Any]:
        """Apply the retention policy now (``now``: the instant it counts back from, default
        the current time): raw rows past ``raw_retention`` to the Parquet lake (or deleted),
        and the feedback audit rows received before the same cut-off with them, minute and
        hour profiles past their retention deleted, the file compacted when that freed
        enough. Returns what was done (raw and feedback rows archived or deleted, lake files
        written, profile parts deleted, whether it compacted, file bytes before and after,
        seconds) and the policy applied."""
        report = retention_store.maintain(self.store, self.retention, now=now)
        return {**report.to_dict(), **self.retention.describe()}


def _sql_text(value: Any) -> bool:
    """Whether ``value`` is text DuckDB can take as a parameter (no lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _incident_id(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RuleError(f"unknown incident {value!r}: ids are integers") from None
    if isinstance(value, bool) or number != value and str(number) != str(value):
        raise RuleError(f"unknown incident {value!r}: ids are integers")
    return number


def _time(micros: int | None) -> Any:
    return from_micros(micros) if micros is not None else None


def as_prediction(table: pa.Table, column: str, prediction: str) -> pa.Table:
    """``table`` with ``column`` renamed to the model's ``prediction`` column (a feature of
    that name would be ambiguous: the explicit prediction wins)."""
    if column not in table.column_names or column == prediction:
        return table
    if prediction in table.column_names:
        table = table.drop_columns([prediction])
    return table.rename_columns([prediction if c == column else c for c in table.column_names])


class ModelView:
    """One model version seen through a :class:`Service`: what the monitors read."""

    def __init__(self, service: Service, name: str, version: str) -> None:
        self.service = service
        self.name = name
        self.version = version

    @property
    def spec(self) -> ModelSpec:
        return self.service.spec(self.name)

    def versions(self) -> list[str]:
        return self.service.versions(self.name)

    def metrics(self, metrics: Any = None, start: Any = "-24h", end: Any = "now", step: Any = None,
                segment: Any = None, version: str | None = None) -> pd.DataFrame:
        return self.service.metrics(
            self.name, self.version, metrics, start=start, end=end, step=step, segment=segment,
            versions=version,
        )

    def quality(self, start: Any = "-24h", end: Any = "now", **options: Any):
        return self.service.quality(self.name, self.version, start=start, end=end, **options)

    def skew(self, tolerance: float = 1e-9) -> pd.DataFrame:
        return self.service.skew(self.name, self.version, tolerance)


__all__ = ["LOG_ID", "LOG_LABEL", "LOG_PREDICTION", "LOG_TS", "ModelView", "Service", "as_prediction"]
