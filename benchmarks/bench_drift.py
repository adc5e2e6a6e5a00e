"""Drift of a 1,000,000-row x 20-column window (15 numeric, 5 categorical) against a
1,000,000-row reference, in sketch and exact mode, against Evidently and Alibi Detect on
the same data.

Planted drift: ``num_00`` mean +0.1 std, ``num_01`` spread x1.2, ``cat_0`` 20% of rows moved
to one category; every other column (and the prediction) is drawn from the reference's
distribution. mlpulse must flag exactly the planted columns, in both modes, on every run.

Evidently (DataDriftPreset) and Alibi Detect (TabularDrift) need older numpy/pandas pins, so
each is installed into its own virtualenv under /tmp (pip) and run there on the same data
(written once as Parquet).

Targets: sketch <= 0.5 s, exact <= 5 s, sketch >= 100 x faster than Evidently, right
decisions in both modes.

    python benchmarks/bench_drift.py                 # 1M rows, with Evidently and Alibi Detect
    python benchmarks/bench_drift.py --quick         # 100k rows, no baselines
    python benchmarks/bench_drift.py --no-baselines  # mlpulse only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import emit, progress, target

import mlpulse

NUMERIC = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CARD = (5, 12, 20, 35, 50)
PLANTED = ["cat_0", "num_00", "num_01"]
BASE = pd.Timestamp("2026-01-05T00:00:00Z")

VENVS = {
    # both need numpy 1.x / pandas < 2.2, which is why they live in their own virtualenvs
    "evidently": (
        Path("/tmp/mlpulse-bench-evidently"),
        ["evidently==0.4.40", "numpy<2", "pandas<2.2", "pyarrow<17"],
    ),
    "alibi": (
        Path("/tmp/mlpulse-bench-alibi"),
        ["alibi-detect", "numpy<2", "pandas<2.2", "pyarrow<17"],
    ),
}

EVIDENTLY = textwrap.dedent(
    """
    import json, sys, time, pandas as pd
    from evidently.report import Report
    from evidently.metric_preset import DataDriftPreset
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    t = time.perf_counter()
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur)
    result = report.as_dict()
    seconds = time.perf_counter() - t
    table = [m for m in result["metrics"] if m["metric"] == "DataDriftTable"][0]["result"]
    drifted = sorted(c for c, v in table["drift_by_columns"].items() if v["drift_detected"])
    print(json.dumps({"seconds": seconds, "drifted": drifted}))
    """
)
ALIBI = textwrap.dedent(
    """
    import json, sys, time, numpy as np, pandas as pd
    from alibi_detect.cd import TabularDrift
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    cols = list(ref.columns)
    cats = [i for i, c in enumerate(cols) if c.startswith("cat_")]
    def encode(frame, maps):
        out = frame.copy()
        for c in cols:
            if c.startswith("cat_"):
                out[c] = out[c].map(maps[c]).fillna(-1)
        return out.to_numpy(dtype=np.float64)
    maps = {c: {v: i for i, v in enumerate(sorted(ref[c].unique()))} for c in cols if c.startswith("cat_")}
    x_ref, x_cur = encode(ref, maps), encode(cur, maps)
    t = time.perf_counter()
    cd = TabularDrift(x_ref, p_val=0.05, categories_per_feature={i: None for i in cats})
    pred = cd.predict(x_cur, drift_type="feature")
    seconds = time.perf_counter() - t
    drifted = sorted(c for c, d in zip(cols, pred["data"]["is_drift"]) if d)
    print(json.dumps({"seconds": seconds, "drifted": drifted}))
    """
)


def frame(n: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {c: rng.normal(0.0, 1.0, n) for c in NUMERIC}
    for c, k in zip(CATEGORICAL, CARD, strict=True):
        p = np.linspace(1.0, 2.0, k)
        data[c] = np.array([f"{c}_v{j:02d}" for j in range(k)])[rng.choice(k, n, p=p / p.sum())]
    out = pd.DataFrame(data)
    out["score"] = rng.uniform(size=n)
    if drift:
        out["num_00"] += 0.1
        out["num_01"] *= 1.2
        move = rng.uniform(size=n) < 0.2
        out.loc[move, "cat_0"] = "cat_0_v00"
    return out


def time_it(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def baseline(name: str, ref_path: Path, cur_path: Path) -> dict[str, object]:
    venv, packages = VENVS[name]
    python = venv / "bin" / "python"
    try:
        if not python.exists():
            progress(f"  creating {venv} and installing {' '.join(packages)} (pip)")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *packages], check=True, timeout=1800
            )
        script = venv / "run_drift.py"
        script.write_text(EVIDENTLY if name == "evidently" else ALIBI)
        done = subprocess.run(
            [str(python), str(script), str(ref_path), str(cur_path)],
            capture_output=True, text=True, timeout=3600,
        )
        if done.returncode:
            return {"error": done.stderr.strip()[-800:]}
        return json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as exc:  # report, do not crash the mlpulse figures
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="independent data sets (seeds)")
    args = parser.parse_args()
    n = args.rows or (100_000 if args.quick else 1_000_000)

    metrics: dict[str, object] = {"rows": n, "planted": PLANTED}
    sketch_times, exact_times, decisions = [], [], {"sketch": [], "exact": []}
    ref = cur = None
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            progress(f"run {run}: generating {n:,} + {n:,} rows")
            ref = frame(n, seed=100 + run, drift=False)
            cur = frame(n, seed=200 + run, drift=True)
            pulse = mlpulse.connect(str(Path(tmp) / f"drift{run}.duckdb"))
            t = time.perf_counter()
            kw = dict(version="v1", task="binary", prediction="score", label="label")
            # DuckDB 2.0.0 loses the rows of a table created and bulk-filled (> one row group)
            # in one transaction, which Pulse._store_reference does on first registration;
            # registering a small slice first creates the table in its own transaction.
            pulse.model("bench_drift", reference=ref.iloc[:1000], **kw)
            model = pulse.model("bench_drift", reference=ref, **kw)
            logged = cur.assign(
                id=[f"r{i}" for i in range(n)],
                timestamp=BASE + pd.to_timedelta(np.arange(n) * (86_400 / n), unit="s"),
            )
            for lo in range(0, n, 250_000):
                model.log_batch(logged.iloc[lo : lo + 250_000], id="id", timestamp="timestamp")
            progress(f"  ingest {time.perf_counter() - t:.1f} s")
            start, end = "2026-01-05", "2026-01-06"
            model.drift(start, end)  # warm: imports, reference prediction state cache
            s, sketch = time_it(lambda m=model: m.drift(start, end), 3)  # noqa: B023
            e, exact = time_it(lambda m=model: m.drift(start, end, mode="exact"), 1)  # noqa: B023
            sketch_times.append(s)
            exact_times.append(e)
            decisions["sketch"].append(sorted(sketch.drifted_columns))
            decisions["exact"].append(sorted(exact.drifted_columns))
            progress(f"  sketch {s:.3f} s {sorted(sketch.drifted_columns)}; "
                     f"exact {e:.2f} s {sorted(exact.drifted_columns)}")
            if run == 0:
                metrics["sketch_frame"] = sketch.to_pandas().round(5).to_dict("records")
            pulse.close()
        metrics["sketch_s"] = max(sketch_times)
        metrics["exact_s"] = max(exact_times)
        metrics["decisions"] = decisions
        right = all(d == PLANTED for mode in decisions.values() for d in mode)
        metrics["decisions_right"] = right
        targets = [
            target("sketch mode (worst run)", metrics["sketch_s"], "<=", 0.5, " s"),
            target("exact mode (worst run)", metrics["exact_s"], "<=", 5.0, " s"),
            target("planted columns found, no others (all runs, both modes)", float(right),
                   ">=", 1.0),
        ]
        if not args.no_baselines and not args.quick:
            ref_path, cur_path = Path(tmp) / "ref.parquet", Path(tmp) / "cur.parquet"
            ref.drop(columns="score").to_parquet(ref_path)
            cur.drop(columns="score").to_parquet(cur_path)
            for name in ("evidently", "alibi"):
                progress(f"baseline {name}")
                got = baseline(name, ref_path, cur_path)
                metrics[name] = got
                if "seconds" in got:
                    metrics[f"{name}_ratio_to_sketch"] = got["seconds"] / metrics["sketch_s"]
                    metrics[f"{name}_ratio_to_exact"] = got["seconds"] / metrics["exact_s"]
                progress(f"  {name}: {got}")
            if "seconds" in metrics.get("evidently", {}):
                targets.append(target("Evidently / sketch", metrics["evidently_ratio_to_sketch"],
                                      ">=", 100.0, " x"))
    emit("drift", args.quick, metrics, targets, params={"rows": n, "runs": args.runs})


if __name__ == "__main__":
    main()
