"""The server's maintenance loop: ``mlpulse serve`` applies the retention policy
(``--raw-retention`` and friends) every ``maintenance_interval``.

The first run comes one interval after the start, so a server started to answer a few
queries never rewrites its file at once. Each run works in small transactions
(:mod:`mlpulse.store.retention`), so ingest waits at most for one chunk; a run that fails
is logged and the loop goes on, and a crash (even ``kill -9``) loses nothing: the next run
finishes what the last one left.
"""

from __future__ import annotations

import logging
import threading

from ..service import Service

log = logging.getLogger("mlpulse.retention")


class MaintenanceLoop:
    """A daemon thread calling ``service.maintain()`` every ``interval`` seconds."""

    def __init__(self, service: Service, interval: float) -> None:
        self.service = service
        self.interval = float(interval)
        self.runs = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mlpulse-maintenance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the run in progress (if any); whether the thread ended in time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def run_once(self) -> bool:
        """One maintenance run now; whether it succeeded (failures are logged, not raised)."""
        try:
            done = self.service.maintain()
        except Exception as exc:  # a closed or full store, a bug: log it, keep the loop
            self.failures += 1
            log.error("maintenance failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
            return False
        self.runs += 1
        log.info("maintenance done", extra=done)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()


__all__ = ["MaintenanceLoop"]
