"""Prometheus series of every model in a :class:`~mlpulse.service.Service`.

:func:`model_families` computes the series of ``docs/prometheus.md`` (names are binding,
see DESIGN.md) as prometheus-client metric families, at one instant ``now``:

* ``mlpulse_metric{model, version, name, window}``: every built-in metric of the model's
  task over each trailing window ``[now - window, now)`` (one ``metrics()`` call per model,
  version and window; NaN values, such as accuracy without labels, are left out);
* ``mlpulse_estimate{model, version, name, window}``: CBPE estimates of binary models with
  reference data;
* ``mlpulse_predictions_total``, ``mlpulse_labels_total{model, version}``: all-time counts
  from the day profiles; ``mlpulse_quarantined_total{model}``;
* ``mlpulse_latency_seconds{model, version, quantile}``: 0.5, 0.95 and 0.99 from the latency
  sketch over the shortest window;
* ``mlpulse_drift_statistic{model, version, column, method}``,
  ``mlpulse_drift_detected{model, version, column}``: drift against the reference over the
  shortest window (models with reference data);
* ``mlpulse_quality_violations{model, version, column, rule}`` over the shortest window;
* ``mlpulse_alert_firing{rule, model}``: 1 while firing, 0 while pending.

Beside them, ``mlpulse_server_held_labels{model}`` (labels waiting for their prediction) and
``mlpulse_server_notifications_pending`` (the alert outbox's depth).

A version with no prediction in a window gets ``count`` 0 for it and nothing else (what a
query would answer, without the query). A model whose computation fails is left out of that
family (logged once, counted in ``mlpulse_scrape_errors_total{model, part}``): one broken
model never breaks the scrape.

:class:`MetricsExporter` keeps the last figures and recomputes them, in a background
thread, once they are older than ``refresh`` and than four times the last computation's
duration: a scrape only sends kept text, whatever the fleet's size (100 models with drift and
estimates take seconds to compute), and the export takes at most a quarter of a core.

>>> import pandas as pd
>>> from mlpulse.service import Service
>>> service = Service.open(":memory:")
>>> _ = service.register("churn", "v1", task="binary", prediction="score", label="y")
>>> now = pd.Timestamp.now(tz="UTC")
>>> rows = pd.DataFrame({"id": ["a", "b"], "score": [0.9, 0.2], "timestamp": [now, now]})
>>> _ = service.log_batch("churn", "v1", rows)
>>> _ = service.log_feedback_batch("churn", pd.DataFrame({"id": ["a", "b"], "y": [1, 1]}))
>>> text = render(service, ["1h"])[0].decode()
>>> 'mlpulse_metric{model="churn",name="accuracy",version="v1",window="1h"} 0.5' in text
True
>>> 'mlpulse_predictions_total{model="churn",version="v1"} 2.0' in text
True
>>> service.close()
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from .._time import HOUR, from_micros, now_micros, parse_duration
from ..errors import ConfigError
from ..metrics.catalog import metric_names
from ..service import Service
from ..store.totals import VersionTotals, model_counts, version_totals

log = logging.getLogger("mlpulse.export")

#: Trailing windows exported unless configured otherwise.
DEFAULT_WINDOWS = ("1h", "24h")
#: ``quantile`` label -> the metric holding it (milliseconds).
QUANTILES = (("0.5", "latency_p50"), ("0.95", "latency_p95"), ("0.99", "latency_p99"))


@dataclass(frozen=True)
class Window:
    """A trailing window: its ``label`` as configured (``"1h"``) and length in microseconds."""

    label: str
    micros: int


def parse_windows(values: Iterable[Any] | str) -> list[Window]:
    """Windows from durations (``["1h", "24h"]`` or ``"1h,24h"``), in the order given, each
    once; raises :class:`~mlpulse.errors.ConfigError` for a bad or missing one.

    >>> [w.label for w in parse_windows("1h, 24h,1h")]
    ['1h', '24h']
    """
    items = values.split(",") if isinstance(values, str) else list(values)
    windows: dict[str, Window] = {}
    for item in items:
        label = str(item).strip()
        if not label:
            continue
        try:
            windows.setdefault(label, Window(label, parse_duration(label)))
        except ConfigError as exc:
            raise ConfigError(f"metrics window {label!r}: {exc}") from None
    if not windows:
        raise ConfigError("metrics windows: at least one duration is needed, e.g. '1h,24h'")
    return list(windows.values())


class Stopped(Exception):
    """A computation abandoned because its exporter is stopping."""


class ScrapeErrors:
    """Failures per (model, part) across computations: a counter, and a log line for the
    first failure of each (again after that part recovered)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self._failing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def failed(self, model: str, part: str, exc: BaseException) -> None:
        key = (model, part)
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            first = key not in self._failing
            self._failing.add(key)
        if first:
            log.warning(
                "metrics export: model %r: %s failed and is left out: %s: %s",
                model, part, type(exc).__name__, exc,
            )  # fmt: skip
        else:
            log.debug("metrics export: model %r: %s failed again: %s", model, part, exc)

    def succeeded(self, model: str, part: str) -> None:
        if (model, part) in self._failing:
            with self._lock:
                self._failing.discard((model, part))

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "mlpulse_scrape_errors",
            "Computations of a model's series that failed (the series were left out)",
            labels=["model", "part"],
        )
        with self._lock:
            for (model, part), n in sorted(self.counts.items()):
                family.add_metric([model, part], n)
        return family


class _Family:
    """A metric family that takes each label set once (the first value wins) and never a NaN."""

    def __init__(self, family: Metric) -> None:
        self.family = family
        self.seen: set[tuple[str, ...]] = set()

    def add(self, labels: Sequence[str], value: Any) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return
        key = tuple(str(v) for v in labels)
        if math.isnan(number) or key in self.seen:
            return
        self.seen.add(key)
        self.family.add_metric(list(key), number)  # type: ignore[attr-defined]


def _gauge(name: str, doc: str, labels: list[str], unit: str = "") -> _Family:
    return _Family(GaugeMetricFamily(name, doc, labels=labels, unit=unit))


def _counter(name: str, doc: str, labels: list[str]) -> _Family:
    return _Family(CounterMetricFamily(name, doc, labels=labels))


@dataclass
class _Series:
    """The model families of one computation."""

    metric: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_metric", "A built-in metric of the model over the trailing window",
        ["model", "version", "name", "window"]))  # fmt: skip
    estimate: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_estimate", "A label-free (CBPE) estimate of the metric over the trailing window",
        ["model", "version", "name", "window"]))  # fmt: skip
    predictions: _Family = field(default_factory=lambda: _counter(
        "mlpulse_predictions", "Predictions stored, all time", ["model", "version"]))  # fmt: skip
    labels: _Family = field(default_factory=lambda: _counter(
        "mlpulse_labels", "Stored predictions with a label, all time", ["model", "version"]))  # fmt: skip
    quarantined: _Family = field(default_factory=lambda: _counter(
        "mlpulse_quarantined", "Rows quarantined (predictions and labels), all time",
        ["model"]))  # fmt: skip
    latency: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_latency", "Prediction latency quantile over the shortest window",
        ["model", "version", "quantile"], unit="seconds"))  # fmt: skip
    drift_statistic: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_drift_statistic", "Drift statistic of the column against the reference over "
        "the shortest window", ["model", "version", "column", "method"]))  # fmt: skip
    drift_detected: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_drift_detected", "1 when the column drifted from the reference over the "
        "shortest window, else 0", ["model", "version", "column"]))  # fmt: skip
    quality: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_quality_violations", "Rows violating the data-quality rule over the shortest "
        "window", ["model", "version", "column", "rule"]))  # fmt: skip
    alert: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_alert_firing", "1 while the alert rule fires for the model, 0 while pending",
        ["rule", "model"]))  # fmt: skip
    held: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_server_held_labels", "Labels held for ids with no prediction yet",
        ["model"]))  # fmt: skip
    notifications: _Family = field(default_factory=lambda: _gauge(
        "mlpulse_server_notifications_pending",
        "Alert notifications waiting in the outbox (not sent, not given up)", []))  # fmt: skip

    def families(self) -> list[Metric]:
        return [f.family for f in vars(self).values()]


def _active(totals: VersionTotals, lo: int, hi: int) -> bool:
    """Whether the version may have predictions in ``[lo, hi)`` (its hour buckets say)."""
    if totals.first_hour is None or totals.last_hour is None:
        return False
    return totals.first_hour < hi and totals.last_hour + HOUR > lo


def model_families(
    service: Service,
    windows: Sequence[Window],
    *,
    now: int | None = None,
    errors: ScrapeErrors | None = None,
    stopping: Callable[[], bool] | None = None,
) -> list[Metric]:
    """Every model series at ``now`` (microseconds; default the current instant).
    ``stopping``: asked between versions; once it says True the work is abandoned
    (:class:`Stopped`), so that a server stops without waiting for a whole fleet."""
    now = now_micros() if now is None else now
    errors = errors if errors is not None else ScrapeErrors()
    shortest = min(windows, key=lambda w: w.micros)
    out = _Series()
    totals = version_totals(service.store)
    has_reference: dict[str, bool] = {}
    for t in totals:
        has_reference[t.model] = has_reference.get(t.model, False) or t.has_reference
        out.predictions.add([t.model, t.version], t.predictions)
        out.labels.add([t.model, t.version], t.labeled)
    for t in totals:
        if stopping is not None and stopping():
            raise Stopped("the metrics export was stopped")
        _version_series(service, out, t, windows, shortest, now, has_reference[t.model], errors)
    counts = model_counts(service.store)
    for model, n in counts.quarantined.items():
        out.quarantined.add([model], n)
    for model, n in counts.held.items():
        out.held.add([model], n)
    out.notifications.add([], counts.notifications_pending)
    try:
        _alert_series(service, out)
    except Exception as exc:  # the alert tables are unreadable: the rest still counts
        errors.failed("*", "alerts", exc)
    else:
        errors.succeeded("*", "alerts")
    return [*out.families(), errors.family()]


def _version_series(
    service: Service,
    out: _Series,
    t: VersionTotals,
    windows: Sequence[Window],
    shortest: Window,
    now: int,
    reference: bool,
    errors: ScrapeErrors,
) -> None:
    """The windowed series of one model version (each part fails alone)."""
    end = from_micros(now)

    def attempt(part: str, work: Callable[[], None], quiet: tuple[type[BaseException], ...] = ()) -> None:
        try:
            work()
        except quiet:
            errors.succeeded(t.model, part)  # not applicable to this model: nothing to export
        except Exception as exc:
            errors.failed(t.model, part, exc)
        else:
            errors.succeeded(t.model, part)

    active = [w for w in windows if _active(t, now - w.micros, now)]
    for w in windows:
        if w not in active:
            out.metric.add([t.model, t.version, "count", w.label], 0)

    def metrics() -> None:
        task = service.spec(t.model).task
        names = metric_names(task)
        for w in active:
            frame = service.metrics(
                t.model, t.version, names, start=from_micros(now - w.micros), end=end
            )
            row = frame.iloc[0]
            for name in names:
                out.metric.add([t.model, t.version, name, w.label], row[name])
            if w is shortest:
                for quantile, name in QUANTILES:
                    out.latency.add([t.model, t.version, quantile], row[name] / 1000.0)

    def estimate() -> None:
        if service.spec(t.model).task != "binary":
            return
        for w in active:
            frame = service.estimate(
                t.model, t.version, None, start=from_micros(now - w.micros), end=end
            )
            row = frame.iloc[0]
            for name in frame.columns[4:]:
                if name in ("estimate_warning", "estimate_reason"):  # a verdict, not a value
                    continue
                out.estimate.add([t.model, t.version, str(name), w.label], row[name])

    def drift() -> None:
        frame = service.drift(
            t.model, t.version, start=from_micros(now - shortest.micros), end=end
        ).to_pandas()
        for column, method, statistic, drifted in zip(
            frame["column"], frame["method"], frame["statistic"], frame["drifted"], strict=True
        ):
            out.drift_statistic.add([t.model, t.version, column, method], statistic)
            if not pd.isna(drifted):  # no verdict (too few rows): no sample
                out.drift_detected.add([t.model, t.version, column], 1 if drifted else 0)

    def quality() -> None:
        frame = service.quality(
            t.model, t.version, start=from_micros(now - shortest.micros), end=end
        ).to_pandas()
        for column, rule, violations in zip(
            frame["column"], frame["rule"], frame["violations"], strict=True
        ):
            out.quality.add([t.model, t.version, column, rule], violations)

    if active:
        attempt("metrics", metrics)
    if active and reference:
        attempt("estimate", estimate, quiet=(ConfigError,))
    if shortest in active:
        if reference:
            attempt("drift", drift)
        attempt("quality", quality)


def _alert_series(service: Service, out: _Series) -> None:
    firing = service.alerts(state="firing")
    for rule, model in zip(firing["rule"], firing["model"], strict=True):
        out.alert.add([rule, model], 1)
    pending = service.alerts(state="pending")
    for rule, model in zip(pending["rule"], pending["model"], strict=True):
        out.alert.add([rule, model], 0)  # a firing alert of the same pair was added first


class _Collector:
    """A prometheus-client collector over ready families."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def encode(families: Iterable[Metric], accept: str | None) -> tuple[bytes, str]:
    """The families as OpenMetrics text when ``accept`` asks for it, else the Prometheus
    text format: ``(body, content type)``. A fresh registry, never the global one."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(families))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def render(
    service: Service, windows: Iterable[Any] | str = DEFAULT_WINDOWS, accept: str | None = None
) -> tuple[bytes, str]:
    """Compute and encode every model series now (no cache): ``(body, content type)``."""
    return encode(model_families(service, parse_windows(windows)), accept)


#: The last line of an OpenMetrics exposition.
EOF = b"# EOF\n"


def concat(bodies: Sequence[bytes]) -> bytes:
    r"""One exposition from several of distinct families, each encoded for the same Accept
    header: an OpenMetrics one ends with a single ``# EOF``.

    >>> concat([b"a 1\n# EOF\n", b"b 2\n# EOF\n"])
    b'a 1\nb 2\n# EOF\n'
    >>> concat([b"a 1\n", b"b 2\n"])
    b'a 1\nb 2\n'
    """
    if not bodies:
        return b""
    eof = bodies[-1].endswith(EOF)
    parts = [b[: -len(EOF)] if eof and b.endswith(EOF) else b for b in bodies]
    return b"".join(parts) + (EOF if eof else b"")


@dataclass(frozen=True)
class Snapshot:
    """Model families computed at ``at`` (a ``time.monotonic()`` instant), in ``duration``
    seconds; :meth:`encode` renders them once per format."""

    families: list[Metric]
    at: float
    duration: float
    _encoded: dict[str, tuple[bytes, str]] = field(default_factory=dict, compare=False, repr=False)

    def encode(self, accept: str | None) -> tuple[bytes, str]:
        """:func:`encode` of the families, kept per content type (a scrape of kept figures
        costs no rendering)."""
        _, content_type = choose_encoder(accept or "")
        found = self._encoded.get(content_type)
        if found is None:
            found = self._encoded[content_type] = encode(self.families, accept)
        return found


#: Kept figures are recomputed no sooner than this many times the last computation's
#: duration after it: the export takes at most a quarter of a core, whatever the fleet.
DUTY = 4.0


class MetricsExporter:
    """The last computed model families, recomputed by one background thread once older
    than ``refresh`` seconds and :data:`DUTY` times the last computation's duration
    (``refresh=0``: at every scrape, in the scraping thread).

    :meth:`snapshot` answers at once with the figures it has; a scrape that finds none (the
    first) waits for the computation, up to ``wait`` seconds. One long-lived thread does
    every computation (a thread per computation would leave a store cursor behind each).
    """

    def __init__(self, windows: Iterable[Any] | str = DEFAULT_WINDOWS, refresh: float = 10.0) -> None:
        if not (refresh >= 0 and math.isfinite(refresh)):
            raise ConfigError(f"metrics refresh must be a number of seconds >= 0, got {refresh!r}")
        self.windows = parse_windows(windows)
        self.refresh = float(refresh)
        self.errors = ScrapeErrors()
        self._snapshot: Snapshot | None = None
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._service: Service | None = None
        self._wanted = False
        self._attempts = 0  # computations finished or failed
        self._stopped = False

    def compute(self, service: Service) -> Snapshot:
        """Compute the families now, in this thread, and keep them."""
        started = time.monotonic()
        families = model_families(
            service, self.windows, errors=self.errors, stopping=lambda: self._stopped
        )
        done = time.monotonic()
        snap = Snapshot(families, done, done - started)
        with self._cond:
            self._snapshot = snap
        return snap

    def max_age(self, snap: Snapshot) -> float:
        """How long ``snap`` is served before a scrape has it recomputed."""
        return max(self.refresh, DUTY * snap.duration)

    def snapshot(self, service: Service, wait: float = 10.0) -> Snapshot | None:
        """The figures to serve: the kept ones while fresh; else ask for a recomputation and
        serve the kept ones, or, with none kept, wait for it up to ``wait`` seconds (None
        when it did not succeed in time)."""
        if self.refresh == 0:
            return self.compute(service)
        with self._cond:
            snap = self._snapshot
            if snap is not None and time.monotonic() - snap.at < self.max_age(snap):
                return snap
            if self._stopped:
                return snap
            self._service, self._wanted = service, True
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="mlpulse-metrics", daemon=True)
                self._worker.start()
            self._cond.notify_all()
            if snap is None:
                attempts = self._attempts
                self._cond.wait_for(
                    lambda: self._snapshot is not None or self._attempts > attempts or self._stopped,
                    timeout=wait,
                )
                snap = self._snapshot
            return snap

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted or self._stopped)
                if self._stopped:
                    self._worker = None
                    self._cond.notify_all()
                    return
                self._wanted, service = False, self._service
            try:
                if service is not None:
                    self.compute(service)
            except Stopped:
                pass
            except Exception as exc:  # the store failed: keep the last figures, say why
                log.warning("metrics export: computing the series failed: %s: %s",
                            type(exc).__name__, exc)  # fmt: skip
            finally:
                with self._cond:
                    self._attempts += 1
                    self._cond.notify_all()

    # the app starts its background workers once the store is open, stops them before closing

    def start(self) -> None:
        """Allow computations (the first scrape asks for one)."""
        with self._cond:
            self._stopped = False

    def stop(self, timeout: float | None = None) -> bool:
        """Start no more computations and end the thread once a computation in progress is
        done; True when it ended within ``timeout``."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True


__all__ = [
    "DEFAULT_WINDOWS",
    "MetricsExporter",
    "ScrapeErrors",
    "Snapshot",
    "Window",
    "concat",
    "encode",
    "model_families",
    "parse_windows",
    "render",
]
