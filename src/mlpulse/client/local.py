"""The in-process transport: the :class:`~mlpulse.service.Service` over a store this
process owns, plus the background batcher that turns ``log()`` calls into batches."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..service import Service
from ..store.retention import DEFAULT_RAW_RETENTION, RetentionPolicy
from .batcher import Batcher


class LocalTransport(Service):
    """A :class:`Service` with a queue for ``log()`` rows (stored by a background thread)."""

    def __init__(
        self,
        path: str = ":memory:",
        *,
        max_features: int | None = None,
        raw_retention: Any = DEFAULT_RAW_RETENTION,
        raw_archive: str = "parquet",
        profile_retention: dict[str, Any] | None = None,
    ) -> None:
        from ..store.database import Store

        policy = RetentionPolicy.parse(raw_retention, raw_archive, profile_retention)
        store = Store.open(path)
        try:
            super().__init__(store, max_features=max_features, retention=policy)
        except BaseException:
            store.release()
            raise
        self._batcher = Batcher(self._deliver, self._failed)
        # log() is the hot path: its rows go straight to the batcher, no frame in between
        self.queue = self._batcher.put  # type: ignore[method-assign]
        self._closed = False

    def queue(self, key: tuple[str, str, str], row: dict[str, Any]) -> None:
        """Queue one ``log`` / ``log_feedback`` row under ``(kind, name, version)``."""
        self._batcher.put(key, row)

    def _deliver(self, key: tuple[Any, ...], table: pa.Table) -> None:
        kind, name, version = key
        self.log_queued(kind, name, version, table)

    def _failed(self, key: tuple[Any, ...], rows: Any, exc: BaseException) -> None:
        kind, name, version = key
        self.quarantine_queued(kind, name, version, rows, exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is stored; False if ``timeout`` ran out."""
        return self._batcher.flush(timeout)

    @property
    def dropped(self) -> int:
        """Rows dropped because the background queue was full."""
        return self._batcher.dropped

    @property
    def pending(self) -> int:
        """Rows queued and not yet stored."""
        return self._batcher.pending

    @property
    def rejected(self) -> int:
        """Always 0 in process: a batch that cannot be stored is quarantined row by row."""
        return 0

    def close(self, timeout: float | None = None) -> None:
        """Store what is queued, then release the store; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._batcher.close(timeout=30.0 if timeout is None else timeout)
        super().close()


__all__ = ["LocalTransport"]
