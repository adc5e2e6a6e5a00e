"""Soak: a real ``mlpulse serve`` under steady load for an hour, with late labels and
retention cycling; does anything grow, slow down, or get lost?

One client process sends ``--rate`` predictions a second (default 2,000; 20 features) through
the remote SDK's ``model.log`` (queued, batched and sent in the background, as a service
would), labels for ``--label-share`` of them (80 %) ``--late`` (5-90) minutes after their
event time with ``log_feedback_batch``, a metrics query every ``--query-every`` seconds, and a
``pulse.maintain()`` every simulated hour. Every ``--sample-every`` seconds it records the
server's RSS (with its profiling worker), the database file (and WAL), the Parquet lake, the
label-apply latency and the query latency of that interval, and the machine's load.

**Simulated time.** Retention counts in days (raw rows move to the lake a whole UTC day at a
time), so a real-time hour could never cycle it. Event time therefore runs ``--speed`` times
faster than the wall clock (default 96: a simulated day every 15 minutes), starting at the
moment the run starts; label lateness, query windows and ``maintain(now=...)`` use simulated
time. With ``--raw-retention 1d``, ``--minute-retention 6h`` and ``--hour-retention 1d`` an
hour-long run archives three days of raw rows and rolls minute and hour profiles off
throughout, so the steady state is reached after about 2 simulated days (30 real minutes).
The server's own maintenance loop is left off (it counts from the real clock).

At the end the client flushes, the server stops, and the file and the lake are read
directly: every prediction sent is stored exactly once (raw rows + lake, distinct ids), every
label sent is on its row, nothing was quarantined, and the profiles count every row.

    python benchmarks/bench_soak.py --duration 3600            # the issue's hour
    python benchmarks/bench_soak.py --duration 120 --quick     # a smoke run
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _data
import duckdb
import numpy as np
import pyarrow as pa
from _common import RESULTS, emit, progress, target
from bench_http import start_server, tree_rss_mib

import mlpulse

MODEL = "soak"


def dir_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def file_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}.wal")) if p.exists())


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


class Clock:
    """Simulated event time: ``speed`` simulated seconds per real second from ``origin``."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.real0 = time.monotonic()
        self.origin = datetime.now(UTC).timestamp()

    def now(self) -> float:
        return self.origin + (time.monotonic() - self.real0) * self.speed


class Soak:
    def __init__(self, args: argparse.Namespace, url: str, pid: int, db: Path) -> None:
        self.args, self.url, self.pid, self.db = args, url, pid, db
        self.clock = Clock(args.speed)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.labels_sent = 0
        self.label_calls: list[float] = []  # seconds per log_feedback_batch, this interval
        self.label_rows: list[int] = []
        self.queries: list[float] = []
        self.maintains: list[dict] = []
        self.errors: list[str] = []
        self.due: list[tuple[float, int, np.ndarray, np.ndarray]] = []  # heap of label batches
        self.timeline: list[dict] = []
        self.rng = np.random.default_rng(args.seed)

    # -- the three clients -------------------------------------------------------------

    def produce(self, model) -> None:
        """``rate`` predictions a real second through ``model.log``; schedule their labels."""
        rate, speed = self.args.rate, self.args.speed
        lo_late, hi_late = (m * 60 for m in self.args.late)
        tick = 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            offset = self.sent
            sim = self.clock.now()
            start = datetime.fromtimestamp(sim, UTC)
            batch = _data.predictions(
                rate,
                seed=self.args.seed,
                offset=offset,
                start=start,
                end=start + timedelta(seconds=speed),
            )
            stamps = batch.column("timestamp").cast(pa.int64()).to_numpy() / 1e6
            features = batch.select(_data.FEATURES).to_pylist()
            ids = batch.column("id").to_pylist()
            scores = batch.column("score").to_numpy()
            latency = batch.column("latency_ms").to_numpy()
            for i in range(rate):
                model.log(
                    ids[i],
                    features[i],
                    float(scores[i]),
                    timestamp=float(stamps[i]),
                    latency_ms=float(latency[i]),
                )
            labeled = np.flatnonzero(self.rng.random(rate) < self.args.label_share)
            late = self.rng.uniform(lo_late, hi_late, labeled.size)
            values = _data.labels(self.args.seed, offset, rate)
            due = stamps[labeled] + late
            order = np.argsort(due)
            # one heap entry per real second of due time keeps the heap small
            buckets = np.floor((due[order] - self.clock.origin) / speed).astype(np.int64)
            cuts = np.flatnonzero(np.diff(buckets)) + 1
            with self.lock:
                for part in np.split(np.arange(order.size), cuts):
                    if part.size:
                        rows = labeled[order[part]]
                        heapq.heappush(
                            self.due,
                            (float(due[order[part[-1]]]), tick, rows + offset, values[rows]),
                        )
                        tick += 1
                self.sent += rate
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))

    def label(self, model) -> None:
        """Every ``label_every`` real seconds, send the labels that are due (sync call)."""
        while not self.stop.wait(self.args.label_every):
            now = self.clock.now()
            ids, values = [], []
            with self.lock:
                while self.due and self.due[0][0] <= now:
                    _, _, rows, vals = heapq.heappop(self.due)
                    ids.append(rows)
                    values.append(vals)
            if not ids:
                continue
            rows = np.concatenate(ids)
            table = pa.table({"id": _ids(rows), "label": pa.array(np.concatenate(values))})
            t0 = time.perf_counter()
            try:
                report = model.log_feedback_batch(table, id="id", label="label")
            except Exception as exc:  # recorded; the run goes on
                self.errors.append(f"labels: {type(exc).__name__}: {exc}")
                continue
            seconds = time.perf_counter() - t0
            with self.lock:
                self.label_calls.append(seconds)
                self.label_rows.append(table.num_rows)
                self.labels_sent += table.num_rows
            if report.quarantined:
                self.errors.append(f"labels quarantined: {report}")

    def query(self, model) -> None:
        """A metrics query over the last simulated hour every ``query_every`` seconds."""
        while not self.stop.wait(self.args.query_every):
            end = datetime.fromtimestamp(self.clock.now(), UTC)
            t0 = time.perf_counter()
            try:
                model.metrics(
                    ["count", "accuracy", "roc_auc", "latency_p95"],
                    start=end - timedelta(hours=1),
                    end=end,
                )
            except Exception as exc:
                self.errors.append(f"query: {type(exc).__name__}: {exc}")
                continue
            with self.lock:
                self.queries.append(time.perf_counter() - t0)

    def maintain(self, pulse) -> None:
        """``pulse.maintain(now=simulated now)`` every simulated hour."""
        every = 3600 / self.args.speed
        while not self.stop.wait(every):
            now = datetime.fromtimestamp(self.clock.now(), UTC)
            try:
                report = pulse.maintain(now=now)
            except Exception as exc:
                self.errors.append(f"maintain: {type(exc).__name__}: {exc}")
                continue
            with self.lock:
                self.maintains.append(report)

    # -- the record --------------------------------------------------------------------

    def sample(self, pulse) -> dict:
        with self.lock:
            labels, self.label_calls = self.label_calls, []
            label_rows, self.label_rows = self.label_rows, []
            queries, self.queries = self.queries, []
            maintains, self.maintains = self.maintains, []
            row = {
                "real_s": round(time.monotonic() - self.clock.real0, 1),
                "sim_day": round((self.clock.now() - self.clock.origin) / 86400, 3),
                "sent": self.sent,
                "labels_sent": self.labels_sent,
                "labels_waiting": sum(len(e[2]) for e in self.due),
            }
        row.update(
            rss_mib=round(tree_rss_mib(self.pid), 1),
            db_mb=round(file_bytes(self.db) / 1e6, 2),
            lake_mb=round(dir_bytes(Path(f"{self.db}.lake")) / 1e6, 2),
            label_p50_ms=round(statistics.median(labels) * 1000, 1) if labels else None,
            label_p95_ms=round(p95(labels) * 1000, 1) if labels else None,
            label_rows_per_call=round(float(np.mean(label_rows)), 0) if label_rows else None,
            query_p50_ms=round(statistics.median(queries) * 1000, 1) if queries else None,
            query_p95_ms=round(p95(queries) * 1000, 1) if queries else None,
            queries=len(queries),
            maintained=[
                {
                    k: m.get(k)
                    for k in (
                        "archived_rows",
                        "profile_parts_deleted",
                        "compacted",
                        "bytes_after",
                        "seconds",
                    )
                }
                for m in maintains
            ],
            sdk_pending=pulse.pending,
            sdk_dropped=pulse.dropped,
            load=round(os.getloadavg()[0], 2),
        )
        return row


def _ids(rows: np.ndarray) -> pa.Array:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise("r", pa.array(rows.astype(np.int64)).cast(pa.string()), "")


def verify(db: Path, sent: int, labels_sent: int) -> dict:
    """Read the stopped server's file and lake: each prediction once, each label on its row."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        (model_id,) = con.execute("SELECT model_id FROM models WHERE name = ?", [MODEL]).fetchone()
        raw = f"raw_{int(model_id)}"
        lake = Path(f"{db}.lake")
        # raw rows only: the feedback audit log's files live in model=<name>/feedback/
        raw_files = lake.glob("model=*/version=*/date=*/*.parquet")
        files = sorted(str(p) for p in raw_files) if lake.exists() else []
        union = f"SELECT __id, __label FROM {raw}"
        if files:
            union += " UNION ALL SELECT __id, __label FROM read_parquet(?, union_by_name=true)"
        params = [files] if files else []
        total, distinct, labeled = con.execute(
            f"SELECT count(*), count(DISTINCT __id), count(__label) FROM ({union})", params
        ).fetchone()
        in_file = con.execute(f"SELECT count(*) FROM {raw}").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    finally:
        con.close()
    return {
        "sent": sent,
        "stored": int(total),
        "distinct_ids": int(distinct),
        "raw_rows_in_file": int(in_file),
        "rows_in_lake": int(total - in_file),
        "lake_files": len(files),
        "labels_sent": labels_sent,
        "labeled_rows": int(labeled),
        "quarantined": int(quarantined),
    }


def plot(timeline: list[dict], path: Path) -> None:
    """One SVG with a panel per series (the repository's own sparkline, no plotting library)."""
    from mlpulse.display.svg import sparkline

    series = [
        ("server RSS with worker (MiB)", "rss_mib"),
        ("database file (MB)", "db_mb"),
        ("lake (MB)", "lake_mb"),
        ("label apply p95 (ms)", "label_p95_ms"),
        ("metrics query p95 (ms)", "query_p95_ms"),
        ("load average", "load"),
    ]
    width, height, top = 720, 90, 22
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{len(series) * (height + top) + 24}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    minutes = timeline[-1]["real_s"] / 60 if timeline else 0
    for i, (title, key) in enumerate(series):
        values = [float("nan") if r.get(key) is None else float(r[key]) for r in timeline]
        finite = [v for v in values if v == v]
        y = i * (height + top)
        span = f"{min(finite):.1f} .. {max(finite):.1f}" if finite else "none"
        parts.append(f'<text x="4" y="{y + 15}">{title}: {span}</text>')
        line = sparkline(values, width=width - 8, height=height)
        parts.append(f'<g transform="translate(4,{y + top})">{line}</g>')
    parts.append(
        f'<text x="4" y="{len(series) * (height + top) + 16}">real minutes 0 .. {minutes:.0f}'
        "</text></svg>"
    )
    path.write_text("".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=3600, help="real seconds (default 3600)")
    ap.add_argument("--rate", type=int, default=2000, help="predictions a real second")
    ap.add_argument("--speed", type=float, default=96.0, help="simulated seconds a real second")
    ap.add_argument("--label-share", type=float, default=0.8)
    ap.add_argument("--late", type=float, nargs=2, default=(5.0, 90.0), help="minutes (sim)")
    ap.add_argument("--label-every", type=float, default=2.0, help="real seconds")
    ap.add_argument("--query-every", type=float, default=2.0, help="real seconds")
    ap.add_argument("--sample-every", type=float, default=30.0, help="real seconds")
    ap.add_argument("--raw-retention", default="1d")
    ap.add_argument("--minute-retention", default="6h")
    ap.add_argument("--hour-retention", default="1d")
    ap.add_argument("--profile-workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", default=None, help="keep the database here (default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: not saved as the record")
    args = ap.parse_args()

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mlpulse-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "soak.duckdb"
    proc, url = start_server(
        db,
        args.profile_workers,
        extra=(
            "--raw-retention",
            args.raw_retention,
            "--minute-retention",
            args.minute_retention,
            "--hour-retention",
            args.hour_retention,
            "--maintenance-interval",
            "3650d",  # maintenance is driven in simulated time
        ),
        log=work / "server.log",
    )
    progress(f"server {url} pid {proc.pid}, db {db}")
    try:
        # the SDK's defaults but a 1 s batch interval: ~2,000 rows a request
        pulse = mlpulse.connect(url, interval=1.0)
        model = pulse.model(MODEL, version="v1", **_data.MODEL_KW)
        soak = Soak(args, url, proc.pid, db)
        threads = [
            threading.Thread(target=soak.produce, args=(model,), daemon=True),
            threading.Thread(target=soak.label, args=(model,), daemon=True),
            threading.Thread(target=soak.query, args=(model,), daemon=True),
            threading.Thread(target=soak.maintain, args=(pulse,), daemon=True),
        ]
        for t in threads:
            t.start()
        end = time.monotonic() + args.duration
        out = RESULTS / f"soak_timeline{'_quick' if args.quick else ''}.jsonl"
        RESULTS.mkdir(parents=True, exist_ok=True)
        out.write_text("")
        while time.monotonic() < end:
            time.sleep(min(args.sample_every, max(0.0, end - time.monotonic())))
            row = soak.sample(pulse)
            soak.timeline.append(row)
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            progress(
                f"{row['real_s'] / 60:5.1f} min, day {row['sim_day']:.2f}: sent {row['sent']:,}, "
                f"rss {row['rss_mib']} MiB, db {row['db_mb']} MB, lake {row['lake_mb']} MB, "
                f"label p95 {row['label_p95_ms']} ms, query p95 {row['query_p95_ms']} ms, "
                f"load {row['load']}"
            )
        soak.stop.set()
        for t in threads:
            t.join(120)
        delivered = pulse.flush(timeout=300)
        progress(f"flushed: {delivered}, dropped {pulse.dropped}, pending {pulse.pending}")
        pulse.close()
        errors = list(soak.errors)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)
        except Exception:
            proc.kill()
    check = verify(db, soak.sent, soak.labels_sent)
    progress(f"verify: {check}; errors: {errors[:5]}")

    def phase(lo: float, hi: float, key: str) -> float:
        values = [r[key] for r in soak.timeline if lo <= r["real_s"] / args.duration < hi]
        values = [v for v in values if v is not None]
        return float(statistics.median(values)) if values else float("nan")

    # flat: the last quarter against the second (after the first retention cycles)
    metrics: dict[str, object] = dict(check)
    for key in ("rss_mib", "db_mb", "label_p95_ms", "query_p95_ms", "query_p50_ms"):
        second, last = phase(0.25, 0.5, key), phase(0.75, 1.01, key)
        metrics[f"{key}_q2"] = second
        metrics[f"{key}_q4"] = last
        metrics[f"{key}_growth"] = last / second if second else float("nan")
    metrics["errors"] = errors[:20]
    svg = RESULTS / f"soak{'_quick' if args.quick else ''}.svg"
    plot(soak.timeline, svg)
    targets = [
        target("|stored - sent|", abs(check["stored"] - check["sent"]), "<=", 0),
        target("|distinct ids - sent|", abs(check["distinct_ids"] - check["sent"]), "<=", 0),
        target("labels missing", check["labels_sent"] - check["labeled_rows"], "<=", 0),
        target("quarantined", check["quarantined"], "<=", 0),
        target("errors", len(errors), "<=", 0),
        target("RSS last/second quarter", metrics["rss_mib_growth"], "<=", 1.2),
        target("file size last/second quarter", metrics["db_mb_growth"], "<=", 1.2),
        target("label p95 last/second quarter", metrics["label_p95_ms_growth"], "<=", 1.5),
        target("query p95 last/second quarter", metrics["query_p95_ms_growth"], "<=", 1.5),
    ]
    emit("soak", args.quick, metrics, targets, params=vars(args))
    progress(f"timeline {out}, plot {svg}")
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
