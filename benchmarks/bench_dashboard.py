"""The dashboard's model page on a large store: the API calls the page makes (the same
routes, parameters and concurrency as ``static/app.js``) against a real ``mlpulse serve``.

The store holds 30 days of minute data. Day 1 is logged through ``model.log_batch`` (raw
rows, labels for 80 % of them); days 2-30 are day 1's bucket profiles (minute, hour and day
resolutions) stored again under shifted buckets with ``model.put_profiles``, as a Spark job
would send them: the profiles then describe ``30 x`` the day's predictions (``--per-day``,
default 333,334: 10 M in all) while raw rows exist for one day only.

The page's calls for a range (``range=30d`` picks a 6-hour step, 120 points; drift,
estimate and quality per day):

* ``metrics`` (9 metrics) at the step: the volume, latency, prediction and performance
  charts (the page is usable once this answers); then ``metrics`` with ``ci=0.95`` (the
  performance chart's bands);
* ``estimate`` (3 metrics) per heat window; ``drift`` over the range; ``drift`` with
  ``step`` (the heatmap); ``quality`` with ``step``; ``alerts?model=``.

Reported per range (24 h, 7 d, 30 d; median of ``--repeat`` page loads): the first chart
(the metrics call alone) and the whole page (every call, 4 at a time, as the browser sends
them). The 24 h page on the same store is the baseline of the ratios.

    python benchmarks/bench_dashboard.py              # 10 M predictions (a few minutes)
    python benchmarks/bench_dashboard.py --per-day 50000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from _common import emit, progress, target

import mlpulse

DAY_US = 86_400_000_000
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
MODEL = "bench_dashboard"
PAGES = {"24h": ("24h", "15m", "1h"), "7d": ("7d", "1h", "6h"), "30d": ("30d", "6h", "1d")}
KEYS = ["accuracy", "roc_auc", "f1"]
WANTED = [*KEYS, "label_coverage", "latency_p50", "latency_p95", "latency_p99",
          "prediction_mean", "positive_rate"]  # fmt: skip


def frame(n: int, rng: np.random.Generator, start: datetime) -> pd.DataFrame:
    plan = rng.choice(["basic", "pro", "enterprise"], n, p=[0.5, 0.35, 0.15])
    charges = rng.gamma(4, 15, n)
    age = rng.integers(18, 80, n)
    logit = 0.02 * (charges - 60) - 0.01 * (age - 45) + rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-logit))
    offsets = np.sort(rng.integers(0, DAY_US, n))
    return pd.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "ts": pd.to_datetime(int(start.timestamp() * 1e6) + offsets, unit="us", utc=True),
        "age": age, "monthly_charges": charges, "plan": plan,
        "region": rng.choice(["north", "south", "east", "west"], n),
        "score": score, "churned": (rng.uniform(0, 1, n) < score).astype(int),
        "latency_ms": rng.lognormal(2.5, 0.4, n),
    })  # fmt: skip


def build(db: Path, per_day: int) -> dict[str, float]:
    rng = np.random.default_rng(11)
    reference = frame(5000, rng, START - timedelta(days=1)).drop(columns=["id", "ts", "latency_ms"])
    pulse = mlpulse.connect(str(db))
    took: dict[str, float] = {}
    try:
        model = pulse.model(MODEL, version="v1", task="binary", reference=reference,
                            prediction="score", label="churned", segments=["plan"])  # fmt: skip
        day = frame(per_day, rng, START)
        t0 = time.perf_counter()
        for lo in range(0, per_day, 200_000):
            part = day.iloc[lo : lo + 200_000]
            model.log_batch(part.drop(columns=["churned"]), id="id", timestamp="ts")
        labeled = day.sample(frac=0.8, random_state=1)[["id", "churned"]]
        model.log_feedback_batch(labeled, id="id", label="churned")
        took["log day 1 (s)"] = time.perf_counter() - t0
        profiles = pulse.service.store.fetch_arrow(
            "SELECT p.segment, p.resolution, p.bucket, p.part, b.blob FROM profiles p "
            "JOIN profile_blobs b ON b.key = p.key JOIN models m ON m.model_id = p.model_id "
            "WHERE m.name = ? AND p.resolution IN ('minute', 'hour', 'day')",
            [MODEL],
        ).to_pandas()
        t0 = time.perf_counter()
        for d in range(1, DAYS):
            shifted = profiles.assign(bucket=profiles["bucket"] + d * DAY_US)
            model.put_profiles(shifted, replace=True)
        took["put 29 days of profiles (s)"] = time.perf_counter() - t0
        took["profile rows per day"] = float(len(profiles))
    finally:
        pulse.close()
    return took


def page_calls(base: str, span: str, step: str, heat: str) -> list[tuple[str, str, dict | None]]:
    end = START + timedelta(days=DAYS)
    seconds = pd.Timedelta(span.replace("d", "D")).total_seconds()
    start = end - timedelta(seconds=seconds)
    w = f"start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}"
    v = f"{base}/api/v1/models/{MODEL}/versions/*/"
    body = {"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{end:%Y-%m-%dT%H:%M:%SZ}"}
    return [
        ("metrics", f"{v}metrics?{w}&metrics={','.join(WANTED)}&step={step}", None),
        ("metrics ci", f"{v}metrics?{w}&metrics={','.join(KEYS)}&step={step}&ci=0.95", None),
        ("estimate", f"{v}estimate?{w}&metrics={','.join(KEYS)}&step={heat}", None),
        ("drift", f"{v}drift", body),
        ("drift timeline", f"{v}drift", {**body, "step": heat}),
        ("quality", f"{v}quality", {**body, "step": heat}),
        ("alerts", f"{base}/api/v1/alerts?model={MODEL}", None),
    ]


def call(client: httpx.Client, item: tuple[str, str, dict | None]) -> tuple[str, float, int]:
    name, url, body = item
    t0 = time.perf_counter()
    response = client.post(url, json=body) if body is not None else client.get(url)
    response.raise_for_status()
    return name, time.perf_counter() - t0, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-day", type=int, default=333_334)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "dashboard.duckdb"
        progress(f"building 30 days: {args.per_day:,} predictions a day")
        built = build(db, args.per_day)
        port = 8700 + int(time.time()) % 200
        server = subprocess.Popen([sys.executable, "-m", "mlpulse.cli", "serve", "--db", str(db),
                                   "--port", str(port), "--log-level", "warning"])  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            results: dict[str, dict[str, float]] = {}
            with httpx.Client(timeout=300) as client, ThreadPoolExecutor(4) as pool:
                for page, (span, step, heat) in PAGES.items():
                    calls = page_calls(base, span, step, heat)
                    list(pool.map(lambda c: call(client, c), calls))  # warm: first reads
                    first, whole, each = [], [], {}
                    for _ in range(args.repeat):
                        first.append(call(client, calls[0])[1])
                        t0 = time.perf_counter()
                        for name, sec, _size in pool.map(lambda c: call(client, c), calls):
                            each.setdefault(name, []).append(sec)
                        whole.append(time.perf_counter() - t0)
                    results[page] = {
                        "first chart (ms)": 1000 * statistics.median(first),
                        "whole page (ms)": 1000 * statistics.median(whole),
                        **{f"{k} (ms)": 1000 * statistics.median(v) for k, v in each.items()},
                    }
                    progress(f"{page}: {results[page]}")
        finally:
            server.terminate()
            server.wait(60)
    base_first = results["24h"]["first chart (ms)"]
    base_whole = results["24h"]["whole page (ms)"]
    big = results["30d"]
    emit(
        "dashboard",
        args.per_day < 333_334,
        {
            "predictions (profiles)": args.per_day * DAYS,
            "raw rows": args.per_day,
            **built,
            **{f"{page} {k}": round(v, 1) for page, r in results.items() for k, v in r.items()},
            "30d/24h first chart": round(big["first chart (ms)"] / base_first, 2),
            "30d/24h whole page": round(big["whole page (ms)"] / base_whole, 2),
        },
        [
            target("30d first chart", big["first chart (ms)"], "<", 1000, "ms"),
            target("30d whole page", big["whole page (ms)"], "<", 1000, "ms"),
        ],
        params={"per_day": args.per_day, "days": DAYS, "repeat": args.repeat},
    )


if __name__ == "__main__":
    main()
