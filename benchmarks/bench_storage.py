"""Storage size over simulated days, with and without retention, and bytes per prediction.

Predictions (20 numeric features, a segment column with 4 values, latency, 80 % labeled)
arrive over ``--days`` simulated days, one batch per day. The same stream goes into two
files: one that keeps everything (``raw_retention="never"``) and one with retention
(``--raw-retention``, minute profiles ``--minute-retention``) maintained after every day.
After each day the script records the database file's size (checkpointed), the lake's size,
raw rows in the file and the profile blob bytes by resolution; at the end it prints bytes
per stored prediction (raw rows, profiles) and where the profile bytes are.

``--rates 5,500`` first streams ``--rate-days`` simulated days at each rate (predictions a
minute) in 10-minute batches (``--batch-minutes``), as a live service sends them (hour and day parts are merged
from many batches), and reports bytes per prediction: the raw table, the profile blobs by
resolution and part, and the compacted file (less an empty store's). Every size is measured twice from the same
stored states: in the compact layout written now and re-encoded in the layout written before
it (named msgpack envelopes), the "before" of the same run; the 30-day files get the same
comparison at the end. Sizes are deterministic; times are not.

    python benchmarks/bench_storage.py --rows 300000 --days 30 --rates 5,500
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
import msgpack  # noqa: E402
import pyarrow as pa  # noqa: E402
from _common import RESULTS, environment  # noqa: E402

import mlpulse  # noqa: E402
from mlpulse.profiles import codec  # noqa: E402
from mlpulse.profiles.bucket import CORE, decode_part  # noqa: E402
from mlpulse.profiles.bucket import FEATURES as FEATURES_PART  # noqa: E402

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


def legacy_part(part: str, value) -> bytes:
    """A part in the layout stored before the compact one (named envelopes, nested blobs)."""
    if part == CORE:
        return msgpack.packb(
            {
                "n": value.n,
                "positives": value.positives,
                "prediction": codec.encode(value.prediction)
                if value.prediction is not None
                else None,
                "latency": codec.encode(value.latency) if value.latency is not None else None,
                "type_errors": value.type_errors,
                "first_ts": value.first_ts,
                "last_ts": value.last_ts,
            },
            use_bin_type=True,
        )
    if part == FEATURES_PART:
        return codec.encode_states(value)
    return codec.encode(value)


def layouts(pulse) -> dict:
    """Blob bytes by (resolution, part) as stored (compact) and re-encoded in the layout
    before it, with the number of parts; the legacy bytes per key for :func:`to_legacy`."""
    store = pulse.service.store
    rows = store.fetch_all(
        "SELECT p.resolution, p.part, p.n, b.key, b.blob FROM profiles p "
        "JOIN profile_blobs b ON p.key = b.key"
    )
    table: dict[str, dict] = {}
    legacy: dict[str, bytes] = {}
    for resolution, part, n, key, blob in rows:
        old = legacy_part(part, decode_part(part, blob))
        legacy[key] = old
        cell = table.setdefault(
            f"{resolution}/{part}", {"parts": 0, "rows": 0, "now": 0, "before": 0}
        )
        cell["parts"] += 1
        cell["rows"] += int(n)
        cell["now"] += len(blob)
        cell["before"] += len(old)
    return {"by_part": table, "legacy": legacy}


def to_legacy(pulse, legacy: dict[str, bytes]) -> None:
    """Rewrite every stored blob in the layout before the compact one (for the "before"
    file size of the same run)."""
    store = pulse.service.store
    with store.write() as conn:
        conn.register(
            "__legacy",
            pa.table(
                {
                    "key": pa.array(list(legacy)),
                    "blob": pa.array(list(legacy.values()), pa.binary()),
                }
            ),
        )
        try:
            conn.execute("DELETE FROM profile_blobs WHERE key IN (SELECT key FROM __legacy)")
            conn.execute("INSERT INTO profile_blobs SELECT key, blob FROM __legacy")
        finally:
            conn.unregister("__legacy")


def table_bytes(pulse, tables: list[str]) -> int:
    """Bytes these tables take alone: copied into a fresh file, less an empty file's size."""
    store = pulse.service.store
    sizes = []
    for copy in (tables, []):
        target = pulse.path + ".tables"
        for leftover in (target, target + ".wal"):
            if os.path.exists(leftover):
                os.remove(leftover)
        with store.write() as conn:
            conn.execute(f"ATTACH '{target}' AS __tables")
        with store.write() as conn:
            for name in copy:
                conn.execute(f'CREATE TABLE __tables."{name}" AS SELECT * FROM "{name}"')
        store.fetch_all("CHECKPOINT __tables")
        store.fetch_all("DETACH __tables")
        sizes.append(os.path.getsize(target))
        os.remove(target)
    return sizes[0] - sizes[1]


def empty_file_bytes(work: str) -> int:
    """The compacted file of a store holding the model and nothing else (fixed overhead:
    a block or more per table), subtracted from file sizes per prediction."""
    pulse = mlpulse.connect(os.path.join(work, "empty.duckdb"), raw_retention="never")
    pulse.model("sized", task="binary", prediction="score", label="y", segments=["plan"])
    _before, after = pulse.service.store.compact()
    pulse.close()
    return after


EMPTY = {"bytes": 0}
SKIP_BEFORE = False


def sizes(pulse, stored: int, before: bool = True) -> dict:
    """Bytes per stored prediction now and in the layout before, from the same states
    (``before=False``: now only, without decoding every blob)."""
    store = pulse.service.store
    if not before:
        _before, compacted = store.compact()
        raw = table_bytes(pulse, ["raw_1", "feedback_1"])
        return {
            "stored": stored,
            "raw_bytes_per_prediction": raw / stored,
            "file_bytes_per_prediction_compacted": {"now": (compacted - EMPTY["bytes"]) / stored},
            "file_bytes_compacted": compacted,
        }
    shares = layouts(pulse)
    by_part = shares.pop("by_part")
    _before, compacted = store.compact()
    raw = table_bytes(pulse, ["raw_1", "feedback_1"])
    to_legacy(pulse, shares["legacy"])
    _before, compacted_legacy = store.compact()
    now = sum(c["now"] for c in by_part.values())
    before = sum(c["before"] for c in by_part.values())
    return {
        "stored": stored,
        "raw_bytes_per_prediction": raw / stored,
        "profile_blob_bytes_per_prediction": {"now": now / stored, "before": before / stored},
        "file_bytes_per_prediction_compacted": {  # less an empty store's file
            "now": (compacted - EMPTY["bytes"]) / stored,
            "before": (compacted_legacy - EMPTY["bytes"]) / stored,
        },
        "parts_per_prediction": sum(c["parts"] for c in by_part.values()) / stored,
        "blob_bytes_per_prediction_by_part": {
            key: {
                "now": c["now"] / stored,
                "before": c["before"] / stored,
                "bytes_per_part_now": c["now"] / c["parts"],
                "rows_per_part": c["rows"] / c["parts"],
            }
            for key, c in sorted(by_part.items())
        },  # fmt: skip
    }


def rate_run(path: str, per_minute: int, days: int, batch_minutes: int, seed: int) -> dict:
    """``days`` simulated days at ``per_minute`` predictions a minute, in batches of
    ``batch_minutes``
    (labels for 80 % sent with each batch): bytes per prediction now and before."""
    rng = np.random.default_rng(seed)
    pulse = mlpulse.connect(path, raw_retention="never")
    model = pulse.model("sized", task="binary", prediction="score", label="y", segments=["plan"])
    per_day = per_minute * 1440
    started = time.perf_counter()
    for day in range(days):
        batch = day_batch(day, per_day, rng)
        slot = ((batch["ts"] - START).dt.total_seconds() // (60 * batch_minutes)).astype(int)
        for _slot, chunk in batch.groupby(slot, sort=True):
            model.log_batch(chunk.drop(columns="y"), timestamp="ts")
            labeled = chunk.sample(frac=0.8, random_state=day)
            model.log_feedback_batch({"id": labeled["id"], "y": labeled["y"]})
    ingest = time.perf_counter() - started
    out = {
        "per_minute": per_minute,
        "days": days,
        "ingest_s": ingest,
        **sizes(pulse, per_day * days),
    }
    pulse.close()
    print(json.dumps({"rate": out}), flush=True)
    return out


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
        point = {
            "day": day + 1,
            "stored": (day + 1) * per_day,
            "ingest_s": ingest,
            **measure(pulse),
        }
        if report:
            point["maintain_s"] = report["seconds"]
            point["compacted"] = report["compacted"]
        series.append(point)
        print(json.dumps({"with_retention": bool(retention), **point}), flush=True)
    if retention is None:  # the file that keeps everything: now and before, same states
        series[-1]["layouts"] = sizes(pulse, days * per_day, before=not SKIP_BEFORE)
    pulse.close()
    return series


def mb_by_day(series: list[dict]) -> list[float]:
    return [round(p["file_bytes"] / 2**20, 2) for p in series]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="predictions in all")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--raw-retention", default="7d")
    parser.add_argument("--minute-retention", default="2d")
    parser.add_argument(
        "--rates",
        default="",
        help="predictions a minute to measure bytes per prediction at, e.g. 5,500",
    )
    parser.add_argument("--rate-days", type=int, default=1, help="simulated days at each rate")
    parser.add_argument("--batch-minutes", type=int, default=10, help="batch span at each rate")
    parser.add_argument(
        "--short-hour-retention",
        default="",
        help="also stream into a third file whose hour profiles roll off after this (e.g. 7d)",
    )
    parser.add_argument(
        "--only-short", action="store_true", help="with --short-hour-retention: that file alone"
    )
    parser.add_argument(
        "--only",
        default="",
        help="stream only these files, e.g. kept or retained,short (one process per file "
        "runs them side by side); the summary covers what ran",
    )
    parser.add_argument(
        "--skip-before",
        action="store_true",
        help="at the end, compact the kept file without re-encoding it in the earlier layout",
    )
    args = parser.parse_args()
    global SKIP_BEFORE
    SKIP_BEFORE = args.skip_before
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if args.only_short:
        only = {"short"}
    wanted = lambda name: not only or name in only  # noqa: E731
    per_day = args.rows // args.days
    work = tempfile.mkdtemp(prefix="bench-storage-")
    rates = []
    EMPTY["bytes"] = empty_file_bytes(work)
    try:
        for i, rate in enumerate(int(r) for r in args.rates.split(",") if r.strip()):
            path = os.path.join(work, f"rate{i}.duckdb")
            rates.append(rate_run(path, rate, args.rate_days, args.batch_minutes, 7))
        retention = {
            "raw_retention": args.raw_retention,
            "profile_retention": {"minute": args.minute_retention, "hour": "400d"},
        }
        short: list[dict] = []
        if args.short_hour_retention and wanted("short"):
            settings = {
                "raw_retention": args.raw_retention,
                "profile_retention": {
                    "minute": args.minute_retention,
                    "hour": args.short_hour_retention,
                },
            }
            short = run(os.path.join(work, "short.duckdb"), args.days, per_day, settings, 1)
        kept = (
            run(os.path.join(work, "kept.duckdb"), args.days, per_day, None, 1)
            if wanted("kept")
            else []
        )
        retained = (
            run(os.path.join(work, "retained.duckdb"), args.days, per_day, retention, 1)
            if wanted("retained")
            else []
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary: dict = {"rows": per_day * args.days, "days": args.days, "rows_per_day": per_day}
    if kept:
        last = kept[-1]
        blob_total = sum(last["blob_bytes"].values())
        summary.update(
            {
                "file_mb_without_retention": last["file_bytes"] / 2**20,
                "bytes_per_prediction_file_without_retention": last["file_bytes"] / last["stored"],
                "profile_blob_bytes_per_prediction": blob_total / last["stored"],
                "profile_blob_share_by_resolution": {
                    k: v / blob_total for k, v in sorted(last["blob_bytes"].items())
                },
                "minute_parts_per_day": last["parts"].get("minute", 0) / args.days,
                "kept_file_mb_by_day": mb_by_day(kept),
                "kept_layouts_day_last": {
                    k: v
                    for k, v in last.get("layouts", {}).items()
                    if k != "blob_bytes_per_prediction_by_part"
                },
            }
        )
    for name, series in (("retained", retained), ("short_hour", short)):
        if series:
            end = series[-1]
            summary.update(
                {
                    f"{name}_file_mb_by_day": mb_by_day(series),
                    f"{name}_file_mb": end["file_bytes"] / 2**20,
                    f"{name}_lake_mb": end["lake_bytes"] / 2**20,
                    f"{name}_lake_bytes_per_prediction": end["lake_bytes"]
                    / max(1, end["stored"] - end["raw_rows"]),
                    f"{name}_maintain_s_median": float(
                        np.median([p.get("maintain_s", 0) for p in series])
                    ),
                }
            )
    summary["rates"] = rates
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(exist_ok=True)
    suffix = "-" + "-".join(sorted(only)) if only else ""
    (RESULTS / f"storage{suffix}.json").write_text(
        json.dumps(
            {
                "environment": environment(),
                "summary": summary,
                "kept": kept,
                "retained": retained,
                "short_hour": short,
            },
            indent=1,
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
