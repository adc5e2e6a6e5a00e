"""``Pulse`` (a connection) and ``Model`` (the handle of one model version), written once
over a :class:`~mlpulse.client.transport.Transport`: in-process or over HTTP, every method
is the same call on the transport, so it behaves the same on both."""

from __future__ import annotations

import atexit
import logging
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .._time import to_micros
from ..engine.ingest import IngestReport
from ..errors import ConfigError
from ..schema import ModelSpec
from ..service import LOG_ID, LOG_LABEL, LOG_PREDICTION, LOG_TS
from .alerting import Incident, Rules
from .transport import Transport

log = logging.getLogger("mlpulse")


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
    """A connection to an mlpulse store (see :func:`mlpulse.connect`): a file or
    ``:memory:`` in this process, or a server over HTTP."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.path = transport.path
        self._models: dict[tuple[str, str], Model] = {}
        self._closed = False
        ref = weakref.ref(self)

        def _close_at_exit() -> None:
            p = ref()
            if p is not None:
                p.close()

        atexit.register(_close_at_exit)

    @property
    def url(self) -> str:
        """The server's URL (over HTTP) or the store's path (in process)."""
        return self.path

    @property
    def service(self) -> Any:
        """The in-process :class:`~mlpulse.service.Service` (None over HTTP)."""
        from ..service import Service

        return self._transport if isinstance(self._transport, Service) else None

    @property
    def store(self) -> Any:
        """The embedded store (in process only)."""
        return self._local().store

    @property
    def engine(self) -> Any:
        """The ingest engine of the embedded store (in process only)."""
        return self._local().engine

    def _local(self) -> Any:
        service = self.service
        if service is None:
            raise ConfigError(f"{self.path!r} is a server: its store is not in this process")
        return service

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
        recommended_rules: bool = True,
    ) -> Model:
        """Register a model version (first call) or return the registered one.

        With only a name (and version), the stored model is returned; a call that
        contradicts what is stored (another task, say) raises ``ModelConflictError``.
        ``recommended_rules=False`` creates no default alert rules for the model.
        """
        self._check_open()
        if isinstance(features, str):
            raise ConfigError(f"model {name!r}: features must be a list of column names")
        spec, version = self._transport.register(
            name,
            None if version is None else str(version),
            task=task,
            reference=reference,
            prediction=prediction,
            label=label,
            features=list(features) if features is not None else None,
            threshold=threshold,
            classes=classes,
            segments=list(segments) if segments is not None else None,
            recommended_rules=recommended_rules,
        )
        key = (name, version)
        if key not in self._models:
            self._models[key] = Model(self, name, version)
        return self._models[key]

    def models(self) -> list[str]:
        """Names of the registered models."""
        return self._transport.models()

    # -- alerting -----------------------------------------------------------------------

    @property
    def rules(self) -> Rules:
        """Alert rules: ``pulse.rules.load(...)``, ``.list()``, ``.delete(name)``."""
        return Rules(self._transport)

    def evaluate(self, at: Any = None) -> pd.DataFrame:
        """Evaluate every rule once at ``at`` (default now), as a live evaluator running at
        that time would have: one row per rule and model with state, value and threshold."""
        self._check_open()
        return self._transport.evaluate(at)

    def maintain(self, now: Any = None) -> dict[str, Any]:
        """Run retention and compaction now (the server also runs them on a schedule):
        raw rows older than ``raw_retention`` move to the Parquet lake beside the database
        (or are deleted), and so do feedback audit rows received before the same cut-off,
        minute and hour profiles past their retention are deleted, and the
        file is compacted. ``now`` is the instant retention counts back from (default: the
        current time). Returns what was done; see docs/storage.md."""
        self._check_open()
        return self._transport.maintain(now)

    def alerts(self, state: str | None = None, model: str | None = None) -> pd.DataFrame:
        """Alerts, newest first: rule, model, state (pending|firing|resolved), value,
        threshold, labels, started_at, resolved_at, incident, ..."""
        return self._transport.alerts(state=state, model=model)

    def incidents(self, status: str | None = None) -> pd.DataFrame:
        """Incidents, newest first: id, title, status (open|acknowledged|resolved),
        opened_at, resolved_at, models, alerts."""
        return self._transport.incidents(status=status)

    def incident(self, id: int) -> Incident:
        """One incident with its alerts and timeline."""
        found = self._transport.incident(id)
        return Incident(**found, _transport=self._transport)

    def silence(
        self,
        matchers: dict[str, str],
        duration: Any = "2h",
        comment: str = "",
        created_by: str | None = None,
        start: Any = None,
    ) -> str:
        """Silence matching alerts (labels, ``rule``, ``model``) for ``duration``: they keep
        their state but send nothing. Returns the silence id."""
        return self._transport.silence(matchers, duration, comment, created_by, start)

    def silences(self) -> pd.DataFrame:
        """Every silence with its matchers, times and whether it is active."""
        return self._transport.silences()

    def expire_silence(self, id: str) -> None:
        """End a silence now."""
        self._transport.expire_silence(id)

    def notifications(self) -> pd.DataFrame:
        """The notification outbox: what was sent, is pending or failed, and why."""
        return self._transport.notifications()

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything logged so far is stored (acknowledged by the server over
        HTTP); False if ``timeout`` ran out first."""
        return self._transport.flush(timeout)

    @property
    def dropped(self) -> int:
        """Rows dropped because a bound was reached."""
        return self._transport.dropped

    @property
    def pending(self) -> int:
        """Rows logged but not yet stored (queued, or spooled while a server is down)."""
        return self._transport.pending

    @property
    def rejected(self) -> int:
        """Batches a server refused for good (kept under ``mlpulse-rejected/`` in the spool)."""
        return self._transport.rejected

    def close(self, timeout: float | None = None) -> None:
        """Store or deliver what is pending (over HTTP, up to ``timeout``; the rest stays in
        the spool for the next run), then close; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._transport.close(timeout)

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
        self._t: Transport = pulse._transport
        self.name = name
        self.version = version
        # log() is the hot path: its keys are built once, and the transport's queue is the
        # batcher's own put where nothing else is to be done
        self._key_prediction = ("prediction", name, version)
        self._key_feedback = ("feedback", name, version)

    @property
    def spec(self) -> ModelSpec:
        """The model's current specification (its feature schema grows with new columns)."""
        return self._t.spec(self.name)

    def versions(self) -> list[str]:
        """The model's versions, oldest first."""
        return self._t.versions(self.name)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, version={self.version!r})"

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
            row[LOG_ID] = id
            row[LOG_TS] = time.time() if timestamp is None else _epoch_seconds(timestamp)
            row[LOG_PREDICTION] = prediction
            if latency_ms is not None:
                row["latency_ms"] = latency_ms
            if trace_id is not None:
                row["trace_id"] = trace_id
            self._t.queue(self._key_prediction, row)
        except Exception:  # the caller's service must never crash because of logging
            log.exception("mlpulse: model %r: could not queue a prediction", self.name)

    def log_feedback(self, id: Any, label: Any, timestamp: Any = None) -> None:
        """Queue the ground truth for a logged (or future) prediction; returns at once."""
        try:
            row = {
                LOG_ID: id,
                LOG_LABEL: label,
                LOG_TS: time.time() if timestamp is None else _epoch_seconds(timestamp),
            }
            self._t.queue(self._key_feedback, row)
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
        """Store many predictions now; returns ``received``, ``stored`` and ``quarantined``
        (and ``pending``: rows spooled while a server is unreachable, sent later).

        The table's columns are the features, the prediction column and optionally
        ``latency_ms`` and ``trace_id``. ``timestamp`` names the event-time column (default:
        a ``timestamp`` column if present, else now).
        """
        return self._t.log_batch(self.name, self.version, table, id=id, timestamp=timestamp)

    def log_feedback_batch(
        self, table: Any, id: str = "id", label: str | None = None, timestamp: str | None = None
    ) -> IngestReport:
        """Store many labels now; each replaces any earlier label for its id."""
        return self._t.log_feedback_batch(self.name, table, id=id, label=label, timestamp=timestamp)

    # -- queries ------------------------------------------------------------------------

    def metrics(
        self,
        metrics: Sequence[str] | str | None = None,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        version: str | None = None,
        align: bool = True,
        ci: float | None = None,
    ) -> pd.DataFrame:
        """One row per window: window_start, window_end, n, n_labeled and each metric.

        ``version=None`` is this handle's version; ``"*"`` merges all versions. A relative
        ``start`` is aligned to the ``step`` (whole hours for ``"1h"``; ``align=False``
        keeps it as given); see ``docs/metrics.md``, "Aligned windows". ``ci=0.95`` adds
        ``<metric>_lower`` and ``<metric>_upper`` after each metric (methods in
        ``frame.attrs["ci"]``); see ``docs/metrics.md``, "Confidence intervals".
        """
        return self._t.metrics(
            self.name,
            self.version,
            metrics,
            start=start,
            end=end,
            step=step,
            segment=segment,
            versions=version,
            align=align,
            ci=ci,
        )

    def summary(
        self,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        version: str | None = None,
        align: bool = True,
    ) -> pd.DataFrame:
        """Per window and feature: count, missing, mean, std, min, p50, max, distinct, top."""
        return self._t.summary(
            self.name, self.version, start=start, end=end, step=step, segment=segment,
            versions=version, align=align,
        )

    def quarantined(self, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Quarantined rows (received in [start, end)) with their ``reason``."""
        return self._t.quarantined(self.name, self.version, start=start, end=end)

    # -- drift, quality, estimation, monitors -------------------------------------------

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
        align: bool = True,
    ):
        """Drift of the window ``[start, end)`` against a baseline, per column and overall.

        ``against``: ``"reference"``, a version name, or ``{"start": ..., "end": ...}``.
        ``method``: ``"auto"``, a method name, or a dict column -> name; ``thresholds``: a
        dict keyed by method or column name. Returns a :class:`mlpulse.drift.DriftReport`
        (``.dataset_drift``, ``.to_pandas()``). With ``step``, ``.to_pandas()`` has one
        block per window (``window_start``, ``window_end`` first), ``.windows`` one row per
        window and ``.change_points()`` when each column changed. See ``docs/drift.md``.
        """
        return self._t.drift(
            self.name,
            self.version,
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
            versions=version,
            align=align,
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
        align: bool = True,
    ):
        """Constraint violations in ``[start, end)`` (per window with ``step``).

        Constraints: inferred from the reference (``infer=True``), those stored with
        :meth:`set_constraints`, and ``constraints`` (YAML path or text, or a list).
        Returns a :class:`mlpulse.quality.check.QualityReport`; ``.to_pandas()`` has the
        columns column, rule, violations, rows, rate. See ``docs/quality.md``.
        """
        return self._t.quality(
            self.name,
            self.version,
            start=start,
            end=end,
            step=step,
            segment=segment,
            constraints=constraints,
            infer=infer,
            mode=mode,
            versions=version,
            align=align,
        )

    def set_constraints(self, constraints: Any, replace: bool = False) -> None:
        """Store user constraints (YAML path or text, dicts or ``Constraint`` objects)."""
        self._t.set_constraints(self.name, constraints, replace)

    def constraints(self) -> list:
        """The user constraints stored for this model."""
        return self._t.constraints(self.name)

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
        align: bool = True,
    ) -> pd.DataFrame:
        """Label-free estimates (CBPE) of accuracy, precision, recall, f1, roc_auc per window:
        the same frame as :meth:`metrics`; ``band=True`` adds ``<metric>_lower``/``_upper``
        (also in ``frame.attrs["band"]``). See ``docs/estimation.md``."""
        return self._t.estimate(
            self.name,
            self.version,
            metrics,
            start=start,
            end=end,
            step=step,
            segment=segment,
            band=band,
            mode=mode,
            versions=version,
            align=align,
        )

    def log_training_features(self, table: Any, id: str = "id") -> int:
        """Store the features the model was trained on, keyed by ``id``, for the
        training/serving skew monitor; returns the number of rows stored."""
        return self._t.log_training_features(self.name, table, id)

    def skew(self, tolerance: float = 1e-9) -> pd.DataFrame:
        """Training/serving skew per feature over ids seen in both: column, ids, mismatches,
        rate."""
        return self._t.skew(self.name, self.version, tolerance)

    # -- investigation (docs/investigation.md) ----------------------------------------

    def segments(
        self,
        metric: str,
        start: Any = "-24h",
        end: Any = "now",
        against: Any = None,
        segment: Any = None,
        *,
        version: str | None = None,
    ) -> pd.DataFrame:
        """Segment values ranked by their contribution to the change of ``metric`` (a ratio
        of row sums: accuracy, precision, recall, f1, log_loss, mae, count, ...) from
        ``against`` (None: the reference if it has labels, else the previous window of the
        same length; ``"reference"``, ``"previous"`` or ``{"start": ..., "end": ...}``) to
        ``[start, end)``. Columns: segment, value, rows, rows_against, share, share_against,
        metric, metric_against, change, contribution (summing to the total change per
        segment column), p_value."""
        return self._t.segments(
            self.name, self.version, metric, start=start, end=end, against=against,
            segment=segment, versions=version,
        )  # fmt: skip

    def slices(
        self,
        start: Any = "-24h",
        end: Any = "now",
        metric: str = "error",
        max_conditions: int = 2,
        min_support: Any = None,
        limit: int = 20,
        *,
        alpha: float = 0.05,
        version: str | None = None,
    ) -> pd.DataFrame:
        """Feature slices (up to ``max_conditions`` conditions) where the model errs
        significantly more than elsewhere, Benjamini-Hochberg controlled at ``alpha``:
        slice, conditions, rows, support, error_rate, lift, p_value, q_value."""
        return self._t.slices(
            self.name, self.version, start=start, end=end, metric=metric,
            max_conditions=max_conditions, min_support=min_support, limit=limit,
            versions=version, alpha=alpha,
        )  # fmt: skip

    def rows(
        self,
        start: Any = "-24h",
        end: Any = "now",
        where: dict[str, Any] | None = None,
        ids: Sequence[str] | str | None = None,
        limit: int = 100,
        *,
        include_quarantined: bool = False,
        cursor: str | None = None,
        version: str | None = None,
    ) -> pd.DataFrame:
        """Raw predictions of ``[start, end)`` with labels, latencies and trace ids, filtered
        by ``where`` (column -> value, list of values or None) and ``ids``; with
        ``include_quarantined``, the quarantined rows received in the window follow with
        their ``quarantine_reason``. ``frame.attrs["next"]`` continues (``cursor=``)."""
        return self._t.rows(
            self.name, self.version, start=start, end=end, where=where, ids=ids, limit=limit,
            include_quarantined=include_quarantined, cursor=cursor, versions=version,
        )  # fmt: skip

    def set_training_info(self, trained_at: Any = None, max_age: Any = None) -> None:
        """Record when this version was trained and how old it may get (``"30d"``)."""
        self._t.set_training_info(self.name, self.version, trained_at, max_age)

    def log_resource_usage(self, memory_mb: float, timestamp: Any = None) -> None:
        """Record a memory sample (MB) of the serving process for this version."""
        self._t.log_resource_usage(self.name, self.version, memory_mb, timestamp)

    def put_profiles(
        self, profiles: Any, replace: bool = True, batch_id: str | None = None
    ) -> dict[str, Any]:
        """Store bucket profiles computed elsewhere (what ``mlpulse.spark`` sends): a table of
        ``segment, resolution, bucket, part, blob``. ``replace=True`` replaces the buckets it
        covers (re-running is idempotent); ``replace=False`` merges into them, once per
        ``batch_id``. Returns ``rows``, ``parts``, ``buckets``, ``replaced``, ``duplicate``."""
        return self._t.put_profiles(
            self.name, self.version, profiles, replace=replace, batch_id=batch_id
        )

    def checks(self, start: Any = "-24h", end: Any = "now", **options: Any):
        """Run the seven ML Test Score monitors; returns a
        :class:`mlpulse.monitors.MonitorReport` (``.ok``, ``.to_pandas()``). Options:
        ``against``, ``monitors``, ``skew_tolerance``, ``regression``, ``quality_drop``,
        ``min_segment_rows``, ``alpha``, ``now``. See ``docs/monitors.md``."""
        return self._t.checks(self.name, self.version, start=start, end=end, **options)


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


__all__ = ["Model", "Observation", "Pulse"]
