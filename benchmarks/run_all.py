"""Run every benchmark N times (default 3), each run in a fresh subprocess; print the
medians, check the targets on the medians, and write a markdown table.

    python benchmarks/run_all.py                    # full sizes, 3 runs each (tens of minutes)
    python benchmarks/run_all.py --quick --repeat 1 # smoke test (about a minute)
    python benchmarks/run_all.py --only ingest feedback log

Each run appends its result to benchmarks/results/<name>[_quick].json; the summary goes to
benchmarks/results/summary[_quick].md and .json (or --markdown PATH).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import RESULT_PREFIX, RESULTS, check, environment  # noqa: E402

BENCHMARKS = {
    "ingest": "bench_ingest.py",
    "feedback": "bench_feedback.py",
    "log": "bench_log.py",
    "query": "bench_query.py",
    "memory": "bench_memory.py",
}

# the figures shown in the table, per benchmark: (metric key, label, format)
SHOWN = {
    "ingest": [
        ("rows_per_s", "ingest throughput (rows/s)", "{:,.0f}"),
        ("log_batch_s", "log_batch time (s)", "{:.2f}"),
        ("duckdb_baseline_s", "DuckDB-alone CTAS+CHECKPOINT (s)", "{:.2f}"),
        ("ratio_vs_duckdb", "mlpulse / DuckDB time", "{:.2f}x"),
    ],
    "feedback": [
        ("feedback_s", "apply labels (s)", "{:.2f}"),
        ("duckdb_update_baseline_s", "DuckDB-alone UPDATE join (s)", "{:.2f}"),
        ("ratio_vs_duckdb_update", "mlpulse / DuckDB UPDATE", "{:.1f}x"),
    ],
    "log": [
        ("p50_us", "log() p50 (us)", "{:.2f}"),
        ("p99_us", "log() p99 (us)", "{:.2f}"),
        ("max_us", "log() max (us)", "{:,.0f}"),
        ("flush_s", "flush after loop (s)", "{:.2f}"),
    ],
    "query": [
        ("p50_ms_small", "query p50, small N (ms)", "{:.1f}"),
        ("p50_ms_large", "query p50, large N (ms)", "{:.1f}"),
        ("ratio_large_vs_small", "large / small", "{:.2f}x"),
        ("first_ms_large", "first query in the process, large N (ms)", "{:.1f}"),
        ("p50_uncached_runs_ms_large", "p50 with runs and edges uncached, large N (ms)", "{:.1f}"),
        ("large_ingest_rows_per_s", "large-N ingest (rows/s, 1M chunks)", "{:,.0f}"),
    ],
    "memory": [
        ("peak_rss_mib", "peak RSS (MiB)", "{:,.0f}"),
        ("rows_per_s", "ingest (rows/s, 500k chunks)", "{:,.0f}"),
    ],
}


def run_once(name: str, quick: bool, extra: list[str]) -> dict | None:
    cmd = [sys.executable, str(HERE / BENCHMARKS[name])] + (["--quick"] if quick else []) + extra
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
    if proc.returncode or result is None:
        print(f"  {name}: FAILED (exit {proc.returncode}) after {elapsed:.0f} s", flush=True)
        print("\n".join(proc.stdout.splitlines()[-20:]), flush=True)
        return None
    print(
        f"  {name}: done in {elapsed:.0f} s: "
        + ", ".join(f"{t['name']}={t['value']:.4g}{t['unit']}" for t in result["targets"]),
        flush=True,
    )
    return result


def median_of(values: list) -> float | None:
    values = [v for v in values if isinstance(v, (int, float)) and v is not None]
    return statistics.median(values) if values else None


def summarize(name: str, runs: list[dict]) -> dict:
    keys = {k for r in runs for k in r["metrics"]}
    metrics = {k: median_of([r["metrics"].get(k) for r in runs]) for k in sorted(keys)}
    targets = []
    for i, t in enumerate(runs[0]["targets"]):
        values = [r["targets"][i]["value"] for r in runs]
        med = statistics.median(values)
        targets.append({**t, "value": med, "runs": values, "pass": check(t, med)})
    commits = sorted({r.get("env", {}).get("commit", "?") for r in runs})
    return {
        "benchmark": name,
        "runs": len(runs),
        "metrics": metrics,
        "targets": targets,
        "pass": all(t["pass"] for t in targets),
        "commits": commits,
    }


def fmt_target(t: dict) -> str:
    return f"{t['op']} {t['threshold']:,g}{t['unit']}"


def fmt_value(v: float, unit: str) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}{unit}"
    return f"{v:.3g}{unit}"


def markdown(summaries: list[dict], quick: bool, repeat: int) -> str:
    env = environment()
    lines = [
        f"Benchmark summary ({'quick' if quick else 'full'} sizes, median of {repeat} runs, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"Python {env['python']}, duckdb {env['duckdb']}, numpy {env['numpy']}, pyarrow {env['pyarrow']}, "
        f"{env['cpus']} CPUs {env['cpu']})",
        "",
        "Commits: "
        + "; ".join(f"{s['benchmark']} {', '.join(s.get('commits', []))}" for s in summaries),
        "",
        "| benchmark | target | median | runs | result |",
        "|---|---|---|---|---|",
    ]
    for s in summaries:
        for t in s["targets"]:
            runs = ", ".join(fmt_value(v, "") for v in t["runs"])
            lines.append(
                f"| {s['benchmark']} | {t['name']} {fmt_target(t)} | {fmt_value(t['value'], t['unit'])} "
                f"| {runs} | **{'PASS' if t['pass'] else 'FAIL'}** |"
            )
    lines += ["", "| benchmark | figure | median |", "|---|---|---|"]
    for s in summaries:
        for key, label, form in SHOWN.get(s["benchmark"], []):
            v = s["metrics"].get(key)
            if v is not None:
                lines.append(f"| {s['benchmark']} | {label} | {form.format(v)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", "-n", type=int, default=3, help="runs per benchmark (default 3)")
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    ap.add_argument("--markdown", type=Path, default=None, help="where to write the markdown table")
    ap.add_argument("--no-save", action="store_true", help="benchmarks do not append to results/")
    ap.add_argument(
        "--from-results",
        action="store_true",
        help="run nothing: summarize the last --repeat results stored in results/<name>.json",
    )
    args = ap.parse_args()
    names = args.only or list(BENCHMARKS)
    extra = ["--no-save"] if args.no_save else []

    summaries = []
    for name in names:
        runs = []
        if args.from_results:
            path = RESULTS / f"{name}{'_quick' if args.quick else ''}.json"
            runs = json.loads(path.read_text())[-args.repeat :] if path.exists() else []
        for i in range(0 if args.from_results else args.repeat):
            print(f"[{time.strftime('%H:%M:%S')}] {name} run {i + 1}/{args.repeat}", flush=True)
            r = run_once(name, args.quick, extra)
            if r is not None:
                runs.append(r)
        if runs:
            summaries.append(summarize(name, runs))
        else:
            summaries.append(
                {"benchmark": name, "runs": 0, "metrics": {}, "targets": [], "pass": False}
            )

    text = markdown([s for s in summaries if s["runs"]], args.quick, args.repeat)
    failed = [s["benchmark"] for s in summaries if not s["runs"]]
    if failed:
        text += f"\nBenchmarks that failed to run: {', '.join(failed)}\n"
    print()
    print(text)
    suffix = "_quick" if args.quick else ""
    path = args.markdown or RESULTS / f"summary{suffix}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    (RESULTS / f"summary{suffix}.json").write_text(json.dumps(summaries, indent=1) + "\n")
    print(f"wrote {path}")
    sys.exit(0 if all(s["pass"] for s in summaries) else 1)


if __name__ == "__main__":
    main()
