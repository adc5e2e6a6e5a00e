"""Late labels: with 1,000,000 predictions stored, apply 1,000,000 labels in shuffled order
with one ``model.log_feedback_batch`` call. Target: <= 3 s.

Baseline (informational, same run): DuckDB alone joining the same labels into a copy of the
raw predictions (``UPDATE t SET label = f.label FROM fb f WHERE t.id = f.id``).

    python benchmarks/bench_feedback.py            # 1,000,000 predictions + labels
    python benchmarks/bench_feedback.py --quick    # 100,000
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


def duckdb_baseline(table, fb, directory: Path) -> float:
    """UPDATE-join of the labels into a plain DuckDB table (setup untimed)."""
    preds = table  # noqa: F841
    con = duckdb.connect(str(directory / "baseline.duckdb"))
    con.execute("CREATE TABLE t AS SELECT *, NULL::BIGINT AS label FROM preds")
    con.execute("CHECKPOINT")
    t0 = time.perf_counter()
    con.register("fb", fb)
    con.execute("UPDATE t SET label = fb.label FROM fb WHERE t.id = fb.id")
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
    ap.add_argument("--no-baseline", action="store_true", help="skip the DuckDB UPDATE baseline")
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()
    n = args.rows or (100_000 if args.quick else 1_000_000)

    start, end = _data.day_range(days=1)
    progress(f"generating {n:,} predictions and labels")
    table = _data.predictions(n, seed=args.seed, start=start, end=end)
    fb = _data.feedback(n, seed=args.seed, shuffle=True)

    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-") as tmp:
        tmp = Path(tmp)
        base_s = None
        if not args.no_baseline:
            base_s = duckdb_baseline(table, fb, tmp)
            progress(f"duckdb UPDATE-join baseline: {base_s:.3f} s")
        pulse = mlpulse.connect(str(tmp / "pulse.duckdb"))
        model = pulse.model("bench_feedback", version="v1", **_data.MODEL_KW)
        t0 = time.perf_counter()
        report = model.log_batch(table, id="id", timestamp="timestamp")
        progress(f"setup: log_batch {time.perf_counter() - t0:.2f} s ({report.stored:,} stored)")
        del table
        gc.collect()
        t0 = time.perf_counter()
        fb_report = model.log_feedback_batch(fb, id="id", label="label")
        fb_s = time.perf_counter() - t0
        progress(f"log_feedback_batch: {fb_s:.3f} s ({n / fb_s:,.0f} labels/s): {fb_report}")
        matched = getattr(fb_report, "matched", None)
        if fb_report.stored != n or (matched is not None and matched != n):
            raise SystemExit(f"unexpected report: {fb_report}")
        # sanity: the stored labels give the expected accuracy over the whole day
        check = model.metrics(["accuracy"], start=start, end=end)
        n_labeled = int(check["n_labeled"].sum())
        pulse.close()
        if n_labeled != n:
            raise SystemExit(f"expected {n} labeled rows, metrics() sees {n_labeled}")

    metrics = {
        "rows": n,
        "feedback_s": fb_s,
        "labels_per_s": n / fb_s,
        "duckdb_update_baseline_s": base_s,
        "ratio_vs_duckdb_update": fb_s / base_s if base_s else None,
    }
    targets = [target("feedback apply time", fb_s, "<=", 3.0, " s")]
    emit(
        "feedback",
        args.quick,
        metrics,
        targets,
        {"rows": n, "seed": args.seed},
        save=not args.no_save,
    )


if __name__ == "__main__":
    main()
