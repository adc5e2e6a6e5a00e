"""Peak resident memory while ingesting 10,000,000 predictions (20 features) in chunks of
500,000 via ``model.log_batch`` into a file store. The ingest runs in a fresh child process;
its peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read by the child at the end
(it includes the interpreter, the imports and the generated chunk, as a user's process would).

Target: peak RSS < 2 GiB.

    python benchmarks/bench_memory.py            # 10,000,000 rows
    python benchmarks/bench_memory.py --quick    # 1,000,000 rows
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 2**30


def rss_now() -> int:
    """Current RSS in bytes (Linux)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child(n: int, chunk: int, seed: int) -> None:
    import _data
    from _common import progress

    import mlpulse

    end = _data.utc_now_floor_minute()
    start = end - _data.timedelta(days=10)
    after_import = peak_rss()
    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-") as tmp:
        pulse = mlpulse.connect(str(Path(tmp) / "pulse.duckdb"))
        model = pulse.model("bench_memory", version="v1", **_data.MODEL_KW)
        t0 = time.perf_counter()
        samples = []
        for offset in range(0, n, chunk):
            m = min(chunk, n - offset)
            table = _data.predictions(m, seed=seed, offset=offset, start=start, end=end)
            report = model.log_batch(table, id="id", timestamp="timestamp")
            del table
            if report.stored != m:
                raise SystemExit(f"unexpected report: {report}")
            samples.append(rss_now())
            if (offset // chunk) % 4 == 3 or offset + m == n:
                progress(
                    f"  {offset + m:,}/{n:,} rows, rss {samples[-1] / 2**20:.0f} MiB, "
                    f"peak {peak_rss() / 2**20:.0f} MiB ({time.perf_counter() - t0:.0f} s)"
                )
        ingest_s = time.perf_counter() - t0
        pulse.close()
        file_bytes = sum(p.stat().st_size for p in Path(tmp).glob("pulse.duckdb*"))
    print(
        json.dumps(
            {
                "peak_rss_bytes": peak_rss(),
                "rss_after_import_bytes": after_import,
                "rss_end_bytes": samples[-1],
                "ingest_s": ingest_s,
                "file_bytes": file_bytes,
            }
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rows", type=int, default=None, help="rows (default 10,000,000; --quick 1,000,000)"
    )
    ap.add_argument("--chunk", type=int, default=500_000)
    ap.add_argument("--quick", action="store_true", help="small smoke size")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.rows or (1_000_000 if args.quick else 10_000_000)
    if args.child:
        child(n, args.chunk, args.seed)
        return

    from _common import emit, progress, target

    progress(f"ingesting {n:,} rows in chunks of {args.chunk:,} in a child process")
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--rows",
        str(n),
        "--chunk",
        str(args.chunk),
        "--seed",
        str(args.seed),
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"child failed with exit status {proc.returncode}")
    child_result = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = child_result["peak_rss_bytes"]
    metrics = {
        "rows": n,
        "chunk": args.chunk,
        "peak_rss_mib": peak / 2**20,
        "rss_after_import_mib": child_result["rss_after_import_bytes"] / 2**20,
        "rss_end_mib": child_result["rss_end_bytes"] / 2**20,
        "ingest_s": child_result["ingest_s"],
        "rows_per_s": n / child_result["ingest_s"],
        "store_file_mib": child_result["file_bytes"] / 2**20,
    }
    targets = [target("peak RSS", peak / GIB, "<", 2.0, " GiB")]
    emit(
        "memory",
        args.quick,
        metrics,
        targets,
        {"rows": n, "chunk": args.chunk, "seed": args.seed},
        save=not args.no_save,
    )


if __name__ == "__main__":
    main()
