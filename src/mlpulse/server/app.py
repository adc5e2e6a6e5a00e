"""The ASGI application: ``create_app`` wires the store, keys, limits, routes and logs.

>>> from mlpulse.server import ServerConfig, create_app
>>> app = create_app(ServerConfig(db=":memory:"))
>>> paths = [getattr(r, "path", "") for r in app.routes]
>>> sorted(p for p in paths if p.startswith("/health") or p == "/readyz")
['/healthz', '/readyz']
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..export.prometheus import MetricsExporter
from ..service import Service
from . import errors
from .bodies import Limits
from .config import ServerConfig
from .connections import BodyTimeout
from .health import Recover, StoreHealth
from .keys import KeyStore
from .routes import metrics as metrics_route
from .routes import router
from .schemas import Health
from .ui import router as ui_router

log = logging.getLogger("mlpulse.server")
access = logging.getLogger("mlpulse.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AccessLog:
    """ASGI middleware: one structured log line per request, and an ``X-Request-ID``."""

    def __init__(self, app: Any, stats: metrics_route.ServerStats | None = None) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        status = [0]

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.stats is not None:
                self.stats.count(scope, status[0])
            state = scope.get("state") or {}
            client = scope.get("client")
            access.info(
                "%s %s %d",
                scope.get("method"),
                scope.get("path"),
                status[0],
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status[0],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "rows": state.get("rows"),
                    "key_id": state.get("key_id"),
                    "client": client[0] if client else None,
                    "request_id": request_id,
                },
            )


def create_app(
    config: ServerConfig | None = None,
    service: Service | None = None,
    *,
    close_service: bool | None = None,
    background: Sequence[Any] = (),
) -> FastAPI:
    """The mlpulse HTTP API over ``service`` (a :class:`~mlpulse.service.Service`),
    or over the store at ``config.db``.

    Without a ``service``, the app opens one at startup and closes it (checkpointing the
    database) at shutdown; a given one stays open for its owner to close, unless
    ``close_service=True`` hands it to the app (``mlpulse serve`` does: uvicorn ends the
    process by re-raising SIGTERM right after the app's shutdown).

    ``background``: objects with ``start()`` and ``stop(timeout)`` (the alert evaluation
    loop and notification delivery of ``mlpulse serve``), started once the store is open and
    stopped before it is closed.
    """
    config = config or ServerConfig()
    # /metrics: model series recomputed in the background, started and stopped with the rest
    exporter = MetricsExporter(config.metrics_windows, config.metrics_refresh)
    background = [*background, exporter]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = getattr(app.state, "service", None) is None
        close = opened if close_service is None else close_service
        if opened:
            app.state.service = Service.open(
                config.db, retention=config.retention, profile_workers=config.profile_workers
            )
            try:
                app.state.keys = KeyStore(app.state.service.store)
            except BaseException:
                app.state.service.close()
                raise
        for worker in background:
            worker.start()
        app.state.ready = True
        log.info(
            "mlpulse server ready",
            extra={"db": config.db, "auth": app.state.keys.enabled, "version": __version__},
        )
        try:
            yield
        finally:
            app.state.ready = False
            for worker in background:
                # a round in progress finishes first: the store stays open until then
                if not await run_in_threadpool(worker.stop, config.graceful_timeout):
                    log.warning("a background worker did not stop in time: %r", worker)
            if close:
                # every ingest request was committed before it was answered: closing
                # checkpoints the database so the WAL is folded into the file
                await run_in_threadpool(app.state.service.close)
                app.state.service = None
                log.info("mlpulse server stopped; database closed", extra={"db": config.db})
            else:
                log.info("mlpulse server stopped", extra={"db": config.db})

    app = FastAPI(
        title="mlpulse",
        version=__version__,
        summary="Observability for machine-learning systems in production",
        description=(
            "Register models, ingest predictions and late labels (JSON, NDJSON or Arrow IPC), "
            "and query metrics over any window. See docs/http-api.md."
        ),
        lifespan=lifespan,
        root_path=config.root_path,
    )
    app.state.config = config
    app.state.ready = False
    app.state.limits = Limits(
        max_body_bytes=config.max_body_bytes,
        max_rows=config.max_rows,
        max_features=config.max_features,
        max_string_length=config.max_string_length,
    )
    app.state.service = service
    if service is not None:
        app.state.keys = KeyStore(service.store)
    app.state.health = health = StoreHealth(app, config)
    app.state.metrics_exporter = exporter
    app.state.server_stats = stats = metrics_route.ServerStats()
    errors.install(app)
    app.include_router(router)
    app.include_router(metrics_route.router)
    app.include_router(ui_router)  # the web dashboard: /, /models/{name}, ... (no API)

    @app.get(
        "/healthz",
        response_model=Health,
        responses=errors.error_responses(503),
        tags=["health"],
    )
    def healthz() -> Any:
        """The process is up and its database usable (no authentication); 503 once a fatal
        error (a full disk) invalidated the database and reopening it failed."""
        if not health.alive():
            return health.unavailable()
        return JSONResponse(
            {"status": "ok", "version": __version__, "schema_version": health.schema_version()}
        )

    @app.get(
        "/readyz",
        response_model=Health,
        responses=errors.error_responses(503),
        tags=["health"],
    )
    def readyz(request: Request) -> Any:
        """The store is open and answers queries (no authentication)."""
        service = getattr(request.app.state, "service", None)
        if not request.app.state.ready or service is None:
            return errors.error_response(503, "starting or stopping", "not_ready")
        if health.failure is not None:
            return health.unavailable()
        try:
            schema = service.store.schema_version()
        except Exception as exc:  # the store is unusable: say so, do not crash
            health.mark(exc)
            log.warning("readiness check failed: %s", exc)
            return errors.error_response(503, "the database does not answer", "not_ready")
        return JSONResponse({"status": "ready", "version": __version__, "schema_version": schema})

    # outermost last: access log, then store recovery, then the body timeout
    app.add_middleware(BodyTimeout, timeout=config.body_timeout)
    app.add_middleware(Recover, health=health)
    app.add_middleware(AccessLog, stats=stats)
    return app


__all__ = ["AccessLog", "create_app"]
