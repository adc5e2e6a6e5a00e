"""Caller-side cost of one ``model.log(...)`` with a 20-feature dict, timed per call with
``time.perf_counter_ns`` while the background batcher is running and writing to a file store.
Then ``pulse.flush()`` and check that every row was stored.

Targets: p50 <= 20 us, p99 <= 200 us.

    python benchmarks/bench_log.py            # 200,000 calls
    python benchmarks/bench_log.py --quick    # 20,000 calls
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _data
import numpy as np
from _common import emit, progress, target

import mlpulse


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--calls", type=int, default=None, help="calls (default 200,000; --quick 20,000)"
    )
    ap.add_argument("--quick", action="store_true", help="small smoke size")
    ap.add_argument("--distinct", type=int, default=10_000, help="distinct feature dicts cycled")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()
    n = args.calls or (20_000 if args.quick else 200_000)

    rows = _data.feature_rows(min(args.distinct, n), seed=args.seed)
    preds = np.random.default_rng(args.seed).random(len(rows)).tolist()
    ids = [f"r{i}" for i in range(n)]
    k = len(rows)

    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-") as tmp:
        pulse = mlpulse.connect(str(Path(tmp) / "pulse.duckdb"))
        model = pulse.model("bench_log", version="v1", **_data.MODEL_KW)
        # warm-up: the first batch creates the raw table and registers the features
        model.log(id="warmup", features=rows[0], prediction=0.5, latency_ms=1.0)
        pulse.flush()
        before = datetime.now(UTC) - timedelta(minutes=1)

        durations = np.empty(n, dtype=np.int64)
        clock = time.perf_counter_ns
        log = model.log
        progress(f"{n:,} log() calls")
        t_start = time.perf_counter()
        for i in range(n):
            j = i % k
            t0 = clock()
            log(id=ids[i], features=rows[j], prediction=preds[j], latency_ms=3.0)
            durations[i] = clock() - t0
        loop_s = time.perf_counter() - t_start
        t0 = time.perf_counter()
        pulse.flush()
        flush_s = time.perf_counter() - t0
        progress(f"loop {loop_s:.2f} s, flush {flush_s:.2f} s")
        after = datetime.now(UTC) + timedelta(minutes=1)
        frame = model.metrics(["count"], start=before, end=after)
        stored = int(frame["n"].sum())
        dropped = pulse.dropped
        quarantined = len(model.quarantined())
        pulse.close()

    us = durations / 1000.0
    p50, p90, p99, p999 = (float(np.percentile(us, q)) for q in (50, 90, 99, 99.9))
    expected = n + 1  # + warm-up row
    progress(
        f"p50 {p50:.2f} us, p99 {p99:.2f} us, max {us.max():.0f} us; stored {stored:,}/{expected:,}"
    )
    metrics = {
        "calls": n,
        "p50_us": p50,
        "p90_us": p90,
        "p99_us": p99,
        "p999_us": p999,
        "max_us": float(us.max()),
        "mean_us": float(us.mean()),
        "calls_per_s": n / loop_s,
        "flush_s": flush_s,
        "stored": stored,
        "dropped": dropped,
        "quarantined": quarantined,
    }
    targets = [
        target("log() p50", p50, "<=", 20.0, " us"),
        target("log() p99", p99, "<=", 200.0, " us"),
        target("rows stored after flush", float(stored), ">=", float(expected)),
    ]
    emit(
        "log", args.quick, metrics, targets, {"calls": n, "seed": args.seed}, save=not args.no_save
    )


if __name__ == "__main__":
    main()
