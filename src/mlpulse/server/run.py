"""``mlpulse serve``: open the store, check the bind is safe, and run uvicorn.

Connections are bounded (``limit_concurrency``) and timed (``header_timeout``,
``timeout_keep_alive``; ``body_timeout`` in the app), see :mod:`.connections`.

uvicorn stops on SIGTERM or Ctrl-C: it stops accepting, lets in-flight requests finish
(``graceful_timeout``), then the app's shutdown stops the alert evaluation loop and the
notification delivery (:mod:`.alerting`) and closes and checkpoints the database.
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from typing import Any

from ..errors import ConfigError
from ..service import Service
from ..store.database import note_server
from . import logs
from .alerting import alerting_workers
from .app import create_app
from .config import ServerConfig
from .connections import fit_fd_limit, guarded_h11
from .keys import KeyStore
from .maintenance import MaintenanceLoop

log = logging.getLogger("mlpulse.server")


def check_bind(config: ServerConfig, keys: KeyStore) -> None:
    """Refuse a non-loopback address without API keys unless explicitly allowed."""
    if config.loopback or keys.enabled or config.allow_unauthenticated:
        return
    raise ConfigError(
        f"refusing to listen on {config.host}: no API key exists, so anyone who can reach "
        f"this address could read and write. Create one (mlpulse keys create --db {config.db} "
        "--scope admin), or pass --allow-unauthenticated if a proxy or firewall guards it"
    )


def serve(config: ServerConfig) -> None:
    """Run the server in this process until SIGTERM / Ctrl-C."""
    import uvicorn

    logs.configure(config.log_level, config.log_format)
    service = Service.open(
        config.db, retention=config.retention, profile_workers=config.profile_workers
    )
    try:
        keys = KeyStore(service.store)
        check_bind(config, keys)
        # rules are stored (or refused) before the server answers anything
        workers = alerting_workers(service, config)
        workers.append(MaintenanceLoop(service, config.maintenance_seconds))
        # the app closes (and checkpoints) the database at shutdown
        app = create_app(config, service, close_service=True, background=workers)
        if service.profiler is not None:
            service.profiler.start()  # the first large batch finds its worker ready
    except BaseException:
        service.close()
        raise
    if not keys.enabled:
        log.warning("no API key exists: the API is open to anyone who can reach it")
    connections = fit_fd_limit(config.limit_concurrency)
    scheme = "https" if config.ssl_certfile else "http"
    host = config.host if ":" not in config.host else f"[{config.host}]"
    note = note_server(config.db, f"{scheme}://{host}:{config.port}")
    try:
        _run(uvicorn, app, config, connections)
    finally:
        if note:
            with suppress(OSError):
                os.unlink(note)


def _run(uvicorn: Any, app: Any, config: ServerConfig, connections: int) -> None:
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_config=None,
        access_log=False,
        ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile,
        forwarded_allow_ips=config.forwarded_allow_ips,
        proxy_headers=True,
        timeout_graceful_shutdown=int(config.graceful_timeout),
        server_header=False,
        # long query strings (many metrics or features) get a JSON 4xx from the app,
        # not a plain-text 400 from the HTTP parser
        h11_max_incomplete_event_size=1024 * 1024,
        # idle and slow clients must not hold connections (file descriptors) for ever
        http=guarded_h11(config.header_timeout, connections),
        limit_concurrency=connections,
        timeout_keep_alive=config.timeout_keep_alive,
    )


__all__ = ["check_bind", "serve"]
