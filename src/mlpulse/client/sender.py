"""The background sender: delivers envelopes in order, retries, and spools.

Envelopes wait in memory (bounded by ``max_memory_bytes``) or in the disk spool; the
sender always delivers the one with the smallest sequence number next, so the server sees
batches in the order they were logged.

Two kinds of failure are told apart:

* *the server is down*: a network error, or a status that says "not now" (429, 502, 503,
  504, 507, ...; :data:`~mlpulse.client.http.UNAVAILABLE`). The sender enters the *down*
  state: it backs off (exponential, full jitter), moves what waits in memory to the
  spool, sends new envelopes there until the spool is drained, and retries for as long as
  it takes.
* *the server answers this batch with an error*: a 4xx other than 408/425/429 is final at
  once; a 500 (or another 5xx, or a request that cannot even be sent) is retried, and
  after ``max_attempts`` such answers for the same batch it is final too. A final batch is
  kept under ``mlpulse-rejected/`` in the spool folder with the reason, counted, and a
  caller waiting for it gets the error; the batches behind it are delivered, so one
  poison batch never stalls the queue.

If the spool cannot be written (a full disk), batches wait in memory up to
``max_memory_bytes``; only past that bound are they dropped and counted.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from typing import Any

import httpx

from .http import UNAVAILABLE, HttpSession, RemoteError, backoff, error_for, retry_after
from .spool import DiskSpool, Envelope

log = logging.getLogger("mlpulse.remote")

POLICIES = ("spool", "block", "drop")


class Sender:
    """Ordered, retried, spooled delivery of envelopes from one thread."""

    def __init__(
        self,
        transport: HttpSession,
        spool: DiskSpool | None,
        *,
        max_memory_bytes: int,
        policy: str = "spool",
        block_timeout: float = 0.5,
        max_backoff: float = 2.0,
        max_attempts: int = 5,
    ) -> None:
        self.transport = transport
        self.max_attempts = max_attempts
        self._failing: tuple[str, int] | None = None  # (key, failed attempts) of the head
        self.spool = spool
        self.max_memory_bytes = max_memory_bytes
        self.policy = policy
        self.block_timeout = block_timeout
        self.max_backoff = max_backoff
        self._seq = itertools.count(1)
        self._memory: deque[Envelope] = deque()
        self._memory_bytes = 0
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self.down = False
        self.last_error: str | None = None
        self.sent = 0
        self.dropped_rows = 0
        self.rejected = 0
        self._inflight: Envelope | None = None
        self._stop = False
        if spool is not None:
            spool.adopt(self.next_seq)
        self._thread = threading.Thread(target=self._run, name="mlpulse-sender", daemon=True)
        self._thread.start()

    def next_seq(self) -> int:
        return next(self._seq)

    # -- producers ------------------------------------------------------------------------

    def submit(self, envelope: Envelope) -> bool:
        """Queue an envelope (numbered in call order); False if it was dropped."""
        with self._cond:
            envelope.seq = self.next_seq()
            size = len(envelope.body)
            spooled = self.spool is not None and len(self.spool) > 0
            if not spooled and not self.down and self._fits(size):
                self._memory.append(envelope)
                self._memory_bytes += size
                self._cond.notify_all()
                self._wake.set()
                return True
            if self.policy == "block" and not self.down and not spooled:
                deadline = time.monotonic() + self.block_timeout
                while not self._fits(size) and time.monotonic() < deadline:
                    self._cond.wait(0.01)
                if self._fits(size):
                    self._memory.append(envelope)
                    self._memory_bytes += size
                    self._wake.set()
                    return True
            if self.policy != "drop" and self.spool is not None and self.spool.append(envelope):
                self._wake.set()
                return True
            if self.policy != "drop" and self._fits(size):
                # the spool is full or cannot be written (a full disk): memory holds it
                self._memory.append(envelope)
                self._memory_bytes += size
                self._wake.set()
                return True
            self._drop(envelope)
            return False

    def _fits(self, size: int) -> bool:
        return not self._memory or self._memory_bytes + size <= self.max_memory_bytes

    def _drop(self, envelope: Envelope) -> None:
        self.dropped_rows += envelope.rows
        if envelope.done is not None:
            envelope.error = BufferError("mlpulse: the send queue is full; the batch was dropped")
            envelope.done.set()
        log.warning(
            "mlpulse: dropped a batch of %d rows (%s): queue full (policy %r); %d rows dropped so far",
            envelope.rows,
            envelope.kind,
            self.policy,
            self.dropped_rows,
        )

    # -- state ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Envelopes not yet acknowledged (memory, spool, in flight)."""
        with self._cond:
            return len(self._memory) + (len(self.spool) if self.spool else 0)

    def pending_rows(self) -> int:
        """Rows in envelopes not yet acknowledged."""
        with self._cond:
            return sum(e.rows for e in self._memory) + (self.spool.rows if self.spool else 0)

    def last_seq(self) -> int:
        """The sequence number the next envelope would get, minus one."""
        with self._cond:
            seq = self.next_seq()
            return seq - 1  # numbers need not be contiguous; only their order matters

    def done_through(self, seq: int) -> bool:
        """True once every envelope numbered ``seq`` or lower is acknowledged (or final)."""
        heads = [self._memory[0].seq] if self._memory else []
        if self.spool is not None and (head := self.spool.head_seq()) is not None:
            heads.append(head)
        return not heads or min(heads) > seq

    def wait(self, seq: int, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self.done_through(seq):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._wake.set()  # cut a backoff short: the caller wants it now
                self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
        return True

    def spill(self) -> int:
        """Move every envelope waiting in memory to the spool (at exit); return how many
        could not be kept (no spool, or the spool is full)."""
        lost = 0
        with self._cond:
            while self._memory:
                envelope = self._memory.popleft()
                self._memory_bytes -= len(envelope.body)
                if self.spool is None or not self.spool.append(envelope):
                    lost += envelope.rows
        return lost

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=5)

    # -- the thread -------------------------------------------------------------------

    def _next(self) -> tuple[Envelope | None, str]:
        with self._cond:
            mem = self._memory[0] if self._memory else None
            spool = self.spool
            disk_seq = spool.head_seq() if spool is not None else None
            if spool is not None and disk_seq is not None and (mem is None or disk_seq < mem.seq):
                return spool.peek(), "disk"
            return mem, "memory"

    def _run(self) -> None:
        attempt = 0
        while not self._stop:
            try:
                envelope, where = self._next()
            except OSError as exc:  # an unreadable spool file: skip it, say so
                log.error("mlpulse: unreadable spool file skipped: %s", exc)
                with self._cond:
                    self.spool.pop()  # type: ignore[union-attr]
                continue
            if envelope is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            response, down, problem = self._attempt(envelope)
            if down:
                self._went_down(problem)
            elif response is not None and response.status_code not in UNAVAILABLE and (
                response.status_code < 500
            ):
                attempt = 0
                self._failing = None
                self._acknowledge(envelope, where, response)
                continue
            elif self._failed(envelope, where, response, problem):
                attempt = 0
                continue
            wait = retry_after(response) or backoff(attempt, cap=self.max_backoff)
            attempt += 1
            self._wake.wait(wait)
            self._wake.clear()

    def _attempt(self, envelope: Envelope) -> tuple[httpx.Response | None, bool, str]:
        """Send once: (response or None, whether the server is down, what went wrong)."""
        try:
            response = self.transport.send(
                envelope.method,
                envelope.path,
                params=envelope.params,
                content=envelope.body,
                headers=envelope.headers(),
            )
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            # this request cannot be sent at all: a problem of the batch, not of the server
            return None, False, self.transport.redact(f"{type(exc).__name__}: {exc}")
        except httpx.TransportError as exc:
            return None, True, self.transport.redact(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug must not kill the thread
            problem = self.transport.redact(f"{type(exc).__name__}: {exc}")
            log.error("mlpulse: unexpected error sending a %s batch: %s", envelope.kind, problem)
            return None, False, problem
        return response, response.status_code in UNAVAILABLE, f"HTTP {response.status_code}"

    def _failed(
        self, envelope: Envelope, where: str, response: httpx.Response | None, problem: str
    ) -> bool:
        """Count a failed attempt at the head batch; after ``max_attempts`` set it aside
        (True) so the batches behind it go on."""
        count = self._failing[1] + 1 if self._failing and self._failing[0] == envelope.key else 1
        self._failing = (envelope.key, count)
        if count < self.max_attempts:
            log.warning(
                "mlpulse: the server failed a %s batch of %d rows (%s); attempt %d of %d",
                envelope.kind,
                envelope.rows,
                problem,
                count,
                self.max_attempts,
            )
            return False
        self._failing = None
        error: Exception = (
            error_for(response) if response is not None else RemoteError(problem)
        )
        self._set_aside(
            envelope,
            where,
            error,
            f"{error} (failed {count} times; the batches after it are delivered)",
        )
        return True

    def _went_down(self, problem: str) -> None:
        with self._cond:
            if not self.down:
                log.warning(
                    "mlpulse: server %s unavailable (%s); spooling",
                    self.transport.display_url,
                    problem,
                )
            self.down = True
            self.last_error = problem
            if self.spool is not None and self.policy != "drop":
                while self._memory:  # keep order: everything waiting goes to the spool
                    envelope = self._memory[0]
                    if not self.spool.append(envelope):
                        break  # the spool is full: what is left waits in memory
                    self._memory.popleft()
                    self._memory_bytes -= len(envelope.body)
                    if envelope.done is not None:
                        envelope.done.set()  # its caller stops waiting: it is pending now
            self._cond.notify_all()

    def _acknowledge(self, envelope: Envelope, where: str, response: httpx.Response) -> None:
        if response.status_code >= 300:
            error = error_for(response)
            self._set_aside(envelope, where, error, str(error))
            return
        try:
            result = response.json()
        except ValueError:
            self._set_aside(
                envelope, where, RemoteError("the server's answer is not JSON"), "not JSON"
            )
            return
        self._finish(envelope, where, result=result)

    def _set_aside(self, envelope: Envelope, where: str, error: Exception, reason: str) -> None:
        """A batch refused for good: keep it in the spool's rejected folder, count it, and
        hand the error to a caller waiting for it."""
        self.rejected += 1
        kept = self.spool.reject(envelope, reason) if self.spool is not None else None
        log.error(
            "mlpulse: the server refused a %s batch of %d rows for good: %s%s",
            envelope.kind,
            envelope.rows,
            reason,
            f" (kept in {kept})" if kept else "",
        )
        self._finish(envelope, where, error=error)

    def _finish(
        self, envelope: Envelope, where: str, result: Any = None, error: Exception | None = None
    ) -> None:
        with self._cond:
            if self.down:
                log.info("mlpulse: server %s is back; replaying", self.transport.display_url)
            self.down = False
            # (at exit, spill() may have moved it meanwhile: pop only if still the head)
            if where == "disk":
                if self.spool is not None and self.spool.head_seq() == envelope.seq:
                    self.spool.pop()
            elif self._memory and self._memory[0] is envelope:
                self._memory.popleft()
                self._memory_bytes -= len(envelope.body)
            self.sent += 1
            if envelope.done is not None:
                envelope.error = error
                envelope.result = result
                envelope.done.set()
            self._cond.notify_all()


__all__ = ["POLICIES", "Sender"]
