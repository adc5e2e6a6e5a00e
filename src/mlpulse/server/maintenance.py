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

from ..service import Service
from .loop import PeriodicLoop

log = logging.getLogger("mlpulse.retention")


class MaintenanceLoop(PeriodicLoop):
    """Calls ``service.maintain()`` every ``interval`` seconds (the first run one interval
    after the start)."""

    thread_name = "mlpulse-maintenance"

    def __init__(self, service: Service, interval: float) -> None:
        super().__init__(interval)
        self.service = service
        self.runs = 0
        self.failures = 0

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


__all__ = ["MaintenanceLoop"]
