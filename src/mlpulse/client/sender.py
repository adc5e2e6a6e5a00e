"""The background sender: delivers envelopes in order, retries, and spools.

Envelopes wait in memory (bounded by ``max_memory_bytes``) or in the disk spool; the
sender always delivers the one with the smallest sequence number next, so the server sees
batches in the order they were logged. A network error, a 429 or a 5xx puts the sender in
the *down* state: it backs off (exponential, full jitter), moves what waits in memory to
the spool, and sends new envelopes there until the spool is drained. A 4xx other than
408/425/429 is final: the batch is kept under ``rejected/`` in the spool directory and
counted, and a caller waiting for it gets the error.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque

import httpx

from .http import RETRYABLE, HttpTransport, backoff, error_for, retry_after
from .spool import DiskSpool, Envelope

log = logging.getLogger("mlpulse.remote")

POLICIES = ("spool", "block", "drop")


class Sender:
    """Ordered, retried, spooled delivery of envelopes from one thread."""

    def __init__(
        self,
        transport: HttpTransport,
        spool: DiskSpool | None,
        *,
        max_memory_bytes: int,
        policy: str = "spool",
        block_timeout: float = 0.5,
        max_backoff: float = 2.0,
    ) -> None:
        self.transport = transport
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
            response = None
            try:
                response = self.transport.send(
                    envelope.method,
                    envelope.path,
                    params=envelope.params,
                    content=envelope.body,
                    headers=envelope.headers(),
                )
                retry = response.status_code in RETRYABLE
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                retry, problem = True, f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug must not kill the thread
                log.exception("mlpulse: unexpected error while sending")
                retry, problem = True, repr(exc)
            if retry:
                self._went_down(problem)
                wait = retry_after(response) or backoff(attempt, cap=self.max_backoff)
                attempt += 1
                self._wake.wait(wait)
                self._wake.clear()
                continue
            attempt = 0
            assert response is not None  # no retry means the send returned a response
            self._acknowledge(envelope, where, response)

    def _went_down(self, problem: str) -> None:
        with self._cond:
            if not self.down:
                log.warning(
                    "mlpulse: server %s unavailable (%s); spooling", self.transport.url, problem
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
            self.rejected += 1
            kept = self.spool.reject(envelope, str(error)) if self.spool is not None else None
            log.error(
                "mlpulse: the server refused a %s batch of %d rows for good: %s%s",
                envelope.kind,
                envelope.rows,
                error,
                f" (kept in {kept})" if kept else "",
            )
        with self._cond:
            if self.down:
                log.info("mlpulse: server %s is back; replaying", self.transport.url)
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
                if response.status_code >= 300:
                    envelope.error = error_for(response)
                else:
                    envelope.result = response.json()
                envelope.done.set()
            self._cond.notify_all()


__all__ = ["POLICIES", "Sender"]
