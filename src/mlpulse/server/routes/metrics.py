"""``GET /metrics``: every model's series for Prometheus (OpenMetrics or text format), and the
server's own health (``mlpulse_server_*``).

The model series come from the app's :class:`~mlpulse.export.prometheus.MetricsExporter`
(figures at most ``metrics_refresh`` seconds old); the server's own series are read at each
scrape. A ``read`` key is needed once keys exist, unless ``metrics_public`` is set.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ... import __version__
from ...export.prometheus import MetricsExporter, concat, encode
from ..errors import error_responses
from .common import bearer, require, service

router = APIRouter()

_READ = require("read").dependency
#: Methods counted under their own name; any other is ``other`` (bounded label values).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Ingest routes by the last segment of their path: the ``kind`` of ingested rows.
_INGEST_KINDS = frozenset({"predictions", "feedback", "training-features"})


class ServerStats:
    """Requests by method, route (its path template: bounded) and status, and rows received
    by ingest requests; the access-log middleware counts every request here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = {}
        self.rows: dict[str, int] = {}

    def count(self, scope: dict[str, Any], status: int) -> None:
        method = scope.get("method") or ""
        method = method if method in _METHODS else "other"
        route = _template(scope)
        rows = (scope.get("state") or {}).get("rows")
        key = (method, route, str(status))
        with self._lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            kind = route.rsplit("/", 1)[-1]
            if isinstance(rows, int) and kind in _INGEST_KINDS and 200 <= status < 300:
                self.rows[kind] = self.rows.get(kind, 0) + rows

    def families(self) -> list[Metric]:
        requests = CounterMetricFamily(
            "mlpulse_server_http_requests", "HTTP requests answered, by method, route template "
            "and status", labels=["method", "route", "status"],
        )  # fmt: skip
        rows = CounterMetricFamily(
            "mlpulse_server_ingest_rows", "Rows received by successful ingest requests "
            "(stored or quarantined)", labels=["kind"],
        )  # fmt: skip
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                requests.add_metric([method, route, status], n)
            for kind, n in sorted(self.rows.items()):
                rows.add_metric([kind], n)
        return [requests, rows]


def _template(scope: dict[str, Any]) -> str:
    """The matched route's path template under its routers' prefixes
    (``/api/v1/models/{name}``), or ``unmatched``. The route knows its own template only;
    the prefix is the request path's leading segments, as many as the template leaves (a
    parameter matches one segment), so no user data is ever part of it."""
    route = getattr(scope.get("route"), "path", None)
    path = scope.get("path")
    if not isinstance(route, str) or not isinstance(path, str):
        return "unmatched"
    parts = path.split("/")
    depth = route.count("/")
    if depth == 0 or depth >= len(parts):
        return route
    return "/".join(parts[: len(parts) - depth]) + route


def _metrics_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """A ``read`` key (as for every read route), unless the server's metrics are public."""
    if not request.app.state.config.metrics_public:
        _READ(request, credentials)


def _database_bytes(path: str) -> int:
    """Bytes of the database file and its write-ahead log (0 in memory)."""
    total = 0
    if path != ":memory:":
        for name in (path, f"{path}.wal"):
            with suppress(OSError):  # no WAL, or the file just went
                total += os.stat(name).st_size
    return total


def _server_families(
    request: Request, path: str, scrape: float | None, age: float | None
) -> Iterable[Metric]:
    yield from request.app.state.server_stats.families()
    size = GaugeMetricFamily(
        "mlpulse_server_database_size", "Size of the database file and its WAL", unit="bytes"
    )
    size.add_metric([], _database_bytes(path))
    yield size
    if scrape is not None and age is not None:
        duration = GaugeMetricFamily(
            "mlpulse_server_scrape_duration", "Time the served model series took to compute",
            unit="seconds",
        )  # fmt: skip
        duration.add_metric([], scrape)
        yield duration
        old = GaugeMetricFamily(
            "mlpulse_server_scrape_age", "Age of the served model series (they are recomputed "
            "once older than metrics_refresh)", unit="seconds",
        )  # fmt: skip
        old.add_metric([], age)
        yield old
    info = GaugeMetricFamily("mlpulse_server_info", "The server's version", labels=["version"])
    info.add_metric([__version__], 1)
    yield info


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/openmetrics-text": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
            "description": "every model's series and the server's own, in OpenMetrics when "
            "the Accept header asks for it, else in the Prometheus text format",
        },
        **error_responses(401, 403, 503),
    },
    tags=["health"],
)
def metrics(request: Request, _: Annotated[None, Depends(_metrics_access)]) -> Response:
    """Prometheus series of every model (see docs/prometheus.md) and of the server."""
    svc = service(request)
    exporter: MetricsExporter = request.app.state.metrics_exporter
    # Prometheus says how long it waits; the first scrape waits for the figures until then
    try:
        wait = float(request.headers.get("x-prometheus-scrape-timeout-seconds", "10")) - 0.5
    except ValueError:
        wait = 9.5
    snap = exporter.snapshot(svc, wait=max(0.5, min(wait, 60.0)))
    accept = request.headers.get("accept")
    # the kept model series are rendered once; the server's own at every scrape
    bodies = [snap.encode(accept)[0]] if snap is not None else []
    scrape = snap.duration if snap is not None else None
    age = time.monotonic() - snap.at if snap is not None else None
    body, content_type = encode(_server_families(request, svc.path, scrape, age), accept)
    return Response(concat([*bodies, body]), media_type=content_type)


__all__ = ["ServerStats", "router"]
