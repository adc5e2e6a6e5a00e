"""Storage size over simulated days, with and without retention.

Predictions (20 numeric features, a segment column with 4 values, latency, 80 % labeled)
arrive over ``--days`` simulated days, one batch per day. The same stream goes into two
files: one that keeps everything (``raw_retention="never"``) and one with retention
(``--raw-retention``, minute profiles ``--minute-retention``) maintained after every day.
After each day the script records the database file's size (checkpointed), the lake's size,
raw rows in the file and the profile blob bytes by resolution; at the end it prints bytes
per stored prediction (raw rows, profiles) and where the profile bytes are.

    python benchmarks/bench_storage.py --rows 300000 --days 30
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment  # noqa: E402

import mlpulse  # noqa: E402

START = pd.Timestamp("2026-01-01", tz="UTC")
FEATURES = [f"f{i}" for i in range(20)]


def day_batch(day: int, n: int, rng: np.random.Generator) -> pd.DataFrame:
    ts = START + pd.Timedelta(days=day) + pd.to_timedelta(np.sort(rng.uniform(0, 86400, n)), "s")
    x = rng.normal(size=(n, len(FEATURES)))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["id"] = [f"d{day}-{i}" for i in range(n)]
    frame["ts"] = ts
    frame["plan"] = rng.choice(["free", "pro", "team", "edu"], n, p=[0.6, 0.25, 0.1, 0.05])
    frame["score"] = 1 / (1 + np.exp(-x[:, 0]))
    frame["latency_ms"] = rng.gamma(2.0, 8.0, n)
    frame["y"] = (rng.uniform(size=n) < frame["score"]).astype(int)
    return frame


def measure(pulse) -> dict:
    store = pulse.service.store
    store.checkpoint()
    lake_bytes = 0
    lake = pulse.path + ".lake"
    for folder, _dirs, files in os.walk(lake):
        lake_bytes += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    blobs = dict(
        store.fetch_all(
            "SELECT p.resolution, sum(octet_length(b.blob)) FROM profiles p JOIN profile_blobs b "
            "ON p.key = b.key GROUP BY p.resolution"
        )
    )
    parts = dict(store.fetch_all("SELECT resolution, count(*) FROM profiles GROUP BY resolution"))
    return {
        "file_bytes": os.path.getsize(pulse.path),
        "lake_bytes": lake_bytes,
        "raw_rows": int(store.fetch_one("SELECT count(*) FROM raw_1")[0]),
        "blob_bytes": {k: int(v) for k, v in blobs.items()},
        "parts": {k: int(v) for k, v in parts.items()},
    }


def run(path: str, days: int, per_day: int, retention: dict | None, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    settings = retention or {"raw_retention": "never"}
    pulse = mlpulse.connect(path, **settings)
    model = pulse.model("sized", task="binary", prediction="score", label="y", segments=["plan"])
    series = []
    for day in range(days):
        batch = day_batch(day, per_day, rng)
        started = time.perf_counter()
        model.log_batch(batch.drop(columns="y"), timestamp="ts")
        labeled = batch.sample(frac=0.8, random_state=day)
        model.log_feedback_batch({"id": labeled["id"], "y": labeled["y"]})
        ingest = time.perf_counter() - started
        report = None
        if retention:
            report = pulse.maintain(now=START + pd.Timedelta(days=day + 1))
        point = {"day": day + 1, "stored": (day + 1) * per_day, "ingest_s": ingest, **measure(pulse)}
        if report:
            point["maintain_s"] = report["seconds"]
            point["compacted"] = report["compacted"]
        series.append(point)
        print(json.dumps({"with_retention": bool(retention), **point}), flush=True)
    pulse.close()
    return series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="predictions in all")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--raw-retention", default="7d")
    parser.add_argument("--minute-retention", default="2d")
    args = parser.parse_args()
    per_day = args.rows // args.days
    work = tempfile.mkdtemp(prefix="bench-storage-")
    try:
        kept = run(os.path.join(work, "kept.duckdb"), args.days, per_day, None, 1)
        retained = run(
            os.path.join(work, "retained.duckdb"),
            args.days,
            per_day,
            {
                "raw_retention": args.raw_retention,
                "profile_retention": {"minute": args.minute_retention, "hour": "400d"},
            },
            1,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    last = kept[-1]
    blob_total = sum(last["blob_bytes"].values())
    summary = {
        "rows": per_day * args.days,
        "days": args.days,
        "rows_per_day": per_day,
        "file_mb_without_retention": last["file_bytes"] / 2**20,
        "file_mb_with_retention": retained[-1]["file_bytes"] / 2**20,
        "lake_mb_with_retention": retained[-1]["lake_bytes"] / 2**20,
        "bytes_per_prediction_file_without_retention": last["file_bytes"] / last["stored"],
        "profile_blob_bytes_per_prediction": blob_total / last["stored"],
        "profile_blob_share_by_resolution": {
            k: v / blob_total for k, v in sorted(last["blob_bytes"].items())
        },
        "minute_parts_per_day": last["parts"].get("minute", 0) / args.days,
        "lake_bytes_per_prediction": retained[-1]["lake_bytes"]
        / max(1, retained[-1]["stored"] - retained[-1]["raw_rows"]),
        "retained_file_mb_by_day": [round(p["file_bytes"] / 2**20, 2) for p in retained],
        "kept_file_mb_by_day": [round(p["file_bytes"] / 2**20, 2) for p in kept],
        "maintain_s_median": float(np.median([p.get("maintain_s", 0) for p in retained])),
    }
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "storage.json").write_text(
        json.dumps({"environment": environment(), "summary": summary, "kept": kept,
                    "retained": retained}, indent=1)  # fmt: skip
    )


if __name__ == "__main__":
    main()
