"""The store's caches: bounded LRU, staged writes visible only to their transaction until
commit, readers never caching what a concurrent commit changed; memoised merges; and the
queries that rely on them seeing every write."""

from __future__ import annotations

import threading

import pytest

import mlpulse
from mlpulse.store.cache import InputMemo, TxnCache


class TestTxnCache:
    """The cache never serves a value that the database does not hold committed."""

    def test_lru_bound(self) -> None:
        cache = TxnCache(max_bytes=10)
        cache.put_many({"a": b"12345", "b": b"67890"})
        cache.get_many(["a"])  # a becomes most recent
        cache.put_many({"c": b"xyz"})
        assert sorted(cache.get_many(["a", "b", "c"])) == ["a", "c"]

    def test_staged_until_commit_and_private_to_the_writer(self) -> None:
        cache = TxnCache(max_bytes=1000)
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
        cache = TxnCache(max_bytes=1000)
        cache.put_many({"k": b"old"})
        cache.begin()
        cache.put_many({"k": b"new"})
        cache.rollback()
        assert cache.get_many(["k"]) == {"k": b"old"}

    def test_drop_is_staged_until_commit(self) -> None:
        cache = TxnCache(max_bytes=1000)
        cache.put_many({"k": b"old"})
        cache.begin()
        cache.drop_many(["k"])
        assert cache.get_many(["k"]) == {}
        seen: dict[str, bytes] = {}
        other = threading.Thread(target=lambda: seen.update(cache.get_many(["k"])))
        other.start()
        other.join()
        assert seen == {"k": b"old"}
        cache.commit()
        assert cache.get_many(["k"]) == {}

    def test_reader_never_caches_what_a_concurrent_commit_changed(self) -> None:
        cache = TxnCache(max_bytes=1000)
        with cache.filling() as remember:  # a reader starts reading the database ...
            cache.begin()
            cache.drop_many(["a"])  # ... while a writer changes "a" and commits
            cache.commit()
            remember({"a": b"stale", "b": b"fine"})
        assert cache.get_many(["a", "b"]) == {"b": b"fine"}
        with cache.filling() as remember:  # a later reader sees the new rows: cached
            remember({"a": b"new"})
        assert cache.get_many(["a"]) == {"a": b"new"}

    def test_reader_never_overwrites_a_newer_value(self) -> None:
        cache = TxnCache(max_bytes=1000)
        with cache.filling() as remember:
            cache.put_many({"a": b"new"})
            remember({"a": b"old"})
        assert cache.get_many(["a"]) == {"a": b"new"}

    def test_a_current_read_replaces_a_cached_value(self) -> None:
        """(a wider read of the same rows, say, with a column the cached one lacked)"""
        cache = TxnCache(max_bytes=1000)
        cache.put_many({"a": b"narrow"})
        with cache.filling() as remember:
            remember({"a": b"wider"})
        assert cache.get_many(["a"]) == {"a": b"wider"}

    def test_writer_never_caches_its_uncommitted_rows(self) -> None:
        cache = TxnCache(max_bytes=1000)
        cache.begin()
        cache.drop_many(["m"])  # the transaction changed minute m's rows ...
        with cache.filling() as remember:
            remember({"m": b"uncommitted", "other": b"committed"})  # ... and read them
        cache.rollback()
        assert cache.get_many(["m", "other"]) == {"other": b"committed"}

    def test_a_failed_read_leaves_nothing_behind(self) -> None:
        cache = TxnCache(max_bytes=1000)
        with pytest.raises(RuntimeError), cache.filling():
            raise RuntimeError("query failed")
        cache.put_many({"a": b"x"})  # no reader is left to be told about it
        assert cache._fills == []


class TestInputMemo:
    def test_hit_only_for_the_same_objects(self) -> None:
        memo = InputMemo(max_bytes=100)
        a, b = b"one", b"two"
        memo.put("k", (a, b), "merged", size=10)
        assert memo.get("k", (a, b)) == "merged"
        assert memo.get("k", (a,)) is None  # a bucket went missing
        assert memo.get("k", (a, b, b"three")) is None  # a bucket appeared
        assert memo.get("k", (a, bytes(bytearray(b"two")))) is None  # rewritten, equal bytes

    def test_bounded(self) -> None:
        memo = InputMemo(max_bytes=25)
        for i in range(5):
            memo.put(i, (), i, size=10)
        assert [memo.get(i, ()) for i in range(5)] == [None, None, None, 3, 4]


class TestQueriesSeeEveryWrite:
    """Cached entries, edge-minute rows and memoised merges never hide a later write."""

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

    def test_repeated_query_sees_rows_and_labels_in_edge_minutes(self, tmp_path) -> None:
        pulse = mlpulse.connect(str(tmp_path / "e.duckdb"))
        model = pulse.model("m", task="binary", prediction="score", label="y")
        # z1 and z2 lie just outside the windows, so the edges cut through their minutes'
        # rows and must be read from (cached) raw rows
        model.log_batch(
            {
                "id": ["a", "b", "z1", "z2"],
                "score": [0.9, 0.2, 0.5, 0.5],
                "ts": ["2026-01-01T00:00:10Z"] * 2
                + ["2026-01-01T00:00:02Z", "2026-01-01T00:10:50Z"],
            },
            timestamp="ts",
        )
        window = {"start": "2026-01-01T00:00:05Z", "end": "2026-01-01T00:10:30Z", "step": "5min"}
        first = model.metrics(["count", "accuracy"], **window)
        assert first["n"].tolist() == [2, 0, 0]
        # new rows in both edge minutes and in an interior (empty, cached as absent) bucket
        model.log_batch(
            {
                "id": ["c", "d", "e"],
                "score": [0.8, 0.7, 0.1],
                "ts": ["2026-01-01T00:00:20Z", "2026-01-01T00:10:20Z", "2026-01-01T00:06:00Z"],
            },
            timestamp="ts",
        )
        again = model.metrics(["count", "accuracy"], **window)
        assert again["n"].tolist() == [3, 1, 1]
        assert again["n_labeled"].tolist() == [0, 0, 0]
        model.log_feedback_batch({"id": ["a", "b", "c", "d", "e", "z1"], "y": [1, 0, 0, 1, 1, 1]})
        labeled = model.metrics(["count", "accuracy"], **window)
        assert labeled["n_labeled"].tolist() == [3, 1, 1]
        assert labeled["accuracy"].tolist() == [2 / 3, 0.0, 1.0]
        model.log_feedback_batch({"id": ["c"], "y": [1]})  # a correction in an edge minute
        corrected = model.metrics(["accuracy"], **window)
        assert corrected["accuracy"].tolist() == [1.0, 0.0, 1.0]
        pulse.close()

    def test_queries_racing_writes_end_consistent(self, tmp_path) -> None:
        """A reader querying while a writer adds rows and labels to the same minutes (edges,
        runs, empty buckets) ends with exactly the answer computed from the rows."""
        import numpy as np
        import pandas as pd
        from sklearn.metrics import accuracy_score

        pulse = mlpulse.connect(str(tmp_path / "race.duckdb"))
        model = pulse.model("m", task="binary", prediction="score", label="y")
        rng = np.random.default_rng(3)
        base = pd.Timestamp("2026-02-01T00:00:00Z")
        batches = []
        for b in range(20):
            n = 150
            batches.append(
                pd.DataFrame(
                    {
                        "id": [f"b{b}_{i}" for i in range(n)],
                        "ts": base + pd.to_timedelta(rng.uniform(0, 600, n), unit="s"),
                        "score": rng.random(n),
                        "y": rng.integers(0, 2, n),
                    }
                )
            )
        window = {"start": "2026-02-01T00:00:30Z", "end": "2026-02-01T00:09:45Z", "step": "1min"}
        done = threading.Event()
        errors: list[BaseException] = []

        def read() -> None:
            try:
                while not done.is_set():
                    model.metrics(["count", "accuracy", "roc_auc"], **window)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        for i, batch in enumerate(batches):
            model.log_batch(batch.drop(columns=["y"]), timestamp="ts")
            if i:  # labels for the previous batch, and a correction in an older one
                model.log_feedback_batch(batches[i - 1][["id", "y"]])
                old = batches[i // 2].iloc[:5].assign(y=lambda d: 1 - d["y"])
                batches[i // 2].loc[old.index, "y"] = old["y"]
                model.log_feedback_batch(old[["id", "y"]])
        model.log_feedback_batch(batches[-1][["id", "y"]])
        done.set()
        reader.join()
        assert not errors
        out = model.metrics(["count", "accuracy"], **window)
        rows = pd.concat(batches)
        for _, row in out.iterrows():
            inside = rows[(rows["ts"] >= row["window_start"]) & (rows["ts"] < row["window_end"])]
            assert row["n"] == len(inside) and row["n_labeled"] == len(inside)
            expected = accuracy_score(inside["y"], (inside["score"] >= 0.5).astype(int))
            assert row["accuracy"] == pytest.approx(expected, abs=1e-12)
        pulse.close()
