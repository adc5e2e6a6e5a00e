"""Structured logs: one JSON object per line on stderr.

Every record has ``ts``, ``level``, ``logger`` and ``message``; fields passed with
``extra={...}`` (method, path, status, duration_ms, rows, ...) are added as keys. Access
logs come from the app's middleware (``mlpulse.access``), so uvicorn's own is switched off.

Messages that an attacker or an overload can trigger once per connection (``accept()``
failing with "Too many open files", the connection cap, uvicorn's concurrency limit) pass
:class:`RateLimit`: one per kind per interval, the next one saying how many were dropped.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: message fragment -> kind of a record that can repeat once per connection
_FLOODS = {
    "out of system resource": "accept",  # asyncio: accept() failed (EMFILE, ...)
    "Too many open files": "accept",
    "_start_serving": "accept",  # asyncio re-arming accept() after such a failure
    "_accept_connection": "accept",
    "Exceeded concurrency limit": "concurrency",  # uvicorn's limit_concurrency
    "too many open connections": "concurrency",  # mlpulse's connection cap
}


def flood_kind(record: logging.LogRecord) -> str | None:
    """The kind of a record that may repeat per connection, or None for ordinary ones."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS:
        return "accept"
    try:
        text = record.getMessage()
    except Exception:  # a bad format string: leave the record to the handler
        return None
    for fragment, kind in _FLOODS.items():
        if fragment in text:
            return kind
    return None


class RateLimit(logging.Filter):
    """Lets one record of each flood kind through per ``interval`` seconds and counts the
    others; the next one let through carries ``suppressed`` (how many were dropped).

    >>> limit = RateLimit(interval=10.0, clock=lambda: 0.0)
    >>> record = lambda: logging.makeLogRecord({"msg": "socket.accept() out of system resource"})
    >>> [limit.filter(record()) for _ in range(3)]
    [True, False, False]
    >>> limit.suppressed
    {'accept': 2}
    """

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.suppressed: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        kind = flood_kind(record)
        if kind is None:
            return True
        with self._lock:
            now = self.clock()
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
                return False
            self._last[kind] = now
            dropped = self.suppressed.pop(kind, 0)
        if dropped:
            record.suppressed = dropped
            record.msg = f"{record.msg} (and {dropped} more like it since the last one logged)"
        return True


def configure(level: str = "info", fmt: str = "json", interval: float = 10.0) -> None:
    """Send mlpulse's, uvicorn's and asyncio's logs to stderr, as JSON lines or plain text,
    with per-connection floods rate-limited (one per kind per ``interval`` seconds)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RateLimit(interval))
    for name in ("mlpulse", "uvicorn", "uvicorn.error", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


__all__ = ["JsonFormatter", "RateLimit", "configure", "flood_kind"]
