"""Store health: disk-full and fatal DuckDB errors as clear answers, and recovery.

When a write fails because the disk is full, DuckDB refuses the transaction (nothing of it
is stored) and the request is answered **507** with ``code: insufficient_storage``. When a
checkpoint fails that way, DuckDB *invalidates* the database: every later query fails
until it is reopened. The server then answers **503** (``store_invalidated``) to the API,
``/healthz`` and ``/readyz``, and before each request tries (at most once a second) to close
and reopen the file; once space is free, that succeeds and the server carries on with
every acknowledged write intact (they were committed to the WAL before they were answered).

>>> failure_of(OSError(28, "No space left on device"))[:2]
(507, 'insufficient_storage')
>>> failure_of(ValueError("x")) is None
True
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import duckdb
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .config import ServerConfig
from .keys import KeyStore

log = logging.getLogger("mlpulse.server")

_INVALIDATED = ("database has been invalidated", "must be restarted")
_NO_SPACE = {
    "no space left on device": "the disk is full",
    "disk quota exceeded": "the disk quota is used up",
    "file too large": "a file size limit was reached",
}
_NO_SPACE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EFBIG: "a file size limit was reached"}
if hasattr(errno, "EDQUOT"):
    _NO_SPACE_ERRNOS[errno.EDQUOT] = "the disk quota is used up"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _no_space(exc: BaseException) -> str | None:
    """Why a write failed for want of space, if that is what ``exc`` says."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE_ERRNOS:
        return _NO_SPACE_ERRNOS[exc.errno]
    text = str(exc).lower()
    return next((why for fragment, why in _NO_SPACE.items() if fragment in text), None)


def failure_of(exc: BaseException) -> tuple[int, str, str] | None:
    """``(status, code, detail)`` when ``exc`` (or what caused it) says the store cannot
    take the request: invalidated (503), out of space (507) or closed for a reopen (503).
    Details never quote the server's file paths."""
    chain = list(_chain(exc))
    texts = [str(e).lower() for e in chain]
    space = next((why for why in map(_no_space, chain) if why), None)
    for e, text in zip(chain, texts, strict=True):
        if isinstance(e, duckdb.FatalException) or any(f in text for f in _INVALIDATED):
            cause = f" ({space})" if space else ""
            return (
                503,
                "store_invalidated",
                f"the database stopped after a fatal write error{cause} and must be reopened; "
                "the server is reopening it. Retry later (with the same Idempotency-Key, a "
                "batch is stored at most once)",
            )
    if space is not None:
        return (
            507,
            "insufficient_storage",
            f"the server cannot write its database: {space}. This request was not stored; "
            "free space on the server, then retry",
        )
    for e in chain:
        if isinstance(e, duckdb.ConnectionException):
            return (
                503,
                "store_unavailable",
                "the database is being reopened; retry the request",
            )
    return None


class StoreHealth:
    """Knows whether the app's store is usable, and reopens it after invalidation."""

    def __init__(self, app: Any, config: ServerConfig, retry_interval: float = 1.0) -> None:
        self.app = app
        self.config = config
        self.retry_interval = retry_interval
        self.failure: str | None = None  # why the store is unusable, None when it is fine
        self._lock = threading.Lock()
        self._last_attempt = float("-inf")

    def mark(self, exc: BaseException) -> None:
        """Note an error: if it invalidated the store, the store needs a reopen."""
        found = failure_of(exc)
        if found is not None and found[1] == "store_invalidated" and self.failure is None:
            self.failure = str(exc).splitlines()[0][:500]
            self._last_attempt = time.monotonic()  # the first reopen one interval later
            log.error(
                "the database was invalidated by a fatal error; reopening it",
                extra={"db": self.config.db, "error": str(exc)[:2000]},
            )

    def alive(self) -> bool:
        """True when the store answers a trivial query (for ``/healthz``)."""
        if self.failure is None:
            service = getattr(self.app.state, "service", None)
            if service is None:
                return True  # starting: the process itself is alive
            try:
                service.store.fetch_one("SELECT 1")
            except duckdb.Error as exc:
                self.mark(exc)
        return self.failure is None or self.recover()

    def schema_version(self) -> int | None:
        """The database's schema version (None while starting or unusable)."""
        service = getattr(self.app.state, "service", None)
        if service is None or self.failure is not None:
            return None
        try:
            return service.store.schema_version()
        except duckdb.Error as exc:
            self.mark(exc)
            return None

    def recover(self) -> bool:
        """Close and reopen an invalidated store (at most once per ``retry_interval``,
        the first time one interval after the failure); True when it is usable again."""
        if self.failure is None:
            return True
        with self._lock:
            if self.failure is None:
                return True
            now = time.monotonic()
            if now - self._last_attempt < self.retry_interval or self.config.db == ":memory:":
                return False
            self._last_attempt = now
            service = getattr(self.app.state, "service", None)
            if service is None:
                return False
            try:
                # in place: the service's owner (the app, or whoever passed it) closes it
                service.reopen()
            except Exception as exc:
                log.warning(
                    "reopening the database failed (is there free space?): %s",
                    str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__,
                    extra={"db": self.config.db},
                )
                return False
            try:
                keys = KeyStore(service.store)
            except Exception as exc:
                log.warning("reopening the database failed: %s", exc)
                return False
            self.app.state.keys = keys
            log.warning(
                "the database was reopened and is usable again",
                extra={"db": self.config.db, "after": self.failure},
            )
            self.failure = None
            return True

    def unavailable(self) -> JSONResponse:
        """The 503 answered while the store is invalidated (the shape of ``ErrorBody``)."""
        detail = (
            "the database stopped after a fatal write error (is the disk full?) and could not "
            "be reopened yet; this request was not stored: retry later"
        )
        return JSONResponse(
            {"detail": detail, "code": "store_invalidated", "errors": []},
            status_code=503,
            headers={"Retry-After": "1"},
        )


class Recover:
    """ASGI middleware: while the store is invalidated, try to reopen it before a request;
    if that fails, answer ``/api`` requests 503 at once."""

    def __init__(self, app: Any, health: StoreHealth) -> None:
        self.app = app
        self.health = health

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        health = self.health
        if scope["type"] == "http" and health.failure is not None:
            recovered = await run_in_threadpool(health.recover)
            path = scope.get("path", "")
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if not recovered and path.startswith("/api/"):
                await health.unavailable()(scope, receive, send)
                return
        await self.app(scope, receive, send)


__all__ = ["Recover", "StoreHealth", "failure_of"]
