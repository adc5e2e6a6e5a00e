"""Batch ingest: 1,000,000 predictions x 20 features via ``model.log_batch`` into a file store.

Baseline (same run, measured first): DuckDB alone inserts the same Arrow table into a fresh
file database (``CREATE TABLE t AS SELECT * FROM arrow_table``, then ``CHECKPOINT``).

Targets: >= 250,000 rows/s, and mlpulse time <= 5 x the DuckDB baseline time.

    python benchmarks/bench_ingest.py            # 1,000,000 rows
    python benchmarks/bench_ingest.py --quick    # 100,000 rows
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import _data
import duckdb
from _common import emit, progress, target

import mlpulse


def duckdb_baseline(table, directory: Path) -> float:
    path = directory / "baseline.duckdb"
    arrow_table = table  # noqa: F841  (DuckDB replacement scan by variable name)
    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT * FROM arrow_table")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rows", type=int, default=None, help="rows (default 1,000,000; --quick 100,000)"
    )
    ap.add_argument("--quick", action="store_true", help="small smoke size")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()
    n = args.rows or (100_000 if args.quick else 1_000_000)

    start, end = _data.day_range(days=1)
    progress(f"generating {n:,} rows")
    table = _data.predictions(n, seed=args.seed, start=start, end=end)
    progress(
        f"table: {table.num_rows:,} rows x {table.num_columns} columns, {table.nbytes / 2**20:.0f} MiB"
    )

    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-") as tmp:
        tmp = Path(tmp)
        gc.collect()
        base_s = duckdb_baseline(table, tmp)
        progress(f"duckdb baseline: {base_s:.3f} s ({n / base_s:,.0f} rows/s)")

        gc.collect()
        pulse = mlpulse.connect(str(tmp / "pulse.duckdb"))
        model = pulse.model("bench_ingest", version="v1", **_data.MODEL_KW)
        t0 = time.perf_counter()
        report = model.log_batch(table, id="id", timestamp="timestamp")
        ingest_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        pulse.close()
        close_s = time.perf_counter() - t1
        progress(
            f"mlpulse log_batch: {ingest_s:.3f} s ({n / ingest_s:,.0f} rows/s); close {close_s:.3f} s"
        )
        if report.stored != n or report.quarantined:
            raise SystemExit(f"unexpected report: {report}")
        file_mib = sum(p.stat().st_size for p in tmp.glob("pulse.duckdb*")) / 2**20
        base_mib = sum(p.stat().st_size for p in tmp.glob("baseline.duckdb*")) / 2**20

    rows_per_s = n / ingest_s
    ratio = ingest_s / base_s
    metrics = {
        "rows": n,
        "rows_per_s": rows_per_s,
        "log_batch_s": ingest_s,
        "close_s": close_s,
        "duckdb_baseline_s": base_s,
        "duckdb_rows_per_s": n / base_s,
        "ratio_vs_duckdb": ratio,
        "ratio_incl_close_vs_duckdb": (ingest_s + close_s) / base_s,
        "store_file_mib": file_mib,
        "baseline_file_mib": base_mib,
    }
    targets = [
        target("ingest rows/s", rows_per_s, ">=", 250_000),
        target("time / DuckDB-alone time", ratio, "<=", 5.0, "x"),
    ]
    emit(
        "ingest",
        args.quick,
        metrics,
        targets,
        {"rows": n, "seed": args.seed},
        save=not args.no_save,
    )


if __name__ == "__main__":
    main()
