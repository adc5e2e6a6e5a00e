"""``GET /metrics`` (issue 13): what a Prometheus scrape of 100 models x 2 windows costs.

Setup: 100 binary models (``recommended_rules=False``), each with 3-5 features (numeric,
and a categorical ``channel`` on the models with 5), a reference of 1,000 labeled rows and
one prediction a minute over the last 24 h (1,440 rows per model, all labeled, with a
latency): the data of ``bench_alerts.py``. Windows ``1h`` and ``24h`` (the default). A real
``mlpulse serve`` process owns the database file; scrapes are ``httpx`` GETs over
127.0.0.1 with Prometheus's ``Accept`` header (OpenMetrics).

Measured, each as the median of several scrapes:

* **compute**: one computation of every model series (what ``metrics_refresh`` bounds how
  often happens): ``metrics_refresh 0`` makes every scrape compute, so a scrape's time is the
  computation plus rendering; and the server's own ``mlpulse_server_scrape_duration_seconds``
  of each. Split by part (totals, metrics, estimate, drift, quality, alerts) in-process,
  once, with the service's methods timed in place.
* **scrape (kept figures)**: with the default ``metrics_refresh 10``, scrapes within the 10 s
  after a computation render the kept figures. **Target: < 200 ms.**
* **scrape while recomputing**: a scrape once the figures are stale starts a background
  recomputation and serves the kept figures at once; scrapes during that computation.
* A fresh server: the time until a scrape carries the model series (a scrape waits up to
  9.5 s for the first computation, then answers with the server's own series).

Figures are kept ``max(metrics_refresh, 4 x the last computation)``: a fleet whose
computation takes 17 s is recomputed every ~70 s, not every 10 s.

    python benchmarks/bench_metrics_scrape.py            # 100 models, ~3 min
    python benchmarks/bench_metrics_scrape.py --quick    # 20 models
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from _common import emit, progress, target

import mlpulse

ROWS_PER_DAY = 1440
REFERENCE_ROWS = 1000
CHANNELS = np.array(["web", "ios", "android"])
ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)  # what Prometheus 2.42 sends


def _frame(rng: np.random.Generator, n: int, n_features: int, weights: np.ndarray) -> pd.DataFrame:
    numeric = n_features - 1 if n_features == 5 else n_features
    x = rng.normal(size=(n, numeric))
    cols = {f"f{j}": x[:, j] for j in range(numeric)}
    logit = x @ weights[:numeric] + 0.3 * rng.normal(size=n)
    if n_features == 5:
        channel = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
        cols["channel"] = CHANNELS[channel]
        logit = logit + (channel == 1) * 0.5
    frame = pd.DataFrame(cols)
    frame["score"] = 1.0 / (1.0 + np.exp(-logit))
    frame["label"] = (rng.random(n) < frame["score"]).astype(np.int64)
    return frame


def build(pulse, n_models: int, seed: int, end: datetime) -> None:
    """``n_models`` models with a day of labeled predictions each (as bench_alerts.py)."""
    t0 = time.perf_counter()
    start_us = int((end - timedelta(days=1)).timestamp() * 1_000_000)
    for i in range(n_models):
        rng = np.random.default_rng([seed, i])
        n_features = 3 + i % 3
        weights = rng.uniform(0.8, 1.6, size=5) * rng.choice([-1, 1], size=5)
        model = pulse.model(
            f"bench_scrape_{i:03d}", version="v1", task="binary",
            reference=_frame(rng, REFERENCE_ROWS, n_features, weights),
            prediction="score", label="label", recommended_rules=False,
        )  # fmt: skip
        rows = _frame(rng, ROWS_PER_DAY, n_features, weights)
        labels = rows.pop("label").to_numpy()
        minute = np.arange(ROWS_PER_DAY, dtype=np.int64) * 60_000_000
        ts = start_us + minute + rng.integers(0, 60_000_000, ROWS_PER_DAY)
        rows.insert(0, "id", [f"m{i}-{k}" for k in range(ROWS_PER_DAY)])
        rows["timestamp"] = pd.to_datetime(ts, unit="us", utc=True)
        rows["latency_ms"] = rng.lognormal(mean=2.0, sigma=0.4, size=ROWS_PER_DAY)
        model.log_batch(rows, id="id", timestamp="timestamp")
        model.log_feedback_batch(pd.DataFrame({"id": rows["id"], "label": labels}), id="id",
                                 label="label")  # fmt: skip
        if (i + 1) % 10 == 0:
            progress(f"  {i + 1}/{n_models} models built ({time.perf_counter() - t0:.0f} s)")


def parts(path: str) -> dict[str, float]:
    """One computation in-process, seconds per part (the service's methods timed in place)."""
    from mlpulse.export import prometheus as exporter
    from mlpulse.service import Service

    service = Service.open(path)
    spent = dict.fromkeys(["metrics", "estimate", "drift", "quality", "alerts"], 0.0)

    def timed(part: str, fn):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - t0

        return call

    for part in spent:
        setattr(service, part, timed(part, getattr(service, part)))
    try:
        exporter.model_families(service, exporter.parse_windows(["1h", "24h"]))  # warm-up
        for part in spent:
            spent[part] = 0.0
        t0 = time.perf_counter()
        exporter.model_families(service, exporter.parse_windows(["1h", "24h"]))
        total = time.perf_counter() - t0
    finally:
        service.close()
    out = {f"{k}_s": v for k, v in spent.items()}
    out["other_s"] = total - sum(spent.values())  # totals queries, family building
    out["total_s"] = total
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, db: str, refresh: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # one client, as Prometheus keeps one (a new httpx client per GET costs tens of ms)
        self.client = httpx.Client(timeout=120)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlpulse.cli", "serve", "--db", db, "--port", str(self.port),
             "--log-level", "warning", "--metrics-refresh", str(refresh)],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("mlpulse serve did not start")

    def scrape(self) -> tuple[float, str]:
        t0 = time.perf_counter()
        answer = self.client.get(f"{self.url}/metrics", headers={"Accept": ACCEPT})
        seconds = time.perf_counter() - t0
        answer.raise_for_status()
        return seconds, answer.text

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", type=int, default=None, help="default 100; --quick 20")
    ap.add_argument("--computes", type=int, default=3, help="scrapes with metrics_refresh 0")
    ap.add_argument("--scrapes", type=int, default=15, help="scrapes of kept figures")
    ap.add_argument("--quick", action="store_true", help="20 models")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()
    n_models = args.models or (20 if args.quick else 100)

    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-", dir="/tmp") as tmp:
        db = str(Path(tmp) / "pulse.duckdb")
        pulse = mlpulse.connect(db)
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        t0 = time.perf_counter()
        build(pulse, n_models, args.seed, end)
        build_s = time.perf_counter() - t0
        pulse.close()
        progress(f"built {n_models} models x {ROWS_PER_DAY} rows in {build_s:.0f} s")
        split = parts(db)
        progress(f"one computation in-process: {split}")

        # every scrape computes (metrics_refresh 0)
        server = Server(db, 0)
        try:
            server.scrape()  # warm-up: imports, first drift and estimate calibrations
            runs = [server.scrape() for _ in range(args.computes)]
        finally:
            server.stop()
        compute_scrape = [s for s, _ in runs]
        compute_inside = [gauge(t, "mlpulse_server_scrape_duration_seconds") for _, t in runs]
        series = sum(1 for line in runs[-1][1].splitlines() if line and not line.startswith("#"))
        size = len(runs[-1][1].encode())
        progress(f"compute at every scrape: {compute_scrape} s ({series} samples, {size} bytes)")

        # the default: figures kept 10 s, recomputed in the background
        server = Server(db, 10)
        try:
            # a fresh server: scrapes carry the server's own series until the first
            # computation is done (a scrape waits for it up to 9.5 s)
            t0 = time.perf_counter()
            first_scrapes = 0
            while "mlpulse_metric{" not in server.scrape()[1]:
                first_scrapes += 1
            first_s = time.perf_counter() - t0
            kept = []
            for _ in range(args.scrapes):
                kept.append(server.scrape()[0])
                time.sleep(0.1)
            # figures now stale (kept max(10 s, 4 x the computation)): the next scrape starts
            # a recomputation and is served the kept figures at once
            stale_after = max(10.0, 4 * gauge(server.scrape()[1], "mlpulse_server_scrape_duration_seconds"))
            age = gauge(server.scrape()[1], "mlpulse_server_scrape_age_seconds")
            time.sleep(max(0.0, stale_after - age + 0.5))
            stale_first, _ = server.scrape()
            during = []
            deadline = time.perf_counter() + min(statistics.median(compute_inside), 30) * 0.8
            while time.perf_counter() < deadline:
                during.append(server.scrape()[0])
                time.sleep(0.2)
        finally:
            server.stop()
        progress(f"kept figures: {kept}; first {first_s}; stale {stale_first}; during {during}")

    med = statistics.median
    metrics: dict[str, object] = {
        "models": n_models,
        "windows": ["1h", "24h"],
        "samples": series,
        "bytes": size,
        "build_s": build_s,
        "compute_scrape_s": med(compute_scrape),
        "compute_scrape_runs_s": compute_scrape,
        "compute_inside_s": med(compute_inside),
        "compute_inside_runs_s": compute_inside,
        "parts_s": split,
        "first_figures_s": first_s,
        "first_scrapes_without_figures": first_scrapes,
        "kept_scrape_s": med(kept),
        "kept_scrape_runs_s": kept,
        "stale_scrape_s": stale_first,
        "during_recompute_scrape_s": med(during) if during else float("nan"),
        "during_recompute_runs_s": during,
    }
    targets = [
        target(f"scrape of {n_models} models x 2 windows (kept figures)", med(kept) * 1000, "<",
               200, " ms"),  # fmt: skip
        target("scrape while recomputing", (med(during) if during else float("nan")) * 1000, "<",
               200, " ms"),  # fmt: skip
    ]
    emit("metrics_scrape", args.quick, metrics, targets,
         {"models": n_models, "computes": args.computes, "scrapes": args.scrapes, "seed": args.seed},
         save=not args.no_save)  # fmt: skip


if __name__ == "__main__":
    main()
