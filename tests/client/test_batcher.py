"""The background batcher delivers every queued row once and reports failed batches."""

from __future__ import annotations

import threading

import pyarrow as pa

from mlpulse.client.batcher import Batcher, rows_to_table


class TestRowsToTable:
    """Row dicts become one Arrow table; a mixed-type column becomes text instead of failing."""

    def test_columns_union_and_missing_values(self):
        table = rows_to_table([{"a": 1, "b": "x"}, {"a": 2, "c": 1.5}])
        assert table.column_names == ["a", "b", "c"]
        assert table.column("b").to_pylist() == ["x", None]
        assert table.column("c").to_pylist() == [None, 1.5]

    def test_mixed_types_become_text(self):
        table = rows_to_table([{"a": 1.0}, {"a": "abc"}, {"a": None}])
        assert table.column("a").type == pa.string()
        assert table.column("a").to_pylist() == ["1.0", "abc", None]


class TestBatcher:
    """Rows put from many threads are all delivered by flush(); sink errors go to on_error."""

    def test_flush_delivers_everything_once(self):
        got: list[tuple] = []
        lock = threading.Lock()

        def sink(key, table):
            with lock:
                got.extend((key, v) for v in table.column("v").to_pylist())

        b = Batcher(sink, lambda *a: None, interval=0.05, max_rows=100)
        try:

            def work(t):
                for i in range(500):
                    b.put(("k", t % 2), {"v": t * 1000 + i})

            threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert b.flush(timeout=10)
            assert b.pending == 0
        finally:
            b.close()
        values = sorted(v for _, v in got)
        assert values == sorted(t * 1000 + i for t in range(4) for i in range(500))
        assert {k for k, _ in got} == {("k", 0), ("k", 1)}

    def test_sink_error_is_reported_with_rows(self):
        failures = []

        def sink(key, table):
            raise ValueError("boom")

        b = Batcher(
            sink,
            lambda key, rows, exc: failures.append((key, rows.num_rows, str(exc))),
            interval=0.05,
        )
        try:
            for i in range(7):
                b.put(("x",), {"v": i})
            assert b.flush(timeout=10)
        finally:
            b.close()
        assert failures == [(("x",), 7, "boom")]

    def test_full_queue_drops_and_counts(self):
        block = threading.Event()
        b = Batcher(lambda k, t: block.wait(5), lambda *a: None, interval=10, max_pending=3)
        try:
            for i in range(5):
                b.put(("x",), {"v": i})
            assert b.dropped == 2
        finally:
            block.set()
            b.close()
