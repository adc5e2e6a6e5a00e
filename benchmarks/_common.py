"""Shared plumbing: environment description, targets, result line and result files."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RESULT_PREFIX = "BENCH_RESULT "

# ops for targets: value OP threshold must hold
_OPS = {
    ">=": lambda v, t: v >= t,
    "<=": lambda v, t: v <= t,
    "<": lambda v, t: v < t,
    ">": lambda v, t: v > t,
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    """HEAD of the checkout the benchmark ran from, with ``+dirty`` when src/ has local edits."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def environment() -> dict[str, object]:
    import duckdb
    import numpy
    import pyarrow

    try:
        import mlpulse

        mlpulse_version = mlpulse.__version__
    except Exception:  # pragma: no cover
        mlpulse_version = "?"
    return {
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
        "mlpulse": mlpulse_version,
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "platform": platform.platform(),
    }


def target(name: str, value: float, op: str, threshold: float, unit: str = "") -> dict[str, object]:
    return {
        "name": name,
        "value": value,
        "op": op,
        "threshold": threshold,
        "unit": unit,
        "pass": bool(_OPS[op](value, threshold)),
    }


def check(t: dict[str, object], value: float) -> bool:
    return bool(_OPS[t["op"]](value, t["threshold"]))


def emit(
    name: str,
    quick: bool,
    metrics: dict[str, object],
    targets: list[dict[str, object]],
    params: dict[str, object] | None = None,
    save: bool = True,
) -> dict[str, object]:
    """Print a human summary and one JSON result line; append the result to results/<name>.json."""
    result = {
        "benchmark": name,
        "quick": quick,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": params or {},
        "metrics": metrics,
        "targets": targets,
        "pass": all(t["pass"] for t in targets),
        "env": environment(),
    }
    for t in targets:
        print(
            f"  {t['name']}: {t['value']:.4g}{t['unit']}  target {t['op']} {t['threshold']:g}{t['unit']}"
            f"  {'PASS' if t['pass'] else 'FAIL'}",
            flush=True,
        )
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    if save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{name}{'_quick' if quick else ''}.json"
        history = []
        if path.exists():
            try:
                history = json.loads(path.read_text())
            except ValueError:
                history = []
        history.append(result)
        path.write_text(json.dumps(history, indent=1) + "\n")
    return result


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
