"""``mlpulse report --reference REF --current CUR``: a 1,000,000-row x 20-column current
file against a 1,000,000-row reference (Parquet; 15 numeric and 5 categorical features, a
probability score, labels), end to end through :class:`mlpulse.report.Report` as the CLI
runs it: read both files, register the reference in an in-memory store, profile the current
rows with their labels and store the profiles (no timestamps: one hour's buckets), metrics,
label-free estimates, drift, quality, distributions, render, write.

Planted drift as in ``bench_drift.py``: ``num_00`` mean +0.1 std, ``num_01`` spread x1.2,
``cat_0`` 20% of rows moved to one category.

Baseline (same run): the least any binned report of these files must do -- read both
Parquet files with pyarrow and bin every column with numpy (``np.histogram`` for numeric,
``pyarrow.compute.value_counts`` for categorical), no analyses, no HTML.

Targets: report < 10 s, file < 5 MB (5,000,000 bytes), the planted columns drifted.

    python benchmarks/bench_report.py            # 1M vs 1M, 3 runs
    python benchmarks/bench_report.py --quick    # 100k vs 100k, 1 run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import emit, progress, target

NUMERIC = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CARD = (5, 12, 20, 35, 50)
PLANTED = ["cat_0", "num_00", "num_01"]
BYTES_LIMIT = 5_000_000
SECONDS_LIMIT = 10.0


def table(n: int, seed: int, drift: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {}
    for i, name in enumerate(NUMERIC):
        x = rng.normal(loc=i, scale=1.0 + i / 10, size=n)
        if drift and name == "num_00":
            x = x + 0.1 * (1.0 + i / 10)
        if drift and name == "num_01":
            x = i + (x - i) * 1.2
        cols[name] = pa.array(x)
    for j, name in enumerate(CATEGORICAL):
        weights = 1.0 / np.arange(1, CARD[j] + 1)
        idx = rng.choice(CARD[j], size=n, p=weights / weights.sum())
        if drift and name == "cat_0":
            idx = np.where(rng.random(n) < 0.2, CARD[j] - 1, idx)
        vocab = np.array([f"c{j}_v{k:02d}" for k in range(CARD[j])])
        cols[name] = pa.array(vocab[idx])
    score = rng.beta(2.0, 2.0, n)
    cols["score"] = pa.array(score)
    cols["label"] = pa.array((rng.random(n) < score).astype(np.int64))
    return pa.table(cols)


def baseline(ref: Path, cur: Path) -> float:
    started = time.perf_counter()
    for path in (ref, cur):
        t = pq.read_table(path)
        for name in NUMERIC + ["score"]:
            np.histogram(t.column(name).to_numpy(), bins=30)
        for name in CATEGORICAL + ["label"]:
            pc.value_counts(t.column(name))
    return time.perf_counter() - started


def run_report(ref: Path, cur: Path, out: Path) -> tuple[float, dict]:
    from mlpulse.report import Report

    started = time.perf_counter()
    report = Report.compare(ref, cur)
    report.save(out)
    return time.perf_counter() - started, report.summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows, one run")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    n = args.rows or (100_000 if args.quick else 1_000_000)
    runs = args.runs or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        ref, cur, out = Path(tmp, "ref.parquet"), Path(tmp, "cur.parquet"), Path(tmp, "r.html")
        progress(f"writing {n:,} x 20 reference and current Parquet files")
        pq.write_table(table(n, 1, False), ref)
        pq.write_table(table(n, 2, True), cur)
        seconds, bases, sizes, drifted, loads = [], [], [], [], []
        for i in range(runs):
            bases.append(baseline(ref, cur))
            s, summary = run_report(ref, cur, out)
            seconds.append(s)
            sizes.append(out.stat().st_size)
            drifted.append(sorted(summary["drifted_columns"]))
            loads.append(os.getloadavg()[0])
            progress(f"run {i + 1}: report {s:.2f} s, baseline {bases[-1]:.2f} s, "
                     f"{sizes[-1]:,} bytes, drifted {drifted[-1]}, "
                     f"load average {loads[-1]:.1f}")  # fmt: skip
    median = statistics.median(seconds)
    base = statistics.median(bases)
    right = all(d == PLANTED for d in drifted)
    targets = [
        target("report seconds (median)", median, "<", SECONDS_LIMIT, " s"),
        target("report file bytes (largest)", float(max(sizes)), "<", BYTES_LIMIT, " B"),
        target("planted columns drifted, no others (runs right)", float(right), ">=", 1.0),
    ]
    emit(
        "report",
        args.quick,
        {"seconds": seconds, "median_seconds": median, "baseline_seconds": bases,
         "baseline_median": base, "ratio": median / base if base else None,
         "bytes": sizes, "drifted": drifted, "load_average_1m": loads},
        targets,
        params={"rows": n, "runs": runs},
    )  # fmt: skip
    return 0 if all(t["pass"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
