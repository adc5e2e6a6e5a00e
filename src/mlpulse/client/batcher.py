"""Background batching of single ``log`` / ``log_feedback`` calls.

The caller appends a tuple to a deque (a few microseconds, no lock); one daemon thread
turns what has accumulated into Arrow tables every ``interval`` seconds or ``max_rows``
rows and hands them to a sink. The thread never lets an exception escape: a batch the sink
rejects is reported to ``on_error`` with its rows, so they can be quarantined.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from .._arrow import rows_to_table  # the union of the rows' keys: log() rows differ

log = logging.getLogger("mlpulse.batcher")

Item = tuple[tuple[Any, ...], dict[str, Any]]  # (destination key, row)
Sink = Callable[[tuple[Any, ...], pa.Table], None]


class Batcher:
    """Accumulates rows per destination and delivers them as tables from one thread."""

    def __init__(
        self,
        sink: Sink,
        on_error: Callable[[tuple[Any, ...], pa.Table | list[dict[str, Any]], BaseException], None],
        *,
        interval: float = 0.2,
        max_rows: int = 20_000,
        max_pending: int = 1_000_000,
    ) -> None:
        self._sink = sink
        self._on_error = on_error
        self.interval = interval
        self.max_rows = max_rows
        self.max_pending = max_pending
        self._queue: deque[Item] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._enqueued = 0
        self._done = 0
        self.dropped = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="mlpulse-batcher", daemon=True)
        self._thread.start()

    def put(self, key: tuple[Any, ...], row: dict[str, Any]) -> None:
        """Queue one row; never blocks. Past ``max_pending`` rows the row is dropped and counted."""
        if self._enqueued - self._done >= self.max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("mlpulse: %d rows dropped: the background queue is full", self.dropped)
            return
        self._queue.append((key, row))
        self._enqueued += 1
        if len(self._queue) >= self.max_rows:
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every row queued so far has been delivered (or ``timeout`` passes)."""
        target = self._enqueued
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._done < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(timeout=0.05 if remaining is None else min(0.05, remaining))
                self._wake.set()
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        self.flush(timeout)
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=5)

    @property
    def pending(self) -> int:
        return self._enqueued - self._done

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        while self._queue:
            items: list[Item] = []
            while self._queue and len(items) < self.max_rows:
                items.append(self._queue.popleft())
            groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for key, row in items:
                groups.setdefault(key, []).append(row)
            for key, rows in groups.items():
                try:
                    table = rows_to_table(rows)
                except BaseException as exc:  # never let the thread die
                    self._report(key, rows, exc)
                    continue
                try:
                    self._sink(key, table)
                except BaseException as exc:
                    self._report(key, table, exc)
            with self._idle:
                self._done += len(items)
                self._idle.notify_all()

    def _report(self, key: tuple[Any, ...], rows: Any, exc: BaseException) -> None:
        try:
            self._on_error(key, rows, exc)
        except BaseException:  # the error handler itself failed: log, keep running
            log.exception("mlpulse: could not record a failed batch for %s", key)
