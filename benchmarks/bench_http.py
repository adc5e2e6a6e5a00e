"""Ingest and query over HTTP against a real ``mlpulse serve`` process on 127.0.0.1.

Measures, from one client:

* Arrow ingest: ``model.log_batch`` of ``--batch-rows`` (default 200,000) Arrow rows (20 features,
  in event-time order, as a live service sends them) through the
  remote client (gzip on, and off); target >= 200,000 predictions/s;
* JSON ingest: raw ``POST`` of ``{"rows": [...]}`` bodies of 10,000 rows; target >= 30,000/s;
* metrics query p50 while 20,000 predictions/s are ingested in the background; target
  <= 50 ms. ``--feed day`` (default) sends each second's rows spread over the whole queried
  day, so every batch rewrites every minute of it (the worst case for both ingest and
  queries); ``--feed live`` first loads one day of history, then sends each second's rows
  stamped within that second, as a live service does, and queries ``-24h`` to ``now``;
* server RSS over ``--duration`` seconds of sustained ingest (600 for the issue's 10
  minutes); target < 1.5 GiB;
* ``--profile-workers 0,1``: the Arrow ingest and the sustained phase once per value of the
  server's ``--profile-workers`` (0: profiling in the server process, the old way), each on a
  fresh server, so the query p95 under ingest (target <= 100 ms with workers) and the ingest
  rate of both are measured in the same run.

Baseline (same run): embedded ``log_batch`` of the same batches into a file store.

    python benchmarks/bench_http.py --quick      # small sizes, 20 s of sustained ingest
    python benchmarks/bench_http.py --duration 600
    python benchmarks/bench_http.py --profile-workers 0,1 --feed live --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _data
import httpx
import pyarrow as pa
from _common import emit, progress, target

import mlpulse


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    db: Path, profile_workers: int = 1, extra: tuple[str, ...] = (), log: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """``mlpulse serve`` on a free port of 127.0.0.1 (``extra``: more serve flags; ``log``:
    a file for its output, else discarded); returns the process and its URL once ready."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlpulse.cli",
            "serve",
            "--db",
            str(db),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--profile-workers",
            str(profile_workers),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab") if log is not None else subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                found.extend(children)
                todo.extend(children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def tree_rss_mib(pid: int) -> float:
    """RSS of the server and its descendants (the profiling fork server and workers)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += rss_mib(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def batches(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


def arrow_ingest(
    url: str, table: pa.Table, name: str, compression: str | None, batch_rows: int
) -> float:
    with mlpulse.connect(url, compression=compression, batch_rows=batch_rows) as pulse:
        model = pulse.model(name, version="v1", **_data.MODEL_KW)
        t0 = time.perf_counter()
        report = model.log_batch(table, id="id", timestamp="timestamp")
        seconds = time.perf_counter() - t0
    if report.stored != table.num_rows:
        raise SystemExit(f"unexpected report: {report}")
    return table.num_rows / seconds


def json_ingest(url: str, table: pa.Table, name: str) -> float:
    with mlpulse.connect(url) as pulse:
        pulse.model(name, version="v1", **_data.MODEL_KW)
    frame = table.to_pandas()
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat())
    bodies = [
        json.dumps({"rows": chunk.to_dict(orient="records")}).encode()
        for chunk in (frame.iloc[i : i + 10_000] for i in range(0, len(frame), 10_000))
    ]
    path = f"/api/v1/models/{name}/versions/v1/predictions"
    stored = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        t0 = time.perf_counter()
        for body in bodies:
            r = client.post(path, content=body, headers={"Content-Type": "application/json"})
            r.raise_for_status()
            stored += r.json()["stored"]
        seconds = time.perf_counter() - t0
    if stored != len(frame):
        raise SystemExit(f"JSON ingest stored {stored} of {len(frame)}")
    return len(frame) / seconds


def sustained(
    url: str, pid: int, seconds: float, rate: int, name: str, live: bool
) -> dict[str, float]:
    """Ingest ``rate`` rows/s in 1-second Arrow batches while querying metrics; sample RSS."""
    stop = threading.Event()
    sent = [0]

    def feed() -> None:
        with mlpulse.connect(url, batch_rows=rate) as pulse:
            model = pulse.model(name, version="v1", **_data.MODEL_KW)
            i = 0
            start, end = _data.day_range(days=1)
            while not stop.is_set():
                t0 = time.perf_counter()
                if live:  # stamped within the last second
                    end = datetime.now(UTC)
                    start = end - timedelta(seconds=1)
                batch = _data.predictions(rate, seed=i, start=start, end=end)
                batch = batch.set_column(
                    batch.column_names.index("id"),
                    "id",
                    pa.array([f"s{i}_{j}" for j in range(rate)]),
                )
                model.log_batch(batch, id="id", timestamp="timestamp")
                sent[0] += rate
                i += 1
                time.sleep(max(0.0, 1.0 - (time.perf_counter() - t0)))

    with mlpulse.connect(url, compression=None) as pulse:  # registered before the first query
        model = pulse.model(name, version="v1", **_data.MODEL_KW)
        if live:  # a day of history, in event-time order
            start, end = _data.day_range(days=1)
            history = _data.predictions(1_000_000, seed=10**6, start=start, end=end)
            for chunk in batches(history.sort_by("timestamp"), 200_000):
                model.log_batch(chunk, id="id", timestamp="timestamp")
            pulse.flush()
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    time.sleep(1.5)
    latencies, rss, tree = [], [], []
    # CPU the server process spends (holding the GIL, mostly) vs its profiling workers'
    cpu0 = cpu_seconds(pid)
    workers0 = {p: cpu_seconds(p) for p in descendants(pid)}
    sent0 = sent[0]
    start_s, end_s = _data.day_range(days=1)
    with httpx.Client(base_url=url, timeout=60) as client:
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            r = client.get(
                f"/api/v1/models/{name}/versions/v1/metrics",
                params={
                    "metrics": "accuracy,f1,roc_auc,count",
                    "start": "-24h" if live else str(start_s),
                    "end": "now" if live else str(end_s),
                    "step": "1h",
                },
            )
            r.raise_for_status()
            latencies.append(time.perf_counter() - t0)
            rss.append(rss_mib(pid))
            tree.append(tree_rss_mib(pid))
            time.sleep(0.2)
    server_cpu = cpu_seconds(pid) - cpu0
    worker_cpu = 0.0
    for p in descendants(pid):
        try:
            worker_cpu += cpu_seconds(p) - workers0.get(p, 0.0)
        except (FileNotFoundError, ProcessLookupError):
            continue
    rows = max(sent[0] - sent0, 1)
    stop.set()
    thread.join(30)
    elapsed = seconds
    return {
        "query_p50_ms": statistics.median(latencies) * 1000,
        "query_p95_ms": sorted(latencies)[int(0.95 * (len(latencies) - 1))] * 1000,
        "queries": len(latencies),
        "ingest_rows_per_s": sent[0] / elapsed,
        "rss_max_mib": max(rss),
        "rss_last_mib": rss[-1],
        "rss_with_workers_max_mib": max(tree),
        "server_cpu_ms_per_1k_rows": server_cpu / rows * 1e6,
        "worker_cpu_ms_per_1k_rows": worker_cpu / rows * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=None, help="Arrow rows (default 1,000,000)")
    ap.add_argument("--json-rows", type=int, default=None, help="JSON rows (default 200,000)")
    ap.add_argument("--duration", type=float, default=None, help="sustained seconds (default 60)")
    ap.add_argument("--quick", action="store_true", help="small smoke sizes")
    ap.add_argument("--batch-rows", type=int, default=200_000, help="rows per Arrow batch")
    ap.add_argument(
        "--feed",
        choices=["day", "live"],
        default="day",
        help="sustained rows spread over the queried day (default) or stamped now",
    )
    ap.add_argument(
        "--profile-workers",
        default="1",
        help="the server's --profile-workers; a comma-separated list (0,1) measures Arrow "
        "ingest and the sustained phase once per value, on a fresh server each",
    )
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()
    n = args.rows or (200_000 if args.quick else 1_000_000)
    n_json = args.json_rows or (50_000 if args.quick else 200_000)
    duration = args.duration or (20.0 if args.quick else 60.0)

    start, end = _data.day_range(days=1)
    # A live service sends its predictions in event-time order, so each batch covers a
    # stretch of the day rather than all of it (the embedded baseline gets the same batches).
    table = _data.predictions(n, seed=1, start=start, end=end).sort_by("timestamp")
    json_table = _data.predictions(n_json, seed=2, start=start, end=end).sort_by("timestamp")
    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-http-") as tmp:
        tmp = Path(tmp)
        with mlpulse.connect(str(tmp / "embedded.duckdb")) as pulse:
            model = pulse.model("base", version="v1", **_data.MODEL_KW)
            t0 = time.perf_counter()
            for chunk in batches(table, args.batch_rows):
                model.log_batch(chunk, id="id", timestamp="timestamp")
            embedded = n / (time.perf_counter() - t0)
        progress(f"embedded baseline: {embedded:,.0f} rows/s")
        worker_counts = [int(w) for w in str(args.profile_workers).split(",")]
        runs: dict[int, dict[str, float]] = {}
        for workers in worker_counts:
            proc, url = start_server(tmp / f"server{workers}.duckdb", workers)
            try:
                arrow_plain = arrow_ingest(url, table, "arrow_plain", None, args.batch_rows)
                progress(f"[workers={workers}] HTTP Arrow: {arrow_plain:,.0f} rows/s")
                if not runs:  # the codecs do not depend on where profiling runs
                    arrow_gzip = arrow_ingest(
                        url, table.slice(0, n // 2), "arrow_gzip", "gzip", args.batch_rows
                    )
                    progress(f"HTTP Arrow (gzip): {arrow_gzip:,.0f} rows/s")
                    json_rate = json_ingest(url, json_table, "json")
                    progress(f"HTTP JSON: {json_rate:,.0f} rows/s")
                load = sustained(url, proc.pid, duration, 20_000, "sustained", args.feed == "live")
                progress(f"[workers={workers}] sustained: {load}")
            finally:
                proc.terminate()
                proc.wait(60)
            runs[workers] = {"arrow_rows_per_s": arrow_plain, **load}

    last = worker_counts[-1]
    arrow_plain, load = runs[last]["arrow_rows_per_s"], runs[last]
    metrics = {
        "arrow_rows_per_s": arrow_plain,
        "arrow_gzip_rows_per_s": arrow_gzip,
        "json_rows_per_s": json_rate,
        "embedded_rows_per_s": embedded,
        "ratio_http_arrow_vs_embedded": arrow_plain / embedded,
        **load,
    }
    if len(runs) > 1:
        metrics["by_profile_workers"] = {str(w): r for w, r in runs.items()}
    targets = [
        target("HTTP Arrow ingest rows/s", arrow_plain, ">=", 200_000),
        target("HTTP JSON ingest rows/s", json_rate, ">=", 30_000),
        target("metrics p50 under 20k/s ingest (ms)", load["query_p50_ms"], "<=", 50, "ms"),
        target("metrics p95 under 20k/s ingest (ms)", load["query_p95_ms"], "<=", 100, "ms"),
        target("server RSS max (MiB)", load["rss_max_mib"], "<", 1536, "MiB"),
    ]
    emit(
        "http",
        args.quick,
        metrics,
        targets,
        params={
            "rows": n,
            "json_rows": n_json,
            "duration_s": duration,
            "feed": args.feed,
            "profile_workers": args.profile_workers,
        },
        save=not args.no_save,
    )


if __name__ == "__main__":
    main()
