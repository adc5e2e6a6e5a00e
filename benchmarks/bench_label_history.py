"""Late labels cost independent of history: apply 200,000 labels for the latest day's
predictions with H predictions of earlier history stored (H = 0.5 M, 5 M, 50 M by default).
Target: 10x more history costs <= 1.3x the apply time.

History is logged in daily batches before the latest day, so the raw table holds it in time
order as a live service would. Each size is one fresh store; the apply is timed ``--repeats``
times (fresh labels each time: a later label for the same id replaces the earlier one, and
every apply does the same work).

    python benchmarks/bench_label_history.py                 # 0.5 M, 5 M, 50 M
    python benchmarks/bench_label_history.py --sizes 500000 5000000 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import _data
import numpy as np
import pyarrow as pa
from _common import emit, progress, target

import mlpulse

LATEST = 200_000
PER_DAY = 1_000_000


def build(path: Path, history: int, seed: int):
    """A store with ``history`` predictions over the days before the latest one, then the
    latest day's ``LATEST`` predictions; returns the model handle and the latest ids' offset."""
    pulse = mlpulse.connect(str(path))
    model = pulse.model("bench_history", version="v1", **_data.MODEL_KW)
    end = _data.utc_now_floor_minute()
    days = max(1, -(-history // PER_DAY))
    offset = 0
    t0 = time.perf_counter()
    for day in range(days, 0, -1):
        n = min(PER_DAY, history - offset)
        lo = end - timedelta(days=day + 1)
        model.log_batch(
            _data.predictions(n, seed=seed, offset=offset, start=lo, end=lo + timedelta(days=1)),
            id="id",
            timestamp="timestamp",
        )
        offset += n
    start = end - timedelta(days=1)
    model.log_batch(
        _data.predictions(LATEST, seed=seed, offset=offset, start=start, end=end),
        id="id",
        timestamp="timestamp",
    )
    progress(f"built {history:,} + {LATEST:,} predictions in {time.perf_counter() - t0:.0f} s")
    return pulse, model, offset


def apply_labels(model, offset: int, repeat: int) -> float:
    fb = _data.feedback(LATEST, seed=repeat, offset=offset, shuffle=True)
    # a different label draw per repeat, so each apply changes rows
    flip = pa.array(np.random.default_rng(repeat).integers(0, 2, LATEST))
    fb = fb.set_column(1, "label", flip)
    t0 = time.perf_counter()
    report = model.log_feedback_batch(fb, id="id", label="label")
    seconds = time.perf_counter() - t0
    if report.matched != LATEST:
        raise SystemExit(f"expected {LATEST} matched labels, got {report}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[500_000, 5_000_000, 50_000_000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()

    medians: dict[int, float] = {}
    runs: dict[int, list[float]] = {}
    for history in args.sizes:
        with tempfile.TemporaryDirectory(prefix="mlpulse-bench-") as tmp:
            pulse, model, offset = build(Path(tmp) / "pulse.duckdb", history, args.seed)
            times = [apply_labels(model, offset, r) for r in range(args.repeats)]
            pulse.close()
        runs[history] = times
        medians[history] = statistics.median(times)
        progress(
            f"history {history:,}: 200k labels in {medians[history]:.3f} s (median; "
            + " · ".join(f"{t:.3f}" for t in times)
            + ")"
        )
    sizes = sorted(medians)
    base = medians[sizes[0]]
    metrics = {
        "latest_labels": LATEST,
        "median_s": {str(k): v for k, v in medians.items()},
        "runs_s": {str(k): v for k, v in runs.items()},
        "ratio_vs_smallest": {str(k): v / base for k, v in medians.items()},
    }
    targets = [
        target(f"x{b // a} history ({b:,} vs {a:,})", medians[b] / medians[a], "<=", 1.3, "x")
        for a, b in zip(sizes, sizes[1:], strict=False)
    ]
    emit("label_history", False, metrics, targets, {"sizes": sizes}, save=not args.no_save)


if __name__ == "__main__":
    main()
