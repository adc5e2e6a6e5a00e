"""Spark: ``mlspark.profile`` throughput per core at local[1] and local[2], bytes sent per
million rows, against the embedded engine's batch ingest of the same rows in the same run.

The data is ``_data.predictions`` (20 features: 15 numeric, 5 categorical; ``cat_0`` is a
segment) over one day, written to Parquet as a lake would hold it, with labels for 80 % of
the ids in a second Parquet table (timestamps one hour after their prediction). Each
configuration runs ``--repeats`` times; the figures are medians.

* embedded: ``model.log_batch`` of the predictions in 500k-row batches, then
  ``model.log_feedback_batch`` of the labels, into a file store (the baseline);
* spark local[k]: ``mlspark.profile(model, predictions, labels=labels, ...)`` reading both
  Parquet tables, into a fresh file store: rows/s, rows/s per core, bytes of profiles sent
  per million rows and the number of requests. Each session first profiles 20k rows
  untimed (JIT and worker start-up; a session's first run is that much slower). Each
  run's report splits the time into the Spark job (``job_seconds``, with the driver's merge)
  and storing the profiles (``send_seconds``: the store's ``put_profiles``); the duplicate-id
  check (a small job over the id column) is timed on its own once per session;
* worker start: the CPU a fresh Python worker spends unpickling the function ``mapInArrow``
  ships and profiling 50 rows with it (its imports, mostly), before (the profiler pickled
  by reference: ``import mlpulse`` runs the package's ``__init__``) and after
  (``mlspark._shipped``: only what profiling imports); medians of 7 interpreters each.

    python benchmarks/bench_spark.py                       # 10,000,000 rows
    python benchmarks/bench_spark.py --rows 1000000 --repeats 3
    python benchmarks/bench_spark.py --quick                # 100,000 rows, 1 repeat
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _data
import pyarrow as pa
import pyarrow.parquet as pq
from _common import emit, progress, target

import mlpulse
from mlpulse import spark as mlspark

warnings.filterwarnings("ignore", category=FutureWarning)  # pyspark on pandas 3
MODEL_KW = dict(_data.MODEL_KW, segments=["cat_0"])
BATCH = 500_000


def write_lake(n: int, seed: int, directory: Path) -> tuple[Path, Path]:
    """Predictions and labels (80 % of ids, one hour later) as Parquet files, in slices."""
    start, end = _data.day_range(days=1)
    preds, labels = directory / "predictions", directory / "labels"
    preds.mkdir()
    labels.mkdir()
    for number, offset in enumerate(range(0, n, BATCH)):
        size = min(BATCH, n - offset)
        table = _data.predictions(size, seed=seed, offset=offset, start=start, end=end)
        pq.write_table(table, preds / f"part-{number:05d}.parquet")
        keep = size * 4 // 5
        fb = pa.table(
            {
                "id": table.column("id").slice(0, keep),
                "label": pa.array(_data.labels(seed, offset, size)[:keep]),
                "timestamp": pa.array(
                    table.column("timestamp").slice(0, keep).cast(pa.int64()).to_numpy()
                    + 3_600_000_000,
                    pa.int64(),
                ).cast(pa.timestamp("us", tz="UTC")),
            }
        )
        pq.write_table(fb, labels / f"part-{number:05d}.parquet")
    return preds, labels


def embedded(preds: Path, labels: Path, directory: Path) -> float:
    pulse = mlpulse.connect(str(directory / "embedded.duckdb"))
    model = pulse.model("bench_spark", version="v1", **MODEL_KW)
    gc.collect()
    t0 = time.perf_counter()
    for path in sorted(preds.glob("*.parquet")):
        model.log_batch(pq.read_table(path), id="id", timestamp="timestamp")
    for path in sorted(labels.glob("*.parquet")):
        model.log_feedback_batch(pq.read_table(path), id="id", label="label")
    seconds = time.perf_counter() - t0
    pulse.close()
    return seconds


WORKER = r"""
import pickle, sys, time
import pyspark.worker, pyarrow  # loaded by the worker before it unpickles a task
batches = pickle.load(open(sys.argv[2], "rb"))
payload = open(sys.argv[1], "rb").read()
t = time.process_time()
out = list(pickle.loads(payload)(batches))
print(time.process_time() - t)
"""


def worker_start(preds: Path, directory: Path, runs: int = 7) -> dict[str, float]:
    """Median CPU seconds of a fresh worker's first call: the profiler pickled by reference
    (what was shipped before) and through ``mlspark._shipped``."""
    from pyspark import cloudpickle

    pulse = mlpulse.connect(":memory:")
    model = pulse.model("bench_spark", version="v1", **MODEL_KW)
    table = pq.read_table(sorted(preds.glob("*.parquet"))[0]).slice(0, 50)
    spec = mlspark._spec_for(model, table.schema, {"id", "score", "label", "timestamp"})
    profiler = mlspark.Profiler(spec, "v1", None, "id", "timestamp", mlspark.now_micros())
    pulse.close()
    batches = directory / "batches.pkl"
    batches.write_bytes(cloudpickle.dumps(table.to_batches()))
    tasks = {"before": profiler, "after": mlspark._shipped(profiler)}
    seconds: dict[str, list[float]] = {name: [] for name in tasks}
    for name, task in tasks.items():
        (directory / f"{name}.pkl").write_bytes(cloudpickle.dumps(task))
    for _ in range(runs):
        for name in tasks:
            out = subprocess.run(
                [sys.executable, "-c", WORKER, str(directory / f"{name}.pkl"), str(batches)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            seconds[name].append(float(out.stdout.split()[-1]))
    return {name: statistics.median(values) for name, values in seconds.items()}


def spark_run(cores: int, preds: Path, labels: Path, directory: Path, repeats: int):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(f"bench-spark-{cores}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(cores * 2, 2)))
        .config("spark.driver.memory", "6g")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    times, reports = [], []
    try:
        # warm-up (not timed): the JVM's JIT and the Python workers' imports, on 20k rows
        pulse = mlpulse.connect(":memory:")
        model = pulse.model("bench_spark", version="v1", **MODEL_KW)
        first = sorted(preds.glob("*.parquet"))[0]
        p = spark.read.parquet(str(first)).limit(20_000)
        mlspark.profile(model, p, id="id", timestamp="timestamp", partitions=cores)
        pulse.close()
        from pyspark.sql import functions

        t0 = time.perf_counter()
        mlspark._mark_repeats(spark.read.parquet(str(preds)), "id", functions)
        check = time.perf_counter() - t0
        progress(f"local[{cores}] duplicate-id check: {check:.2f} s")
        for run in range(repeats):
            pulse = mlpulse.connect(str(directory / f"spark{cores}-{run}.duckdb"))
            model = pulse.model("bench_spark", version="v1", **MODEL_KW)
            p, lab = spark.read.parquet(str(preds)), spark.read.parquet(str(labels))
            gc.collect()
            t0 = time.perf_counter()
            report = mlspark.profile(
                model, p, labels=lab, id="id", timestamp="timestamp", label="label",
                partitions=cores * 2,
            )  # fmt: skip
            times.append(time.perf_counter() - t0)
            reports.append(report)
            pulse.close()
            progress(f"local[{cores}] run {run + 1}: {times[-1]:.1f} s, {report}")
    finally:
        spark.stop()
    return times, reports, check


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=None, help="rows (default 10,000,000)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="100,000 rows, one repeat")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()
    n = args.rows or (100_000 if args.quick else 10_000_000)
    repeats = 1 if args.quick else args.repeats

    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-spark-") as tmp:
        tmp = Path(tmp)
        progress(f"writing {n:,} predictions and {n * 4 // 5:,} labels to Parquet")
        preds, labels = write_lake(n, args.seed, tmp)
        base = []
        for run in range(repeats):
            base.append(embedded(preds, labels, tmp / f"e{run}"))
            progress(f"embedded run {run + 1}: {base[-1]:.1f} s ({n / base[-1]:,.0f} rows/s)")
        start = worker_start(preds, tmp)
        progress(f"worker start (CPU s): {start}")
        runs = {}
        for cores in (1, 2):
            runs[cores] = spark_run(cores, preds, labels, tmp, repeats)

    base_s = statistics.median(base)
    metrics: dict[str, object] = {
        "rows": n,
        "repeats": repeats,
        "embedded_s": base_s,
        "embedded_rows_per_s": n / base_s,
        "worker_start_cpu_s_before": start["before"],
        "worker_start_cpu_s_after": start["after"],
    }
    for cores, (times, reports, check) in runs.items():
        median = statistics.median(times)
        report = reports[0]
        if report.received != n or report.stored != n:
            raise SystemExit(f"local[{cores}]: unexpected report {report}")
        metrics.update(
            {
                f"spark{cores}_s": median,
                f"spark{cores}_rows_per_s": n / median,
                f"spark{cores}_rows_per_s_per_core": n / median / cores,
                f"spark{cores}_vs_embedded": base_s / median,
                f"spark{cores}_bytes_per_million_rows": report.bytes_sent / n * 1e6,
                f"spark{cores}_requests": report.requests,
                f"spark{cores}_parts": report.parts,
                f"spark{cores}_job_s": statistics.median(r.job_seconds for r in reports),
                f"spark{cores}_send_s": statistics.median(r.send_seconds for r in reports),
                f"spark{cores}_duplicate_check_s": check,
            }
        )
    metrics["speedup_2_over_1_cores"] = metrics["spark1_s"] / metrics["spark2_s"]  # type: ignore[operator]
    targets = [
        target("local[2] / local[1] speed-up", metrics["speedup_2_over_1_cores"], ">=", 1.3, "x"),  # type: ignore[arg-type]
    ]
    emit("spark", args.quick, metrics, targets, {"rows": n, "seed": args.seed}, save=not args.no_save)


if __name__ == "__main__":
    main()
