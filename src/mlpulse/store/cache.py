"""In-memory LRU caches kept coherent with the database's transactions.

One process owns a store for writing, so every change to what a cache holds passes through
that process: writers stage puts and drops inside :meth:`Store.write` and they take effect
only when the transaction commits (a rollback discards them). Readers fill the cache from
the database; a value they read before a concurrent commit never overwrites or brings back
what that commit changed (see :meth:`TxnCache.filling`).

The store keeps two: profile blobs with their row counts (a DuckDB scan reads every blob
stored beside the few wanted, so hot buckets must not depend on it) and the raw rows of
recently queried minutes (window edges; see :mod:`mlpulse.engine.query`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: Default bound on the profile cache: ``$MLPULSE_CACHE_MB`` or 192 MB.
DEFAULT_CACHE_MB = 192

_DROPPED = object()  # a staged drop


def cache_bytes() -> int:
    return int(float(os.environ.get("MLPULSE_CACHE_MB") or DEFAULT_CACHE_MB) * 1024 * 1024)


class TxnCache:
    """LRU of ``key -> value`` bounded by total size, with per-transaction staging.

    ``size(value)`` gives a value's cost in bytes (default ``len``).

    >>> cache = TxnCache(max_bytes=10)
    >>> cache.put_many({"a": b"12345", "b": b"67890"})
    >>> cache.put_many({"c": b"x"})  # evicts the least recently used
    >>> sorted(cache.get_many(["a", "b", "c"]))
    ['b', 'c']
    """

    def __init__(self, max_bytes: int | None = None, size: Callable[[Any], int] = len) -> None:
        self.max_bytes = cache_bytes() if max_bytes is None else max_bytes
        self._size_of = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._staged: dict[Hashable, Any] | None = None
        self._writer: int | None = None
        # readers filling the cache from the database, each with the keys committed since
        # it started reading
        self._fills: list[set[Hashable]] = []

    # -- transactions -------------------------------------------------------------------

    def begin(self) -> None:
        self._staged = {}
        self._writer = threading.get_ident()

    def commit(self) -> None:
        staged, self._staged, self._writer = self._staged, None, None
        if staged:
            self._apply(staged)

    def rollback(self) -> None:
        self._staged, self._writer = None, None

    def _in_transaction(self) -> bool:
        return self._staged is not None and self._writer == threading.get_ident()

    # -- access -------------------------------------------------------------------------

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """The cached values of these keys (the writer also sees what it staged)."""
        out: dict[Any, Any] = {}
        staged = self._staged if self._in_transaction() else None
        with self._lock:
            items = self._items
            for key in keys:
                if staged is not None and key in staged:
                    value = staged[key]
                    if value is not _DROPPED:
                        out[key] = value
                    continue
                if key in items:
                    items.move_to_end(key)
                    out[key] = items[key]
        return out

    def put_many(self, items: Mapping[Any, Any]) -> None:
        """Values just written to the database (staged until commit inside a transaction)."""
        if self._in_transaction():
            assert self._staged is not None
            self._staged.update(items)
        else:
            self._apply(items)

    def drop_many(self, keys: Iterable[Any]) -> None:
        """Forget values whose database rows changed (staged inside a transaction)."""
        keys = list(keys)
        if self._in_transaction():
            assert self._staged is not None
            self._staged.update(dict.fromkeys(keys, _DROPPED))
        else:
            self._apply(dict.fromkeys(keys, _DROPPED))

    @contextmanager
    def filling(self) -> Iterator[Callable[[Mapping[Any, Any]], None]]:
        """Fill the cache from the database: enter before reading, then call the yielded
        function with what was read. Keys that a commit changed in between are skipped (the
        reader may have seen the old rows), and so are keys the calling thread's own open
        transaction changed (it read rows not yet committed); other values replace what is
        cached (they are current).

        >>> cache = TxnCache(max_bytes=100)
        >>> with cache.filling() as remember:
        ...     rows = {"a": b"old", "b": b"x"}  # read from the database ...
        ...     cache.drop_many(["a"])  # ... while a writer changes "a" and commits
        ...     remember(rows)
        >>> sorted(cache.get_many(["a", "b"]))
        ['b']
        """
        changed: set[Hashable] = set()
        with self._lock:
            self._fills.append(changed)

        def remember(items: Mapping[Any, Any]) -> None:
            own = self._staged if self._in_transaction() else None
            with self._lock:
                for key, value in items.items():
                    if key in changed or (own is not None and key in own):
                        continue
                    self._discard(key)
                    self._add(key, value)
                self._evict()

        try:
            yield remember
        finally:
            with self._lock:
                self._fills.remove(changed)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    # -- bookkeeping --------------------------------------------------------------------

    def _apply(self, changes: Mapping[Any, Any]) -> None:
        """Make committed puts and drops visible, noting their keys for readers in flight."""
        with self._lock:
            for changed in self._fills:
                changed.update(changes)
            for key, value in changes.items():
                self._discard(key)
                if value is not _DROPPED:
                    self._add(key, value)
            self._evict()

    def _add(self, key: Hashable, value: Any) -> None:
        size = self._size_of(value)
        if size > self.max_bytes:
            return
        self._items[key] = value
        self._size += size

    def _discard(self, key: Hashable) -> None:
        if key in self._items:
            self._size -= self._size_of(self._items.pop(key))

    def _evict(self) -> None:
        while self._size > self.max_bytes and self._items:
            _, value = self._items.popitem(last=False)
            self._size -= self._size_of(value)


class InputMemo:
    """Results computed from cached values, reused while those values are unchanged.

    An entry remembers the very objects it was computed from; a lookup with other objects
    (a value rewritten, evicted and read again, or a key appearing) misses. Nothing can go
    stale, so no invalidation is needed. Bounded by the sizes the caller gives.

    >>> memo = InputMemo(max_bytes=100)
    >>> a, b = b"one", b"two"
    >>> memo.put("k", (a, b), "merged", size=10)
    >>> memo.get("k", (a, b)), memo.get("k", (a, b"two!"))
    ('merged', None)
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[tuple[Any, ...], Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, inputs: tuple[Any, ...]) -> Any:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            held = entry[0]
            if len(held) != len(inputs) or any(
                a is not b for a, b in zip(held, inputs, strict=True)
            ):
                return None
            self._items.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, inputs: tuple[Any, ...], value: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[2]
            self._items[key] = (inputs, value, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, _, evicted) = self._items.popitem(last=False)
                self._size -= evicted

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0
