"""How long ingest holds the GIL of the process that serves queries, with and without the
profiling worker (``Service(profile_workers=...)``), in one process and without HTTP.

A feeder thread ingests 20,000-row batches stamped within the last second (as
``bench_http.py --feed live`` sends them; one day of history first) while two probes run in
the same process: a thread that sleeps 1 ms in a loop and records how late it wakes (a
wake-up waits for the GIL, so its lateness is how long someone else held it), and a
thread that runs the metrics query of ``bench_http.py`` (24 hourly windows) every 0.2 s.
Settings alternate (0, 1, 0, 1, ...) so a loaded machine slows both alike.

    python benchmarks/bench_gil.py --rounds 3 --seconds 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _data
import numpy as np
import pyarrow as pa
from _common import emit, progress, target

from mlpulse.service import Service


def one(workers: int, seconds: float, rate: int, tmp: Path, tag: str) -> dict[str, float]:
    service = Service.open(str(tmp / f"gil{tag}.duckdb"), profile_workers=workers)
    try:
        service.register("m", "v1", **_data.MODEL_KW)
        start, end = _data.day_range(days=1)
        history = _data.predictions(200_000, seed=10**6, start=start, end=end)
        service.log_batch("m", "v1", history.sort_by("timestamp"), timestamp="timestamp")
        if service.profiler is not None:
            service.profiler.start()
            time.sleep(2.0)
        stop = threading.Event()
        sent = [0]
        late: list[float] = []
        queries: list[float] = []

        def feed() -> None:
            i = 0
            while not stop.is_set():
                t0 = time.perf_counter()
                now = datetime.now(UTC)
                batch = _data.predictions(rate, seed=i, start=now - timedelta(seconds=1), end=now)
                batch = batch.set_column(
                    batch.column_names.index("id"),
                    "id",
                    pa.array([f"{tag}_{i}_{j}" for j in range(rate)]),
                )
                service.log_batch("m", "v1", batch, timestamp="timestamp")
                sent[0] += rate
                i += 1
                time.sleep(max(0.0, 1.0 - (time.perf_counter() - t0)))

        def probe() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                time.sleep(0.001)
                late.append(time.perf_counter() - t0 - 0.001)

        def query() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                service.metrics(
                    "m",
                    "v1",
                    ["accuracy", "f1", "roc_auc", "count"],
                    start=datetime.now(UTC) - timedelta(hours=24),
                    end=datetime.now(UTC),
                    step="1h",
                )
                queries.append(time.perf_counter() - t0)
                time.sleep(0.2)

        threads = [threading.Thread(target=f, daemon=True) for f in (feed, probe, query)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(60)
    finally:
        service.close()
    lateness = np.array(late) * 1000
    return {
        "late_p95_ms": float(np.percentile(lateness, 95)),
        "late_p99_ms": float(np.percentile(lateness, 99)),
        "late_max_ms": float(lateness.max()),
        "query_p50_ms": statistics.median(queries) * 1000,
        "query_p95_ms": sorted(queries)[int(0.95 * (len(queries) - 1))] * 1000,
        "ingest_rows_per_s": sent[0] / seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=int, default=20_000, help="rows per 1-second batch")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    runs: dict[int, list[dict[str, float]]] = {0: [], 1: []}
    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-gil-") as tmp:
        for r in range(args.rounds):
            for workers in (0, 1):
                result = one(workers, args.seconds, args.rate, Path(tmp), f"{r}_{workers}")
                progress(f"round {r} workers={workers}: {result}")
                runs[workers].append(result)
    medians = {
        f"{name}_workers{w}": statistics.median(run[name] for run in runs[w])
        for w in (0, 1)
        for name in runs[w][0]
    }
    targets = [
        target("query p95 with the worker (ms)", medians["query_p95_ms_workers1"], "<=", 100, "ms"),
        target(
            "ingest rows/s with the worker vs without",
            medians["ingest_rows_per_s_workers1"] / medians["ingest_rows_per_s_workers0"],
            ">=",
            0.95,
        ),
    ]
    emit(
        "gil",
        False,
        medians,
        targets,
        params={"rounds": args.rounds, "seconds": args.seconds, "rate": args.rate},
        save=not args.no_save,
    )


if __name__ == "__main__":
    main()
