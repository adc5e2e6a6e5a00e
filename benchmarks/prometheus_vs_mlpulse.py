"""Seed article 002, rerun (issue 13 part 5): accuracy of a binary classifier joined with
delayed feedback by output id, computed three ways and checked against NumPy.

(a) PromQL over a real Prometheus, predictions and feedback as gauges labelled by
    ``output_id`` and joined on it, with the article's query:

        count(abs(binary_class_metric_test_label - on (output_id)
                  binary_class_metric_test_prediction) < 0.5)
      / count(binary_class_metric_test_label - on (output_id)
              binary_class_metric_test_prediction)

    The series are written into the TSDB with ``promtool tsdb create-blocks-from
    openmetrics`` (backfilling) before Prometheus starts: one sample per series, at the
    prediction's event time (prediction) or the label's arrival time (label). Prometheus runs
    with ``--query.lookback-delta=25h`` so the article's instant-vector query sees every
    series at the query time (a scraping exporter would instead re-expose every gauge at every
    scrape: the same series, many more samples -- this setup favours Prometheus). Last hour:
    the prediction side becomes ``last_over_time(...[1h])``.
(b) SQL over a real PostgreSQL (own cluster in a temporary directory, Unix socket only):
    predictions(id, ts, score) and feedback(id, ts, label), primary key / index on id, index on
    predictions.ts, loaded with COPY, ANALYZEd; a join query per window.
(c) mlpulse: ``model.log_batch`` + ``model.log_feedback_batch`` (with arrival times) into a
    DuckDB file, then ``model.metrics(["accuracy"], start, end)``.

Data (seeded): N predictions over 24 h of event time ending at T (two minutes before the
current minute), score ~ Beta(2, 2), label ~ Bernoulli(score); a share (default 20%) never
labeled; the others labeled after a lognormal delay (median 30 min, 1 min .. 12 h); labels
arriving after T have not arrived. Windows: all time ``[T-24h, T)`` and last hour
``[T-1h, T)`` of prediction time; accuracy over the labeled predictions of the window, a
prediction is positive when score >= 0.5 (no score equals 0.5 exactly, so the article's
``abs(label - score) < 0.5`` is the same rule).

Each query: one untimed first call (reported as "first"), then the median of 5 calls.
Each Prometheus size is capped (default 600 s for its queries, and an RSS cap): a size that
passes the cap is recorded as timed out / out of memory, and larger sizes are not tried.

Requirements (not mlpulse dependencies; a missing one skips its system):
    apt-get install -y prometheus postgresql     # Debian: prometheus + promtool, PostgreSQL
    pip install 'psycopg[binary]'

    python benchmarks/prometheus_vs_mlpulse.py                       # 100k, 360k, 1M
    python benchmarks/prometheus_vs_mlpulse.py --quick               # 10k, all systems
    python benchmarks/prometheus_vs_mlpulse.py --sizes 100000 --skip postgres
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from _common import emit, progress, target

import mlpulse

PRED = "binary_class_metric_test_prediction"
LABEL = "binary_class_metric_test_label"
# the article's accuracy query, verbatim (metric names as in the article)
PROMQL_ALL = (
    f"count(abs({LABEL} - on (output_id) {PRED}) < 0.5) / count({LABEL} - on (output_id) {PRED})"
)
_PRED_1H = f"last_over_time({PRED}[1h])"
PROMQL_1H = (
    f"count(abs({LABEL} - on (output_id) {_PRED_1H}) < 0.5)"
    f" / count({LABEL} - on (output_id) {_PRED_1H})"
)
SQL_ALL = """
SELECT avg(CASE WHEN (p.score >= 0.5) = (f.label = 1) THEN 1.0 ELSE 0.0 END), count(*)
FROM predictions p JOIN feedback f ON f.id = p.id
WHERE p.ts >= %(lo)s AND p.ts < %(hi)s AND f.ts < %(now)s
"""
ARTICLE = {100_000: 2.2, 360_000: 15.5}  # seconds, PromQL, read off the article's figure 3
HOUR_MS = 3_600_000


# -- data ---------------------------------------------------------------------------------


def make_data(n: int, seed: int, unlabeled: float, end: datetime) -> dict[str, object]:
    rng = np.random.default_rng([seed, n])
    t_ms = int(end.timestamp() * 1000)
    t0_ms = t_ms - 24 * HOUR_MS
    ts = np.sort(rng.integers(t0_ms, t_ms, n, dtype=np.int64))
    ts[ts == t_ms - HOUR_MS] += 1  # nobody exactly on the 1 h edge (PromQL ranges are closed)
    score = rng.beta(2.0, 2.0, n)
    score[score == 0.5] = np.nextafter(0.5, 1.0)
    label = (rng.random(n) < score).astype(np.int64)
    delay_ms = np.clip(np.exp(rng.normal(np.log(1800.0), 1.0, n)), 60, 12 * 3600) * 1000
    arrival = ts + delay_ms.astype(np.int64)
    arrived = (rng.random(n) >= unlabeled) & (arrival < t_ms)
    ids = np.char.add("o", np.arange(n).astype(str))
    correct = (score >= 0.5) == (label == 1)
    last_hour = ts >= t_ms - HOUR_MS
    return {
        "n": n,
        "t_ms": t_ms,
        "t0_ms": t0_ms,
        "ids": ids,
        "ts": ts,
        "score": score,
        "label": label,
        "arrival": arrival,
        "arrived": arrived,
        "truth": {
            "all": float(correct[arrived].mean()),
            "1h": float(correct[arrived & last_hour].mean()),
            "n_labeled_all": int(arrived.sum()),
            "n_labeled_1h": int((arrived & last_hour).sum()),
        },
    }


def _ts(ms: np.ndarray) -> pa.Array:
    return pa.array(ms, pa.timestamp("ms", tz="UTC"))


def proc_cpu_s(*pids: int, children: bool = False) -> float:
    """CPU seconds (user + system) of processes, from /proc (10 ms ticks); with
    ``children``, also their reaped children (PostgreSQL's parallel workers)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
        if children:
            total += int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def timed(
    fn: Callable[[], float],
    repeats: int,
    cap_s: float | None = None,
    cpu: Callable[[], float] = time.process_time,
) -> dict[str, object]:
    """First (untimed-for-the-median) call, then the median of ``repeats`` calls; wall time
    and the CPU time ``cpu`` measures (the machine is shared: CPU time is the steadier
    figure), with the 1-minute load average before the first call."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    value = fn()
    first = time.perf_counter() - t0
    runs, cpus = [], []
    for _ in range(repeats):
        if cap_s is not None and sum(runs) + first > cap_s:
            break
        c0, t0 = cpu(), time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    return {
        "value": value,
        "first_s": first,
        "runs_s": runs,
        "median_s": statistics.median(runs) if runs else first,
        "cpu_runs_s": cpus,
        "median_cpu_s": statistics.median(cpus) if cpus else None,
        "loadavg_1m": load,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- mlpulse ------------------------------------------------------------------------------


def run_mlpulse(d: dict, tmp: Path, repeats: int) -> dict[str, object]:
    t_end = datetime.fromtimestamp(d["t_ms"] / 1000, UTC)
    t_start = t_end - timedelta(hours=24)
    pulse = mlpulse.connect(str(tmp / "pulse.duckdb"))
    model = pulse.model("seed002", version="v1", task="binary", prediction="score", label="label")
    t0 = time.perf_counter()
    model.log_batch(
        pa.table({"id": d["ids"], "timestamp": _ts(d["ts"]), "score": d["score"]}),
        id="id",
        timestamp="timestamp",
    )
    a = d["arrived"]
    model.log_feedback_batch(
        pa.table({"id": d["ids"][a], "label": d["label"][a], "ts": _ts(d["arrival"][a])}),
        id="id",
        label="label",
        timestamp="ts",
    )
    load_s = time.perf_counter() - t0
    out: dict[str, object] = {"load_s": load_s}
    for key, lo in (("all", t_start), ("1h", t_end - timedelta(hours=1))):

        def q(lo: datetime = lo) -> float:
            frame = model.metrics(["accuracy"], start=lo, end=t_end)
            return float(frame["accuracy"].iloc[0])

        out[key] = timed(q, repeats)
    pulse.close()
    return out


# -- PostgreSQL ---------------------------------------------------------------------------


def pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@contextlib.contextmanager
def postgres_cluster(tmp: Path) -> Iterator[tuple[str, str]]:
    """initdb + pg_ctl start in ``tmp/pg`` (as user postgres when we are root); yields the
    connection string and the server version."""
    import psycopg

    bindir = pg_bin()
    assert bindir is not None
    root = tmp / "pg"
    root.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        os.chmod(tmp, 0o755)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, sock = root / "data", root
    port = free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "bench"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {sock} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-w",
            "-l",
            str(root / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    dsn = f"host={sock} port={port} user=bench dbname=postgres"
    try:
        with psycopg.connect(dsn) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        yield dsn, str(version)
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )


def _copy(conn: object, sql: str, table: pa.Table, path: Path) -> None:
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False))
    with conn.cursor() as cur, cur.copy(sql) as copy, path.open("rb") as f:  # type: ignore[attr-defined]
        while chunk := f.read(1 << 20):
            copy.write(chunk)
    path.unlink()


def run_postgres(d: dict, tmp: Path, repeats: int) -> dict[str, object]:
    import psycopg

    with postgres_cluster(tmp) as (dsn, version), psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE predictions (id text PRIMARY KEY, ts timestamptz NOT NULL,"
            " score double precision NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE feedback (id text NOT NULL, ts timestamptz NOT NULL,"
            " label integer NOT NULL)"
        )
        t0 = time.perf_counter()
        a = d["arrived"]
        _copy(
            conn,
            "COPY predictions (id, ts, score) FROM STDIN (FORMAT csv)",
            pa.table({"id": d["ids"], "ts": _ts(d["ts"]), "score": d["score"]}),
            tmp / "p.csv",
        )
        _copy(
            conn,
            "COPY feedback (id, ts, label) FROM STDIN (FORMAT csv)",
            pa.table({"id": d["ids"][a], "ts": _ts(d["arrival"][a]), "label": d["label"][a]}),
            tmp / "f.csv",
        )
        conn.execute("CREATE INDEX feedback_id ON feedback (id)")
        conn.execute("CREATE INDEX predictions_ts ON predictions (ts)")
        conn.execute("ANALYZE")
        load_s = time.perf_counter() - t0
        out: dict[str, object] = {"version": version, "load_s": load_s}
        now = datetime.fromtimestamp(d["t_ms"] / 1000, UTC)
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        postmaster = int((tmp / "pg" / "data" / "postmaster.pid").read_text().split()[0])

        def cpu() -> float:
            return proc_cpu_s(backend) + proc_cpu_s(postmaster, children=True)

        for key, lo in (("all", now - timedelta(hours=24)), ("1h", now - timedelta(hours=1))):

            def q(lo: datetime = lo) -> float:
                row = conn.execute(SQL_ALL, {"lo": lo, "hi": now, "now": now}).fetchone()
                return float(row[0])

            out[key] = timed(q, repeats, cpu=cpu)
    return out


# -- Prometheus ---------------------------------------------------------------------------


def prom_version() -> str:
    text = subprocess.run(["prometheus", "--version"], capture_output=True, text=True)
    return (text.stdout + text.stderr).split()[2]


def write_openmetrics(d: dict, path: Path) -> None:
    """Both gauges, one sample per series (seconds with millisecond decimals)."""
    a = d["arrived"]
    with path.open("w") as f:
        for name, ids, values, ms in (
            (PRED, d["ids"], d["score"], d["ts"]),
            (LABEL, d["ids"][a], d["label"][a], d["arrival"][a]),
        ):
            f.write(f"# HELP {name} seed002 rerun\n# TYPE {name} gauge\n")
            lines = [
                f'{name}{{output_id="{i}"}} {v!r} {t // 1000}.{t % 1000:03d}\n'
                for i, v, t in zip(ids.tolist(), values.tolist(), ms.tolist(), strict=True)
            ]
            f.writelines(lines)
        f.write("# EOF\n")


class RssWatch(threading.Thread):
    """Polls a process's RSS; kills it past ``cap`` bytes (a memory cap, recorded)."""

    def __init__(self, pid: int, cap: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.cap, self.peak, self.killed = pid, cap, 0, False
        self.stop = threading.Event()

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self.stop.wait(0.2):
            try:
                rss = next(
                    int(line.split()[1]) * 1024
                    for line in status.read_text().splitlines()
                    if line.startswith("VmRSS:")
                )
            except (OSError, StopIteration):
                return
            self.peak = max(self.peak, rss)
            if rss > self.cap:
                self.killed = True
                os.kill(self.pid, signal.SIGKILL)
                return


def wait_compaction(log: Path, proc: subprocess.Popen[bytes], limit_s: float = 900) -> float:
    """Prometheus compacts the backfilled 2 h blocks into larger ones one minute after it
    starts (as a long-running server would have done long before): wait until that is over
    (a "compact blocks" line, then 20 s without a new compaction/deletion line) so that it
    does not compete with the timed queries."""
    t0 = time.monotonic()
    seen, last_size, quiet_since = False, -1, time.monotonic()
    while time.monotonic() - t0 < limit_s and proc.poll() is None:
        text = log.read_text(errors="replace")
        seen = seen or "compact blocks" in text
        if len(text) != last_size:
            last_size, quiet_since = len(text), time.monotonic()
        if seen and time.monotonic() - quiet_since > 20:
            break
        if not seen and time.monotonic() - t0 > 150:  # nothing to compact
            break
        time.sleep(1)
    return time.monotonic() - t0


def run_prometheus(
    d: dict, tmp: Path, repeats: int, cap_s: float, rss_cap: int
) -> dict[str, object]:
    om, db = tmp / "series.om.txt", tmp / "tsdb"
    t0 = time.perf_counter()
    write_openmetrics(d, om)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om), str(db)],
        check=True,
        capture_output=True,
    )
    backfill_s = time.perf_counter() - t0
    om.unlink()
    cfg = tmp / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={cfg}",
            f"--storage.tsdb.path={db}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=100y",
            "--query.lookback-delta=25h",
            f"--query.timeout={int(cap_s)}s",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "prometheus.log").open("w"),
    )
    watch = RssWatch(proc.pid, rss_cap)
    watch.start()
    base = f"http://127.0.0.1:{port}"
    out: dict[str, object] = {
        "write_openmetrics_s": write_s,
        "backfill_s": backfill_s,
        "tsdb_bytes": sum(p.stat().st_size for p in db.rglob("*") if p.is_file()),
    }
    try:
        deadline = time.monotonic() + 300
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(base + "/-/ready", timeout=5).status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready")
            time.sleep(0.5)
        out["compaction_wait_s"] = wait_compaction(tmp / "prometheus.log", proc)
        t_query = f"{d['t_ms'] // 1000}.{d['t_ms'] % 1000:03d}"
        spent = 0.0
        for key, promql in (("all", PROMQL_ALL), ("1h", PROMQL_1H)):
            left = cap_s - spent

            def q(promql: str = promql, left: float = left) -> float:
                url = (
                    base
                    + "/api/v1/query?"
                    + urllib.parse.urlencode({"query": promql, "time": t_query})
                )
                with urllib.request.urlopen(url, timeout=max(left, 1)) as resp:
                    body = json.load(resp)
                result = body["data"]["result"]
                return float(result[0]["value"][1]) if result else float("nan")

            try:
                r = timed(q, repeats, cap_s=left, cpu=lambda: proc_cpu_s(proc.pid))
            except Exception as exc:  # timeout, connection refused after an OOM kill, ...
                why = "out of memory cap" if watch.killed else f"{type(exc).__name__}: {exc}"
                out[key] = {"failed": why}
                out["failed"] = why
                break
            out[key] = r
            spent += r["first_s"] + sum(r["runs_s"])
    finally:
        watch.stop.set()
        out["peak_rss_bytes"] = watch.peak
        log_text = (tmp / "prometheus.log").read_text(errors="replace")
        out["log_compactions"] = log_text.count("compact blocks")
        if os.environ.get("SEED002_PROM_LOG"):
            shutil.copy(tmp / "prometheus.log", os.environ["SEED002_PROM_LOG"])
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return out


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--quick", action="store_true", help="10,000 predictions only")
    ap.add_argument("--unlabeled", type=float, default=0.2, help="share never labeled")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--skip", nargs="*", default=[], choices=["prometheus", "postgres", "mlpulse"])
    ap.add_argument("--prom-cap-s", type=float, default=600.0, help="per size, all its queries")
    ap.add_argument("--prom-rss-gib", type=float, default=12.0, help="kill Prometheus above")
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()
    sizes = args.sizes or ([10_000] if args.quick else [100_000, 360_000, 1_000_000])
    skip = set(args.skip)
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        progress("prometheus/promtool not found (apt-get install prometheus): skipped")
        skip.add("prometheus")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        progress("psycopg not installed (pip install 'psycopg[binary]'): PostgreSQL skipped")
        skip.add("postgres")
    if pg_bin() is None:
        progress("PostgreSQL not found (apt-get install postgresql): skipped")
        skip.add("postgres")

    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    versions: dict[str, str] = {}
    if "prometheus" not in skip:
        versions["prometheus"] = prom_version()
    per_size: dict[str, dict[str, object]] = {}
    prom_gave_up: str | None = None
    for n in sizes:
        progress(f"N = {n:,}: generating data")
        d = make_data(n, args.seed, args.unlabeled, end)
        res: dict[str, object] = {"truth": d["truth"]}
        per_size[str(n)] = res
        for system, fn in (
            ("mlpulse", lambda tmp, d=d: run_mlpulse(d, tmp, args.repeats)),
            ("postgres", lambda tmp, d=d: run_postgres(d, tmp, args.repeats)),
            (
                "prometheus",
                lambda tmp, d=d: run_prometheus(
                    d, tmp, args.repeats, args.prom_cap_s, int(args.prom_rss_gib * 2**30)
                ),
            ),
        ):
            if system in skip:
                continue
            if system == "prometheus" and prom_gave_up:
                res[system] = {"failed": f"not tried: {prom_gave_up} at a smaller size"}
                continue
            with tempfile.TemporaryDirectory(prefix="mlpulse-seed002-") as tmp:
                r = fn(Path(tmp))
            res[system] = r
            if system == "postgres":
                versions["postgres"] = str(r.pop("version"))
            if r.get("failed") and system == "prometheus":
                prom_gave_up = str(r["failed"])
            for key in ("all", "1h"):
                q = r.get(key)
                if not isinstance(q, dict) or "value" not in q:
                    continue
                truth = d["truth"][key]
                q["correct"] = bool(abs(q["value"] - truth) < 1e-9)
                progress(
                    f"N = {n:,} {system} {key}: {q['value']:.6f} (truth {truth:.6f},"
                    f" {'OK' if q['correct'] else 'WRONG'}) first {q['first_s'] * 1000:.1f} ms,"
                    f" median {q['median_s'] * 1000:.1f} ms of {len(q['runs_s'])},"
                    f" CPU {_ms(q['median_cpu_s'])} ms, load {q['loadavg_1m']:.1f}"
                )
            if r.get("failed"):
                progress(f"N = {n:,} {system}: FAILED {r['failed']}")

    print_table(per_size)
    metrics, targets = summarize(per_size)
    emit(
        "prometheus_vs_mlpulse",
        args.quick,
        metrics | {"per_size": per_size, "versions": versions},
        targets,
        {"sizes": sizes, "unlabeled": args.unlabeled, "repeats": args.repeats, "seed": args.seed},
        save=not args.no_save,
    )


def _q(res: dict, system: str, key: str) -> dict | None:
    r = res.get(system)
    q = r.get(key) if isinstance(r, dict) else None
    return q if isinstance(q, dict) and "median_s" in q else None


def _median(res: dict, system: str, key: str, field: str = "median_s") -> float | None:
    q = _q(res, system, key)
    return q[field] if q and q.get(field) else None


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:,.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:,.0f}x" if a / b >= 10 else f"{a / b:.1f}x"


def print_table(per_size: dict[str, dict[str, object]]) -> None:
    """Markdown: wall ms (CPU ms) medians, and the wall and CPU ratios Prometheus/mlpulse."""
    print(
        "\n| N | window | Prometheus | PostgreSQL | mlpulse | Prom/mlpulse | PG/mlpulse"
        " | all correct | article PromQL |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, res in per_size.items():
        for key in ("all", "1h"):
            cells = []
            for system in ("prometheus", "postgres", "mlpulse"):
                q, r = _q(res, system, key), res.get(system)
                if q:
                    cells.append(f"{_ms(q['median_s'])} ({_ms(q.get('median_cpu_s'))}) ms")
                elif isinstance(r, dict) and r.get("failed"):
                    cells.append("failed: " + str(r["failed"])[:60])
                else:
                    cells.append("-")
            ratios = []
            for other in ("prometheus", "postgres"):
                w, m = _median(res, other, key), _median(res, "mlpulse", key)
                c = _median(res, other, key, "median_cpu_s")
                mc = _median(res, "mlpulse", key, "median_cpu_s")
                text = _ratio(w, m)
                if c and mc:
                    text += f" ({_ratio(c, mc)})"
                ratios.append(text)
            correct = all(
                q["correct"]
                for system in ("prometheus", "postgres", "mlpulse")
                if (q := _q(res, system, key))
            )
            art = ARTICLE.get(int(n)) if key == "all" else None
            print(
                f"| {int(n):,} | {key} | {' | '.join(cells)} | {' | '.join(ratios)} |"
                f" {'yes' if correct else 'NO'} | {f'~{art} s' if art else '-'} |"
            )


def summarize(
    per_size: dict[str, dict[str, object]],
) -> tuple[dict[str, object], list[dict[str, object]]]:
    correct = all(
        res["mlpulse"][key]["correct"]
        for res in per_size.values()
        if isinstance(res.get("mlpulse"), dict)
        for key in ("all", "1h")
    )
    metrics: dict[str, object] = {"mlpulse_correct_everywhere": correct}
    targets = [target("mlpulse correct at every size", float(correct), ">=", 1.0)]
    res = per_size.get("360000")
    if res:
        p, m = _median(res, "prometheus", "all"), _median(res, "mlpulse", "all")
        if p and m:
            metrics["prom_over_mlpulse_360k"] = p / m
            targets.append(
                target("Prometheus / mlpulse at 360k, all time", p / m, ">=", 100.0, "x")
            )
    return metrics, targets


if __name__ == "__main__":
    main()
