"""An in-memory LRU cache of profile blobs, kept coherent with the database.

One process owns a store for writing, so every blob it stores passes through this cache:
reads of hot buckets (the recent past, which queries and ingest touch most) never go back to
DuckDB, whose scans would read every blob stored beside the few wanted. Blobs written inside
a transaction are staged and become visible to other threads only when it commits; a
rollback discards them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable

#: Default bound on cached bytes: ``$MLPULSE_CACHE_MB`` or 192 MB.
DEFAULT_CACHE_MB = 192


def cache_bytes() -> int:
    return int(float(os.environ.get("MLPULSE_CACHE_MB") or DEFAULT_CACHE_MB) * 1024 * 1024)


class BlobCache:
    """LRU of ``key -> blob`` bounded by total bytes, with per-transaction staging.

    >>> cache = BlobCache(max_bytes=10)
    >>> cache.put_many({"a": b"12345", "b": b"67890"})
    >>> cache.put_many({"c": b"x"})  # evicts the least recently used
    >>> sorted(cache.get_many(["a", "b", "c"]))
    ['b', 'c']
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = cache_bytes() if max_bytes is None else max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._staged: dict[str, bytes] | None = None
        self._writer: int | None = None

    # -- transactions -------------------------------------------------------------------

    def begin(self) -> None:
        self._staged = {}
        self._writer = threading.get_ident()

    def commit(self) -> None:
        staged, self._staged, self._writer = self._staged, None, None
        if staged:
            self._insert(staged)

    def rollback(self) -> None:
        self._staged, self._writer = None, None

    def _in_transaction(self) -> bool:
        return self._staged is not None and self._writer == threading.get_ident()

    # -- access -------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        staged = self._staged if self._in_transaction() else None
        with self._lock:
            for key in keys:
                if staged is not None and key in staged:
                    out[key] = staged[key]
                    continue
                blob = self._items.get(key)
                if blob is not None:
                    self._items.move_to_end(key)
                    out[key] = blob
        return out

    def put_many(self, items: dict[str, bytes]) -> None:
        """Store blobs just written (staged until commit inside a transaction)."""
        if self._in_transaction():
            assert self._staged is not None
            self._staged.update(items)
        else:
            self._insert(items)

    def remember(self, items: dict[str, bytes]) -> None:
        """Cache blobs read from the database (committed values, never staged)."""
        self._insert(items)

    def _insert(self, items: dict[str, bytes]) -> None:
        with self._lock:
            for key, blob in items.items():
                old = self._items.pop(key, None)
                if old is not None:
                    self._size -= len(old)
                if len(blob) > self.max_bytes:
                    continue
                self._items[key] = blob
                self._size += len(blob)
            while self._size > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0
