"""The server's alerting loop: ``mlpulse serve`` evaluates the stored rules every
``eval_interval`` and delivers the notifications the evaluations queue.

Rules live in the database, so the loop always runs (a round without rules costs a query);
``--rules FILE`` stores a file's rules before the server starts answering (a bad rule stops
the start with the rule and field named). A round that fails is logged and the loop goes
on; state and the notification outbox are in the database, so a restart (even ``kill -9``)
continues where the last committed round left off, and the evaluator replays the rounds
missed while the server was down.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ..service import Service
from ..store.alerts import load_notifiers
from .config import ServerConfig
from .loop import PeriodicLoop

log = logging.getLogger("mlpulse.alerts")


class EvaluationLoop(PeriodicLoop):
    """Calls ``service.evaluate()`` every ``interval`` seconds (the first round at once)."""

    thread_name = "mlpulse-alert-eval"
    immediate = True

    def __init__(self, service: Service, interval: float) -> None:
        super().__init__(interval)
        self.service = service
        self.rounds = 0
        self.failures = 0
        self._last_error = ""

    def run_once(self) -> bool:
        """One evaluation round now; whether it succeeded (a failure is logged, once per
        distinct error, and never raised)."""
        try:
            frame = self.service.evaluate()
        except Exception as exc:  # a closed or full store, a bug: log it, keep the loop
            self.failures += 1
            text = f"{type(exc).__name__}: {exc}"
            if text != self._last_error:
                log.error("alert evaluation failed: %s", text, exc_info=exc)
            self._last_error = text
            return False
        self.rounds += 1
        if self._last_error:
            log.info("alert evaluation works again")
            self._last_error = ""
        firing = int((frame["state"] == "firing").sum()) if len(frame) else 0
        log.debug("alert evaluation", extra={"pairs": len(frame), "firing": firing})
        return True


class _CurrentStore:
    """The service's store as it is now (the server reopens it after a fatal error)."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service.store, name)


def alerting_workers(service: Service, config: ServerConfig) -> list[Any]:
    """Store ``config.rules`` (raises ``RuleError`` naming the rule and field), set the
    evaluation settings, and return the threads to run while serving: the evaluation loop
    and the notification delivery worker."""
    interval = config.eval_seconds
    if config.rules:
        names = service.load_rules(config.rules, replace=config.replace_rules)
        log.info("alert rules loaded", extra={"rules": len(names), "file": config.rules})
    service.alert_settings = dataclasses.replace(
        service.alert_settings, interval=interval, external_url=config.url
    )
    log.info("alert rules are evaluated every %gs", interval, extra={"eval_interval": interval})
    workers: list[Any] = [EvaluationLoop(service, interval)]
    from ..alerts.delivery import DeliveryWorker

    # the worker needs the stored configs themselves (service.notifiers() redacts secrets)
    workers.append(
        DeliveryWorker(_CurrentStore(service), lambda: load_notifiers(service.store), interval=1.0)
    )
    return workers


__all__ = ["EvaluationLoop", "alerting_workers"]
