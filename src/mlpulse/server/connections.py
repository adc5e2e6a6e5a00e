"""Connection limits: header and body timeouts, a connection cap, and the fd limit.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits for ever for
a new connection's first request and for a request body. Left alone, a few hundred idle
sockets fill the process's file-descriptor table, ``accept()`` fails with EMFILE, and asyncio
logs that failure thousands of times a second. Here:

- :func:`guarded_h11` is uvicorn's h11 protocol with a **header timeout** (a connection
  that has not sent a whole request line and headers within ``header_timeout`` seconds is
  closed, with a 408 if it sent part of them) and a **connection cap** (a connection beyond
  ``limit_concurrency`` gets a 503 and is closed at once, so it holds no descriptor).
- :class:`BodyTimeout` is ASGI middleware: a request whose body stops arriving for
  ``body_timeout`` seconds is answered 408 and its connection closed.
- :func:`fit_fd_limit` raises the soft ``RLIMIT_NOFILE`` towards the hard limit so that the
  cap, not the kernel, is what refuses connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
from fastapi import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("mlpulse.server")

#: File descriptors kept for the database, its WAL, logs and the interpreter itself.
FD_RESERVE = 64


def _raw_response(status: int, reason: str, detail: str, code: str) -> bytes:
    body = json.dumps({"detail": detail, "code": code, "errors": []}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    )
    if status == 503:
        head += "retry-after: 1\r\n"
    return head.encode("ascii") + b"\r\n" + body


_OVER_CAP = _raw_response(
    503,
    "Service Unavailable",
    "too many open connections (limit_concurrency); retry shortly",
    "unavailable",
)
_HEADER_TIMEOUT = _raw_response(
    408,
    "Request Timeout",
    "the request line and headers did not arrive in time (header_timeout)",
    "request_timeout",
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and a connection cap (see module)."""

    header_timeout: float = 10.0
    max_connections: int | None = None

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            log.warning(  # rate-limited by logs.RateLimit
                "too many open connections (limit_concurrency=%d): refusing one",
                self.max_connections,
            )
            transport.write(_OVER_CAP)
            transport.close()
            self.connections.discard(self)
            return
        # uvicorn's keep-alive timer only starts after a first response: a connection that
        # never sends a request would otherwise stay open for ever
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._check_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._check_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    # -- header timer -------------------------------------------------------------------

    def _check_headers(self) -> None:
        """Headers complete: no timer. Part of a next request buffered: start one. Idle
        between requests: uvicorn's keep-alive timer is in charge."""
        waiting = self.conn.their_state is h11.IDLE
        if self.transport is None or self.transport.is_closing() or not waiting:
            self._cancel_header_timer()
        elif self._header_timer is None and self.conn.trailing_data[0]:
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # part of a request came: say why it is cut off
            self.transport.write(_HEADER_TIMEOUT)
        self.transport.close()


def guarded_h11(header_timeout: float, max_connections: int | None) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with these limits."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )


class RequestTimeout(HTTPException):
    """The request body stopped arriving (FastAPI re-raises HTTPExceptions as they are)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {timeout:g} seconds (body_timeout)",
            headers={"Connection": "close"},
        )


class BodyTimeout:
    """ASGI middleware: waiting longer than ``timeout`` seconds for the next part of a
    request body raises :class:`RequestTimeout`, which the app answers with a 408."""

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        finished = False

        async def timed_receive() -> Any:
            nonlocal finished
            if finished:  # after the body only a disconnect can come: no timeout
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                finished = True
                raise RequestTimeout(self.timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                finished = True
            return message

        await self.app(scope, timed_receive, send)


def fit_fd_limit(limit_concurrency: int) -> int:
    """Raise the soft file-descriptor limit so ``limit_concurrency`` connections fit, as
    far as the hard limit allows; return the connection cap that does fit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return limit_concurrency
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limit_concurrency + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return limit_concurrency
    fitted = max(1, soft - FD_RESERVE)
    log.warning(
        "the open-file limit (%d) leaves room for %d connections, not limit_concurrency=%d; "
        "raise `ulimit -n` or lower limit_concurrency",
        soft,
        fitted,
        limit_concurrency,
        extra={"nofile": soft, "limit_concurrency": fitted},
    )
    return fitted


__all__ = [
    "BodyTimeout",
    "GuardedH11Protocol",
    "RequestTimeout",
    "fit_fd_limit",
    "guarded_h11",
]
