"""Delivery of queued notifications: a worker drains the outbox, with retries and backoff.

The evaluator writes notifications into the outbox in the same transaction as the alert
state that caused them; :class:`DeliveryWorker` sends them afterwards, so a notifier that is
down delays its own notifications and nothing else:

- the notifications due are grouped by notifier, each group sent by its own thread; each
  send is bounded by the notifier's ``timeout``, and a notifier still sending from an
  earlier round is skipped, so a slow receiver holds up only its own notifications;
- once a receiver does not answer (refused, timed out), the rest of its notifications in
  that round fail with the same error instead of each waiting for the timeout;
- a failed send is retried after ``base * factor ** attempts`` seconds (capped, with jitter),
  and given up after ``max_attempts`` (a dead letter, kept in the outbox with its error and
  logged once at WARNING); an error that retrying cannot fix (HTTP 4xx, an unset environment
  variable, a notifier that no longer exists) is given up at once;
- within one notifier, a notification waits while an earlier one about the same alert is
  being retried, so a ``resolved`` never overtakes its ``firing`` (the worker remembers
  this in memory: after a restart, order follows the outbox's retry times).

Errors stored in the outbox and logged never contain secrets (see
:mod:`mlpulse.alerts.notifiers`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import ConfigError, RuleError
from ..store import alerts as outbox
from .notifiers import NotifierError, send

log = logging.getLogger("mlpulse.alerts")

#: How long past its retry time a notification being retried holds back later ones of its
#: alerts (it is normally retried first; this only bounds a row that vanished).
HOLD = timedelta(minutes=1)


class DeliveryWorker:
    """A daemon thread sending what is due in the outbox every ``interval`` seconds.

    ``notifiers_loader`` returns the notifier configs (as stored: environment references not
    expanded); it is called each round, so edited notifiers take effect without a restart.
    ``backoff`` is ``(base seconds, factor, cap seconds)``; ``jitter`` shortens each delay by
    up to that fraction, so notifications that failed together do not retry together.

    >>> from mlpulse.store.database import Store
    >>> store = Store(":memory:")
    >>> DeliveryWorker(store, lambda: []).run_once()
    0
    >>> store.close()
    """

    def __init__(
        self,
        store: Any,
        notifiers_loader: Callable[[], list[dict]],
        *,
        interval: float = 1.0,
        max_attempts: int = 8,
        backoff: tuple[float, float, float] = (1.0, 2.0, 300.0),
        jitter: float = 0.2,
        batch: int = 100,
    ) -> None:
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {max_attempts}")
        self.store = store
        self.load = notifiers_loader
        self.interval = float(interval)
        self.max_attempts = int(max_attempts)
        self.backoff = backoff
        self.jitter = float(jitter)
        self.batch = int(batch)
        self._random = random.Random()
        self._lock = threading.Lock()
        self._lanes: dict[str, threading.Thread] = {}  # notifier -> its latest sending thread
        # (notifier, alert fingerprints) -> the notification being retried: later ones about
        # the same alerts wait for it, so a resolve never overtakes its trigger
        self._waiting: dict[tuple[str, str], tuple[int, datetime]] = {}
        self._wait_lock = threading.Lock()
        self._last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (no-op when it runs)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="mlpulse-alert-delivery", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the thread to stop and wait up to ``timeout`` seconds; whether it stopped. Sends
        in flight finish first, each bounded by its notifier's timeout."""
        self._stop.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not (thread is not None and thread.is_alive()) and not any(
            lane.is_alive() for lane in lanes
        )

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._round(datetime.now(UTC), None, wait=False)
                self._last_error = ""
            except Exception as exc:  # the store closed under us, say: keep the thread alive
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_error:  # once, not every interval
                    log.warning("alert delivery round failed: %s", text)
                self._last_error = text
            self._stop.wait(self.interval)

    # -- rounds ------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> int:
        """Send every notification due at ``now`` (default: the current time), wait for the
        sends, and return how many were delivered. Outcomes are recorded at ``now`` when it
        is given (tests step time without sleeping)."""
        return self._round(now or datetime.now(UTC), now, wait=True)

    def _round(self, at: datetime, fixed: datetime | None, *, wait: bool) -> int:
        """Start one lane (a thread) per notifier with notifications due, except notifiers
        whose lane from an earlier round is still sending: a slow notifier holds up only its
        own notifications."""

        def clock() -> datetime:
            return fixed if fixed is not None else datetime.now(UTC)

        sent: list[int] = []
        started = []
        with self._lock:  # one selection at a time: no notification is picked twice
            busy = {name for name, lane in self._lanes.items() if lane.is_alive()}
            items = [i for i in outbox.due(self.store, at, self.batch) if i.notifier not in busy]
            if not items:
                return 0
            configs = {c.get("name"): c for c in self.load()}
            groups: dict[str, list[outbox.OutboxItem]] = {}
            for item in items:
                if item.notifier in configs:
                    groups.setdefault(item.notifier, []).append(item)
                else:
                    reason = f"notifier {item.notifier!r} is not configured any more"
                    self._give_up(item, reason, clock())
            for name, group in groups.items():

                def lane(config: dict = configs[name], group: list = group) -> None:
                    sent.append(self._deliver(config, group, at, clock))

                thread = threading.Thread(
                    target=self._guard, args=(lane,), name=f"mlpulse-notify:{name}", daemon=True
                )
                self._lanes[name] = thread
                started.append(thread)
                thread.start()
        if wait:
            for thread in started:
                thread.join()
        return sum(sent)

    @staticmethod
    def _guard(lane: Callable[[], None]) -> None:
        try:
            lane()
        except Exception as exc:  # the store closed while sending, say
            log.warning("alert delivery failed: %s: %s", type(exc).__name__, exc)

    def _deliver(
        self,
        config: dict,
        items: list[outbox.OutboxItem],
        at: datetime,
        clock: Callable[[], datetime],
    ) -> int:
        """Send one notifier's notifications in order; how many were delivered. Once the
        receiver does not answer at all, the rest are not tried: they fail with the same
        error (and back off alike), so a dead receiver costs one timeout per round."""
        sent = 0
        down: NotifierError | None = None
        for item in items:
            key = (item.notifier, _subject(item))
            if self._held(key, item.id, at):
                continue  # an earlier notification about these alerts is being retried
            if down is not None:
                self._failed(item, key, f"not tried, receiver down: {down}", True, clock())
                continue
            try:
                send(config, item.payload)
            except (NotifierError, RuleError) as exc:
                retryable = isinstance(exc, NotifierError) and exc.retryable
                self._failed(item, key, str(exc), retryable, clock())
                if isinstance(exc, NotifierError) and exc.unreachable:
                    down = exc
                continue
            except Exception as exc:  # a bug: recorded without its message (it may hold secrets)
                reason = f"notifier {config.get('name')!r}: unexpected {type(exc).__name__}"
                self._failed(item, key, reason, True, clock())
                continue
            outbox.mark_sent(self.store, item.id, clock())
            self._release(item.id)
            sent += 1
        return sent

    def delay(self, attempts: int) -> float:
        """Seconds before the next try of a notification tried ``attempts`` times.

        >>> w = DeliveryWorker(None, list, jitter=0)
        >>> [w.delay(n) for n in (1, 2, 3, 20)]
        [1.0, 2.0, 4.0, 300.0]
        """
        base, factor, cap = self.backoff
        raw = base * factor ** min(max(attempts - 1, 0), 64)
        return min(cap, raw) * (1 - self.jitter * self._random.random())

    def _failed(
        self,
        item: outbox.OutboxItem,
        key: tuple[str, str],
        error: str,
        retryable: bool,
        when: datetime,
    ) -> None:
        attempts = item.attempts + 1
        if not retryable or attempts >= self.max_attempts:
            self._give_up(item, error, when, attempts)
            return
        wait = self.delay(attempts)
        retry = when + timedelta(seconds=wait)  # from the failure: a timeout took a while
        with self._wait_lock:
            earlier = self._waiting.get(key)
            if earlier is None or earlier[0] == item.id:
                self._waiting[key] = (item.id, retry)
        log.info(
            "notification %d to %r failed (attempt %d of %d), next try in %.1fs: %s",
            item.id, item.notifier, attempts, self.max_attempts, wait, error,
        )  # fmt: skip
        outbox.mark_failed(self.store, item.id, when, error, retry)

    def _give_up(
        self, item: outbox.OutboxItem, error: str, when: datetime, attempts: int | None = None
    ) -> None:
        attempts = item.attempts + 1 if attempts is None else attempts
        log.warning(
            "notification %d to %r given up after %d attempt%s: %s",
            item.id, item.notifier, attempts, "" if attempts == 1 else "s", error,
        )  # fmt: skip
        outbox.mark_failed(self.store, item.id, when, error, None)
        self._release(item.id)

    def _held(self, key: tuple[str, str], item_id: int, at: datetime) -> bool:
        """Whether an earlier notification of the same notifier and alerts is being
        retried (and not long overdue: a vanished row holds nothing back for long)."""
        with self._wait_lock:
            earlier = self._waiting.get(key)
        return earlier is not None and earlier[0] != item_id and at <= earlier[1] + HOLD

    def _release(self, item_id: int) -> None:
        with self._wait_lock:
            for key in [k for k, (i, _) in self._waiting.items() if i == item_id]:
                del self._waiting[key]


def _subject(item: outbox.OutboxItem) -> str:
    """What a notification is about, for ordering: its alerts' fingerprints (a resolve
    follows the trigger of the same alert), else its group key."""
    alerts = item.payload.get("alerts") or []
    prints = sorted(str(a.get("fingerprint")) for a in alerts if a.get("fingerprint"))
    return "|".join(prints) or str(item.payload.get("group_key") or item.id)


__all__ = ["DeliveryWorker"]
