"""A background loop that runs a job every ``interval`` seconds while the server runs: the
alert evaluation and the retention maintenance are two of them."""

from __future__ import annotations

import threading
import time


class PeriodicLoop:
    """A daemon thread calling :meth:`run_once` on a fixed schedule: at once when
    ``immediate``, else one interval after the start; a run that overruns skips the ticks
    it missed. :meth:`run_once` logs its own failures and returns whether it succeeded."""

    thread_name = "mlpulse-loop"
    immediate = False

    def __init__(self, interval: float) -> None:
        self.interval = float(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the run in progress (if any); whether the thread ended in time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        started = time.monotonic()
        ticks = 0
        if not self.immediate:
            if self._stop.wait(self.interval):
                return
            ticks = 1
        while not self._stop.is_set():
            self.run_once()
            elapsed = time.monotonic() - started
            ticks = max(ticks + 1, int(elapsed // self.interval) + 1)
            self._stop.wait(max(0.0, started + ticks * self.interval - time.monotonic()))


__all__ = ["PeriodicLoop"]
