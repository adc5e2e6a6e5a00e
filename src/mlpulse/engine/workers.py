"""Profiling in a worker process, so a server's queries do not wait for its ingest.

Profiling a batch (numpy, datasketches) and merging the result into the stored bucket parts
hold Python's GIL; in the server process that made every query that arrived meanwhile wait
(a metrics query's p95 was 10-20 times its median under 20,000 predictions/s of ingest).
With a :class:`ProfilePool` the engine sends a batch's profiled columns and the stored bytes
of the parts it touches to a worker process, which profiles, merges and encodes them and
sends back bytes; the server process only writes those bytes, in the same transaction as
the raw rows, so ingest stays one transaction: a worker that dies mid-batch makes the batch
fail with a :class:`~mlpulse.errors.StoreError` (HTTP 503, retried by the client with the
same idempotency key) and stores nothing, and the next batch gets a fresh worker.

Batches below :attr:`ProfilePool.min_rows` rows are profiled in the calling process, where
the round trip would cost more than the profiling.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, StoreError
from ..profiles.bucket import decode_part, encode_part, merge_part, part_rows
from ..schema import ModelSpec
from .profiling import Key, batch_parts

log = logging.getLogger("mlpulse.ingest")

#: batches with fewer rows are profiled in the calling process (see BENCHMARKS.md)
DEFAULT_MIN_ROWS = 2_000

#: columns of a clean batch that profiling reads, besides the features and segments
_PROFILED = ("__minute", "__ts", "__prediction", "__latency_ms")


def profile_encoded(
    table: pa.Table,
    spec: ModelSpec,
    version: str,
    admitted: dict[str, set[str]],
    type_errors: dict[str, np.ndarray] | None,
    stored: dict[Key, bytes],
) -> dict[Key, tuple[int, bytes]]:
    """The parts a batch adds, merged into the stored bytes of the same keys, as
    ``{key: (rows, bytes)}`` ready to save: the worker's task (also callable in-process)."""
    fresh = batch_parts(table, spec, version, admitted, type_errors)
    for key, blob in stored.items():
        if key in fresh:
            fresh[key] = merge_part(key[4], decode_part(key[4], blob), fresh[key])
    return {
        key: (part_rows(key[4], value), encode_part(key[4], value)) for key, value in fresh.items()
    }


def _watch(server_pid: int) -> None:
    """Worker initializer: exit once the server process is gone (killed with -9, say) or
    the fork server that started this worker is, so that no worker outlives its server
    (a worker blocked on its task queue would not notice by itself)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # alive, owned by someone else: cannot happen here
                pass
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="mlpulse-server-watch", daemon=True).start()


def _ready() -> int:
    """A no-op task: starts a worker (imports done) before the first batch needs it."""
    return 0


def _context() -> Any:
    """forkserver where the platform has it (workers fork from a small clean process, not
    from the threaded server), else spawn; never fork."""
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # the fork server imports numpy, pyarrow and the profile code once; every worker
        # forked from it (the first, and one after a crash) starts with them loaded
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


class ProfilePool:
    """Worker processes that profile ingest batches (see the module docstring).

    Processes start at the first batch of :attr:`min_rows` rows or more (or at
    :meth:`start`); :meth:`close` stops them. Thread-safe.
    """

    def __init__(self, workers: int = 1, *, min_rows: int = DEFAULT_MIN_ROWS) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"profile workers must be a whole number >= 1, got {workers!r}")
        if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 0:
            raise ConfigError(f"min_rows must be a whole number >= 0, got {min_rows!r}")
        self.workers = workers
        self.min_rows = min_rows
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"ProfilePool(workers={self.workers}, min_rows={self.min_rows})"

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise StoreError("the profiling worker pool is closed (the store is closing)")
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=_context(),
                    initializer=_watch,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def start(self) -> None:
        """Start the workers now (in the background) rather than at the first batch."""
        self._pool().submit(_ready)

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (none before the first batch)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return sorted(int(pid) for pid in processes)

    def submit(
        self,
        table: pa.Table,
        spec: ModelSpec,
        version: str,
        admitted: dict[str, set[str]],
        type_errors: dict[str, np.ndarray] | None,
        stored: dict[Key, bytes],
    ) -> Future:
        """Start profiling a clean batch; :meth:`result` waits for its parts."""
        wanted = {*_PROFILED, *spec.features, *spec.segments}
        table = table.select([c for c in table.column_names if c in wanted])
        try:
            return self._pool().submit(
                profile_encoded, table, spec, version, admitted, type_errors, stored
            )
        except BrokenProcessPool as exc:  # a worker died while idle: the next batch retries
            self._discard()
            raise self._died(spec, table.num_rows, exc) from exc

    def result(self, future: Future, spec: ModelSpec, rows: int) -> dict[Key, tuple[int, bytes]]:
        """The parts of a submitted batch; a :class:`StoreError` if its worker died."""
        try:
            return future.result()
        except BrokenProcessPool as exc:
            self._discard()
            raise self._died(spec, rows, exc) from exc

    @staticmethod
    def _died(spec: ModelSpec, rows: int, exc: BaseException) -> StoreError:
        log.error("model %r: a profiling worker process stopped: %s", spec.name, exc)
        return StoreError(
            f"model {spec.name!r}: the profiling worker process stopped while profiling a "
            f"batch of {rows:,} rows (killed, or out of memory?); nothing of the batch was "
            "stored. Send it again (with the same Idempotency-Key it is stored once); a new "
            "worker takes the next batch"
        )

    def _discard(self) -> None:
        """Drop a broken executor (its processes are gone); the next batch starts anew."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (waits for a batch in progress) and refuse new batches."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


__all__ = ["DEFAULT_MIN_ROWS", "ProfilePool", "profile_encoded"]
