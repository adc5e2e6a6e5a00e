"""The simulation behind ``mlpulse demo``.

It plays a churn model's production life in *event time*, using only the public API:

1. register a binary classifier ``churn`` version ``v1`` with a 5,000-row reference set,
   sliced by ``plan``;
2. stream predictions in ten-minute chunks with explicit timestamps from a fixed origin
   (2026-01-01T00:00Z), each with a latency;
3. deliver labels late (5-90 simulated minutes after the prediction), out of order, and
   correct about 3 % of them later with the opposite label;
4. half-way through, ``monthly_charges`` shifts up and its relation to churn changes, so the
   model's accuracy drops;
5. evaluate the alert rules live after every chunk (the recommended rules created at
   registration, plus one on ``monthly_charges``'s drift), as a server would;
6. print one row per hour: volume, label coverage, accuracy, F1, ROC AUC, latency quantiles
   and the mean of the drifting feature; then the alerts (when each went pending, fired and
   resolved, and what it said) and the incident they were grouped into.

Nothing depends on the wall clock, so one seed always prints the same report::

    from mlpulse.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(duration="1h", rate=10, db=":memory:", quiet=True))
    result.windows  # the hourly metrics frame behind the printed table
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

import mlpulse

from ._time import HOUR, MINUTE, align_up, parse_duration
from .errors import ConfigError, StoreError, StoreLockedError

DEFAULT_DB = "mlpulse-demo.duckdb"
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
MODEL_NAME = "churn"
MODEL_VERSION = "v1"
REFERENCE_ROWS = 5_000
CHUNK = 10 * MINUTE  # simulated time per log_batch call
WINDOW = "1h"
DRIFTING_FEATURE = "monthly_charges"
DRIFT_SHIFT = 25.0  # added to monthly_charges after the drift point
LABEL_DELAY_MINUTES = (5.0, 90.0)
CORRECTION_RATE = 0.03
CORRECTION_DELAY_MINUTES = (20.0, 120.0)
MAX_PREDICTIONS = 20_000_000  # keeps a typo in --duration/--rate from eating all memory

FEATURES = ["age", "tenure_months", "monthly_charges", "support_calls", "plan", "region"]
METRICS = [
    "accuracy",
    "f1",
    "roc_auc",
    "label_coverage",
    "latency_p50",
    "latency_p95",
    "latency_p99",
]

#: The demo's rules, beside the recommended ones created at registration: a drift alert on
#: the feature that shifts (Wasserstein distance in units of the reference's spread), and the
#: two recommended performance rules edited to tolerate 3 points below the reference band:
#: 3% of the demo's labels are first wrong and corrected up to two hours later, which
#: keeps the live accuracy about 2 points under its final value.
DEMO_RULES = [
    {
        "name": f"{MODEL_NAME}:{metric}-vs-reference",
        "model": MODEL_NAME,
        "metric": metric,
        "window": "6h",
        "op": "<",
        "baseline": "reference",
        "band": 4,
        "tolerance": 0.03,
        "for": "1h",
        "min_rows": 100,
        "labels": {"severity": "page", "recommended": "true"},
        "annotations": {
            "summary": "{{model}} {{metric}} {{value}} is below the reference band ({{threshold}})"
        },
        "source": "recommended",
    }
    for metric in ("accuracy", "roc_auc")
] + [
    {
        "name": f"{MODEL_NAME}-{DRIFTING_FEATURE}-drift",
        "model": MODEL_NAME,
        "metric": f"drift:{DRIFTING_FEATURE}",
        "window": "1h",
        "op": ">",
        "threshold": 0.1,
        "for": "10m",
        "min_rows": 500,
        "labels": {"severity": "warning"},
        "annotations": {"summary": "{{model}}: {{metric}} is {{value}} (> {{threshold}}) over {{window}}"},
    }
]

_PLANS = np.array(["basic", "pro", "enterprise"])
_PLAN_SHARE = np.array([0.5, 0.35, 0.15])
_PLAN_BASE_CHARGE = np.array([35.0, 65.0, 110.0])
_PLAN_EFFECT = np.array([0.4, 0.0, -0.6])
_REGIONS = np.array(["north", "south", "east", "west"])
_REGION_SHARE = np.array([0.3, 0.25, 0.25, 0.2])
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
#: The table that marks a database as the demo's own: only such a file is ever replaced.
DEMO_MARKER = "mlpulse_demo"
_PID = re.compile(r"PID (\d+)")


@dataclass(frozen=True)
class DemoConfig:
    """What to simulate: span of event time, predictions per simulated minute, seed, store."""

    duration: str = "6h"
    rate: int = 200
    seed: int = 7
    db: str = DEFAULT_DB
    quiet: bool = False
    force: bool = False  # replace a DuckDB database the demo did not create (never a locked one)


@dataclass
class DemoResult:
    """What the demo logged and what it read back."""

    windows: pd.DataFrame  # metrics() per hour, plus the drifting feature's mean
    predictions: int = 0  # received, as the log_batch reports count them
    stored: int = 0
    quarantined: int = 0
    labels: int = 0
    corrections: int = 0
    labels_pending: int = 0
    reference_accuracy: float = math.nan
    reference_mean: float = math.nan
    drift_at: datetime = ORIGIN
    db: str = DEFAULT_DB
    alerts: pd.DataFrame | None = None  # pulse.alerts() at the end
    incidents: list[Any] | None = None  # pulse.incident(id) of each incident


# --------------------------------------------------------------------------- simulation


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _features(rng: np.random.Generator, n: int, drifted: np.ndarray | None = None) -> pd.DataFrame:
    """Customer features; rows flagged in ``drifted`` get higher monthly charges."""
    plan = rng.choice(len(_PLANS), size=n, p=_PLAN_SHARE)
    age = rng.integers(18, 81, size=n)
    tenure = rng.integers(0, 73, size=n)
    charges = _PLAN_BASE_CHARGE[plan] + rng.normal(0.0, 12.0, size=n)
    calls = rng.poisson(1.5, size=n)
    region = rng.choice(len(_REGIONS), size=n, p=_REGION_SHARE)
    if drifted is not None:
        charges = charges + DRIFT_SHIFT * drifted
    return pd.DataFrame(
        {
            "age": age.astype("int64"),
            "tenure_months": tenure.astype("int64"),
            "monthly_charges": np.round(np.maximum(charges, 5.0), 2),
            "support_calls": calls.astype("int64"),
            "plan": _PLANS[plan],
            "region": _REGIONS[region],
        }
    )


def _logit(frame: pd.DataFrame, drifted: np.ndarray | None = None) -> np.ndarray:
    """Churn log-odds. The model scores with the first world; after the drift, the truth
    follows the second, where tenure protects less and price no longer drives churn."""
    plan_effect = _plan_effect(frame["plan"].to_numpy())
    tenure = frame["tenure_months"].to_numpy(dtype=float)
    charges = frame["monthly_charges"].to_numpy(dtype=float)
    calls = frame["support_calls"].to_numpy(dtype=float)
    age = frame["age"].to_numpy(dtype=float)
    common = 0.6 + 0.55 * (calls - 1.5) - 0.02 * (age - 45.0) + plan_effect
    before = common - 0.07 * tenure + 0.035 * (charges - 60.0)
    if drifted is None:
        return before
    after = common - 0.02 * tenure - 0.01 * (charges - 60.0)
    return np.where(drifted, after, before)


def _plan_effect(plan: np.ndarray) -> np.ndarray:
    effect = np.zeros(len(plan))
    for name, value in zip(_PLANS, _PLAN_EFFECT, strict=True):
        effect[plan == name] = value
    return effect


def make_reference(rng: np.random.Generator, n: int = REFERENCE_ROWS) -> pd.DataFrame:
    """Validation data: features, the model's calibrated ``score`` and the label ``churned``."""
    frame = _features(rng, n)
    frame["score"] = _sigmoid(_logit(frame))
    frame["churned"] = (rng.random(n) < frame["score"].to_numpy()).astype("int64")
    return frame


@dataclass
class Traffic:
    """Simulated predictions and the feedback events that follow them (event time, µs)."""

    predictions: pd.DataFrame  # request_id, ts, features, score, latency_ms; sorted by ts
    ts_us: np.ndarray
    labels: pd.DataFrame  # request_id, churned, arrival_us (first label, 3 % of them wrong)
    corrections: pd.DataFrame  # request_id, churned, arrival_us (the right label)


def simulate_traffic(
    rng: np.random.Generator, duration_us: int, rate: int, origin: datetime = ORIGIN
) -> Traffic:
    """Draw ``rate`` predictions per simulated minute over ``duration_us`` from ``origin``."""
    start_us = (origin - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    n = max(1, int(round(rate * duration_us / MINUTE)))
    offsets = np.sort(rng.integers(0, duration_us, size=n))
    ts_us = start_us + offsets
    drifted = offsets >= duration_us // 2
    frame = _features(rng, n, drifted)
    score = _sigmoid(_logit(frame))  # the model does not know the world changed
    truth = (rng.random(n) < _sigmoid(_logit(frame, drifted))).astype("int64")
    # Lognormal service latency around 12 ms with a slow tail (1 % of calls ~5x slower).
    latency = rng.lognormal(np.log(12.0), 0.35, size=n) * np.where(rng.random(n) < 0.01, 5.0, 1.0)
    ids = np.char.add("req-", np.char.zfill(np.arange(n).astype(str), 8))
    predictions = pd.DataFrame(
        {"request_id": ids, "ts": pd.to_datetime(ts_us, unit="us", utc=True)}
    )
    predictions = pd.concat([predictions, frame], axis=1)
    predictions["score"] = np.round(score, 6)
    predictions["latency_ms"] = np.round(latency, 3)

    delay = rng.uniform(*LABEL_DELAY_MINUTES, size=n) * MINUTE
    arrival = ts_us + delay.astype("int64")
    wrong = rng.random(n) < CORRECTION_RATE
    labels = pd.DataFrame(
        {"request_id": ids, "churned": np.where(wrong, 1 - truth, truth), "arrival_us": arrival}
    )
    fix_delay = rng.uniform(*CORRECTION_DELAY_MINUTES, size=int(wrong.sum())) * MINUTE
    corrections = pd.DataFrame(
        {
            "request_id": ids[wrong],
            "churned": truth[wrong],
            "arrival_us": arrival[wrong] + fix_delay.astype("int64"),
        }
    )
    return Traffic(predictions, ts_us, labels, corrections)


def _arrivals(events: pd.DataFrame, lo: int, hi: int, rng: np.random.Generator) -> pd.DataFrame:
    """Feedback that arrives in simulated ``[lo, hi)``, shuffled: labels come out of order."""
    arrival = events["arrival_us"].to_numpy()
    batch = events[(arrival >= lo) & (arrival < hi)]
    batch = batch.iloc[rng.permutation(len(batch))]
    return pd.DataFrame(
        {
            "request_id": batch["request_id"].to_numpy(),
            "churned": batch["churned"].to_numpy(),
            "ts": pd.to_datetime(batch["arrival_us"].to_numpy(), unit="us", utc=True),
        }
    )


# --------------------------------------------------------------------------- run


def _remove_previous(db: str, force: bool = False) -> None:
    """Make way for the demo's database at ``db``.

    The file's lock is taken first, so a database another process owns (a running server)
    is refused with :class:`~mlpulse.errors.StoreLockedError`, ``--force`` or not. Then only
    a database the demo created (it holds the :data:`DEMO_MARKER` table) is deleted, or any
    DuckDB database with ``force``; files that are not DuckDB databases are never touched.
    The file is unlinked while the lock is held, so no other process can open it between
    the check and the deletion.
    """
    if db == ":memory:":
        return
    if "://" in db:
        raise ConfigError(
            f"--db {db!r}: the demo needs an embedded store, a file path or ':memory:'"
        )
    path = Path(db)
    wal = path.with_name(path.name + ".wal")
    if not path.exists():
        if wal.is_file() and not force:
            raise ConfigError(
                f"--db {db!r}: {wal.name} exists without its database; the demo will not "
                "delete it: remove it yourself or pass --force"
            )
        if wal.is_file():
            wal.unlink()
        return
    if not path.is_file():
        raise ConfigError(f"--db {db!r} exists and is not a file")
    with path.open("rb") as handle:
        header = handle.read(12)
    if header[8:12] != _DUCKDB_MAGIC:
        raise ConfigError(
            f"--db {db!r} exists and is not a DuckDB database; refusing to overwrite it"
        )
    import duckdb

    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = _PID.search(text)
            owner = f"process {pid.group(1)}" if pid else "another process"
            raise StoreLockedError(
                f"the database file {db!r} is in use by {owner}; only one process may write "
                "to it, and the demo will not delete it. Stop that process first (it may be "
                "a server holding data you need) or pass another --db."
            ) from None
        raise StoreError(
            f"--db {db!r}: cannot open the database to check it ({text.splitlines()[0]}); "
            "refusing to delete it"
        ) from None
    try:
        [(marked,)] = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [DEMO_MARKER]
        ).fetchall()
        if not marked and not force:
            raise ConfigError(
                f"--db {db!r} is a DuckDB database the demo did not create; refusing to "
                "delete it (it may hold real data). Pass another --db, or --force to replace it."
            )
        path.unlink()  # while the lock is held
        if wal.is_file():
            wal.unlink()
    finally:
        conn.close()


def _mark(db: str, config: DemoConfig) -> None:
    """Create the demo's database with its :data:`DEMO_MARKER` table (before mlpulse
    adds its own), so the next run knows the file is the demo's to replace."""
    if db == ":memory:":
        return
    import duckdb

    try:
        conn = duckdb.connect(db)
    except duckdb.Error as exc:  # another process took the path meanwhile
        raise StoreLockedError(f"--db {db!r}: cannot create the demo database: {exc}") from None
    try:
        conn.execute(
            f"CREATE TABLE {DEMO_MARKER} (created_at TIMESTAMP, seed BIGINT, "
            "duration VARCHAR, rate BIGINT)"
        )
        conn.execute(
            f"INSERT INTO {DEMO_MARKER} VALUES (now(), ?, ?, ?)",
            [config.seed, config.duration, config.rate],
        )
    finally:
        conn.close()


def run_demo(config: DemoConfig, console: Console | None = None) -> DemoResult:
    """Simulate, log through the public API, read the hourly report back and print it."""
    console = console or Console()
    if config.rate <= 0:
        raise ConfigError(
            f"--rate must be a positive number of predictions per minute, not {config.rate}"
        )
    duration_us = parse_duration(config.duration)
    if config.rate * duration_us / MINUTE > MAX_PREDICTIONS:
        raise ConfigError(
            f"--duration {config.duration} at --rate {config.rate} is more than "
            f"{MAX_PREDICTIONS:,} predictions; use a shorter span or a lower rate"
        )
    _remove_previous(config.db, config.force)
    _mark(config.db, config)

    rng = np.random.default_rng(config.seed)
    reference = make_reference(rng)
    traffic = simulate_traffic(rng, duration_us, config.rate)
    feedback_rng = np.random.default_rng([config.seed, 1])

    pulse = mlpulse.connect(config.db)
    try:
        model = pulse.model(
            MODEL_NAME,
            version=MODEL_VERSION,
            task="binary",
            reference=reference,
            prediction="score",
            label="churned",
            features=FEATURES,
            threshold=0.5,
            segments=["plan"],
        )
        result = DemoResult(
            windows=pd.DataFrame(),
            db=config.db,
            drift_at=ORIGIN + timedelta(microseconds=duration_us // 2),
            reference_accuracy=float(
                ((reference["score"] >= 0.5).astype("int64") == reference["churned"]).mean()
            ),
            reference_mean=float(reference[DRIFTING_FEATURE].mean()),
        )
        pulse.rules.load(DEMO_RULES)
        # the demo evaluates once per 10-minute chunk: that is its live evaluation interval
        pulse.service.alert_settings = replace(pulse.service.alert_settings, interval=CHUNK / 1e6)
        _stream(model, traffic, duration_us, feedback_rng, result, config.quiet, pulse)
        pulse.flush()
        result.alerts = pulse.alerts()
        result.incidents = [pulse.incident(int(i)) for i in pulse.incidents()["id"]]

        end = ORIGIN + timedelta(microseconds=align_up(duration_us, HOUR))
        windows = model.metrics(METRICS, start=ORIGIN, end=end, step=WINDOW)
        summary = model.summary(start=ORIGIN, end=end, step=WINDOW)
        feature = summary.loc[summary["column"] == DRIFTING_FEATURE, ["window_start", "mean"]]
        feature = feature.rename(columns={"mean": f"{DRIFTING_FEATURE}_mean"})
        result.windows = windows.merge(feature, on="window_start", how="left")
    finally:
        pulse.close()

    console.print(render(result, config))
    for part in render_alerts(result):
        console.print(part)
    for line in footer(result, config):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return result


def _stream(
    model: Any,
    traffic: Traffic,
    duration_us: int,
    rng: np.random.Generator,
    result: DemoResult,
    quiet: bool,
    pulse: Any = None,
) -> None:
    """Feed predictions chunk by chunk; after each, the feedback that arrived meanwhile,
    then one live evaluation of the alert rules at the chunk's end."""
    start_us = _origin_us()
    bounds = list(range(start_us, start_us + duration_us, CHUNK)) + [start_us + duration_us]
    cuts = np.searchsorted(traffic.ts_us, bounds)
    progress = Progress(
        TextColumn("[bold]streaming[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("predictions"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )
    with progress:
        task = progress.add_task("", total=len(traffic.predictions))
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            chunk = traffic.predictions.iloc[cuts[i] : cuts[i + 1]]
            if len(chunk):
                report = model.log_batch(chunk, id="request_id", timestamp="ts")
                result.predictions += int(report.received)
                result.stored += int(report.stored)
                result.quarantined += int(report.quarantined)
            labels = _arrivals(traffic.labels, lo, hi, rng)
            if len(labels):
                model.log_feedback_batch(labels, id="request_id", label="churned", timestamp="ts")
                result.labels += len(labels)
            fixes = _arrivals(traffic.corrections, lo, hi, rng)
            if len(fixes):  # the same ids again, with the other label: replaces, never adds
                model.log_feedback_batch(fixes, id="request_id", label="churned", timestamp="ts")
                result.corrections += len(fixes)
            if pulse is not None:
                pulse.evaluate(at=ORIGIN + timedelta(microseconds=hi - start_us))
            clock = (ORIGIN + timedelta(microseconds=hi - start_us)).strftime("%H:%M")
            progress.update(task, advance=len(chunk), description=f"t+{clock}")
    end_us = start_us + duration_us
    result.labels_pending = int((traffic.labels["arrival_us"].to_numpy() >= end_us).sum())


def _origin_us() -> int:
    return (ORIGIN - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# --------------------------------------------------------------------------- report


def _fmt(value: object, spec: str) -> str:
    if value is None:
        return "—"
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return "—"
    return format(number, spec)


def render(result: DemoResult, config: DemoConfig) -> Table:
    """The hourly report as a rich Table, one row per window."""
    drift_hhmm = result.drift_at.strftime("%H:%M")
    table = Table(
        title=(
            f"{MODEL_NAME} {MODEL_VERSION}: {config.duration} of simulated traffic at "
            f"{config.rate}/min (seed {config.seed}); {DRIFTING_FEATURE} drifts at {drift_hhmm} UTC"
        ),
        title_justify="left",
    )
    table.add_column("window (UTC)", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("labeled", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("F1", justify="right")
    table.add_column("ROC AUC", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column(f"mean {DRIFTING_FEATURE}", justify="right")

    column = f"{DRIFTING_FEATURE}_mean"
    for row in result.windows.itertuples(index=False):
        start = pd.Timestamp(row.window_start).tz_convert("UTC")
        accuracy = float(row.accuracy) if row.accuracy is not None else math.nan
        degraded = accuracy < result.reference_accuracy - 0.1
        table.add_row(
            start.strftime("%Y-%m-%d %H:%M"),
            f"{int(row.n):,}",
            _fmt(row.label_coverage, ".1%"),
            _fmt(row.accuracy, ".3f"),
            _fmt(row.f1, ".3f"),
            _fmt(row.roc_auc, ".3f"),
            _fmt(row.latency_p50, ".1f"),
            _fmt(row.latency_p95, ".1f"),
            _fmt(row.latency_p99, ".1f"),
            _fmt(getattr(row, column), ".1f"),
            style="red" if degraded else None,
        )

    return table


def _clock(value: Any) -> str:
    if value is None or pd.isna(value):
        return "—"
    return pd.Timestamp(value).tz_convert("UTC").strftime("%H:%M")


def render_alerts(result: DemoResult) -> list[Any]:
    """The alerts of the run (when each fired and resolved, what it said) and the timeline
    of each incident."""
    alerts = result.alerts
    if alerts is None or alerts.empty:
        return ["alerts: none fired"]
    table = Table(title="alerts (evaluated live after every 10-minute chunk)", title_justify="left")
    for name in ("rule", "state", "pending", "fired", "resolved", "value", "threshold", "incident"):
        table.add_column(name, no_wrap=name != "rule")
    for row in alerts.sort_values(["started_at", "rule"]).itertuples(index=False):
        table.add_row(
            row.rule, row.state, _clock(row.started_at), _clock(row.fired_at),
            _clock(row.resolved_at), _fmt(row.value, ".3f"), _fmt(row.threshold, ".3f"),
            "—" if pd.isna(row.incident) else str(int(row.incident)),
            style="red" if row.state == "firing" else None,
        )  # fmt: skip
    parts: list[Any] = [table]
    for incident in result.incidents or []:
        lines = [f"incident {incident.id} ({incident.status}): {incident.title}"]
        for event in incident.timeline.itertuples(index=False):
            lines.append(f"  {_clock(event.at)}  {event.kind:<10} {event.detail}")
        parts.append("\n".join(lines))
    return parts


def footer(result: DemoResult, config: DemoConfig) -> list[str]:
    """Totals and where the data lives, printed under the table."""
    where = (
        "in memory (discarded on exit)"
        if config.db == ":memory:"
        else f"in {os.path.abspath(config.db)}; open it with mlpulse.connect({config.db!r})"
    )
    return [
        f"reference: {REFERENCE_ROWS:,} rows, accuracy {result.reference_accuracy:.3f}, "
        f"mean {DRIFTING_FEATURE} {result.reference_mean:.1f}",
        f"predictions: {result.predictions:,} received, {result.stored:,} stored, "
        f"{result.quarantined:,} quarantined",
        f"labels: {result.labels:,} delivered 5-90 min late and out of order, "
        f"{result.corrections:,} corrected later, {result.labels_pending:,} still in flight "
        "at the end",
        f"data stored {where}",
    ] + dashboard_lines(config)


def dashboard_lines(config: DemoConfig) -> list[str]:
    """The command that serves the demo's database, and the dashboard URL showing its span."""
    if config.db == ":memory:":
        return []
    span = align_up(parse_duration(config.duration), HOUR)
    end = (ORIGIN + timedelta(microseconds=span)).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = f"http://127.0.0.1:8765/models/{MODEL_NAME}?end={end}&range={span // HOUR}h"
    return [f"dashboard: mlpulse serve --db {shlex.quote(os.path.abspath(config.db))}  # then open {url}"]
