"""BlobCache: bounded LRU, staged writes visible only to their transaction until commit."""

from __future__ import annotations

import threading

import pytest

import mlpulse
from mlpulse.store.cache import BlobCache


class TestBlobCache:
    """The cache never serves a blob that the database does not hold committed."""

    def test_lru_bound(self) -> None:
        cache = BlobCache(max_bytes=10)
        cache.put_many({"a": b"12345", "b": b"67890"})
        cache.get_many(["a"])  # a becomes most recent
        cache.put_many({"c": b"xyz"})
        assert sorted(cache.get_many(["a", "b", "c"])) == ["a", "c"]

    def test_staged_until_commit_and_private_to_the_writer(self) -> None:
        cache = BlobCache(max_bytes=1000)
        cache.begin()
        cache.put_many({"k": b"new"})
        assert cache.get_many(["k"]) == {"k": b"new"}  # read-your-writes
        seen: dict[str, bytes] = {}
        other = threading.Thread(target=lambda: seen.update(cache.get_many(["k"])))
        other.start()
        other.join()
        assert seen == {}  # another thread sees only committed blobs
        cache.commit()
        assert cache.get_many(["k"]) == {"k": b"new"}

    def test_rollback_discards(self) -> None:
        cache = BlobCache(max_bytes=1000)
        cache.put_many({"k": b"old"})
        cache.begin()
        cache.put_many({"k": b"new"})
        cache.rollback()
        assert cache.get_many(["k"]) == {"k": b"old"}

    def test_failed_ingest_leaves_cache_and_metrics_consistent(self, tmp_path) -> None:
        """A batch that fails mid-transaction leaves no trace in the cached profiles."""
        pulse = mlpulse.connect(str(tmp_path / "c.duckdb"))
        model = pulse.model("m", task="binary", prediction="score", label="y")
        model.log_batch(
            {"id": ["a"], "score": [0.9], "ts": ["2026-01-01T00:00:10Z"]}, timestamp="ts"
        )
        engine = pulse.engine
        original = engine._recompute_labeled

        def boom(*args, **kwargs):
            raise RuntimeError("disk full")

        engine._recompute_labeled = boom  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            model.log_feedback_batch({"id": ["a"], "y": [1]})
        engine._recompute_labeled = original  # type: ignore[method-assign]
        out = model.metrics(["count", "accuracy"], start="2026-01-01", end="2026-01-02")
        assert out["n"].iloc[0] == 1 and out["n_labeled"].iloc[0] == 0
        model.log_feedback_batch({"id": ["a"], "y": [1]})
        out = model.metrics(["accuracy"], start="2026-01-01", end="2026-01-02")
        assert out["n_labeled"].iloc[0] == 1 and out["accuracy"].iloc[0] == 1.0
        pulse.close()
