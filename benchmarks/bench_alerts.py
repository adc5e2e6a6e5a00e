"""Alert evaluation: one round of ``pulse.evaluate(at=T)`` (embedded) over 100 binary
models with a day of data each.

Each model logs one prediction a minute over 24 h (1,440 rows, all labeled, with a
latency), has 3-5 features (numeric, and one categorical ``channel`` on the models with 5)
and a reference of 1,000 labeled rows; ``recommended_rules=False``. Five models (every
20th) get wrong labels over the last two hours, so some of their rules fire, as in a real
steady state. Rules are loaded per phase (``pulse.rules.load(..., replace=True)``):

* **metrics**: 1,000 rules, 10 per model (accuracy, f1, roc_auc, precision, recall,
  log_loss, brier, count, label_coverage, latency_p99), fixed thresholds, window 1h,
  ``for: 5m``. Target: a round < 2 s.
* **count**, **drift**, **quality**, **estimate**: 100 rules each, one per model
  (``count``, ``drift_share``, ``quality_violations``, ``estimate:roc_auc``), window 1h,
  ``for: 1m`` (a shorter replay, to keep the run under 10 minutes); the cost per rule is
  the round's median / 100. The ``count`` phase is the floor every kind pays: the
  evaluator reads a window's row count with ``metrics()`` before drift and quality.

In each phase the first round at a new rule set replays the evaluations that ``for``
reaches back to (12 per rule and model with ``for: 5m``, 4 with ``for: 1m``) and is
reported apart; then ``--rounds`` (metrics) or ``--kind-rounds`` (the other phases)
rounds at successive times 30 s apart (the live interval). Before each round the same values
are computed directly, as a baseline in the same run: ``model.metrics([...10 metrics], T - 15 s - 1h, T - 15 s)`` per
model (``count``: ``metrics(["count"])``; drift: ``model.drift``; quality:
``model.quality(...).to_pandas()``; estimate: ``model.estimate(["roc_auc"])``), 15 s
before the round's time so that neither reads windows the other just computed. Figures are
medians over the rounds, and the round / baseline ratio (median of the per-round ratios).
After the metrics phase, the round's values are checked against ``model.metrics`` at the
same time. Each round's time is also split by evaluator step (see :class:`Parts`).

    python benchmarks/bench_alerts.py                      # 100 models, 9 + 4 x 5 rounds, ~5 min
    python benchmarks/bench_alerts.py --quick              # 20 models, 5 rounds per phase
    python benchmarks/bench_alerts.py --phases metrics     # the 1,000 metric rules only, ~2.5 min
    python benchmarks/bench_alerts.py --profile /tmp/alerts.prof   # cProfile the metrics rounds
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import pstats
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from _common import emit, progress, target

import mlpulse
from mlpulse.alerts import evaluator
from mlpulse.store import alerts as alert_store

INTERVAL = timedelta(seconds=30)
ROWS_PER_DAY = 1440
REFERENCE_ROWS = 1000
CHANNELS = np.array(["web", "ios", "android"])
DEGRADED_EVERY = 20  # every 20th model gets wrong labels over the last two hours

# metric, op, threshold: a healthy model breaches none of them
METRIC_RULES = [
    ("accuracy", "<", 0.6),
    ("f1", "<", 0.5),
    ("roc_auc", "<", 0.65),
    ("precision", "<", 0.5),
    ("recall", "<", 0.5),
    ("log_loss", ">", 0.8),
    ("brier", ">", 0.3),
    ("count", "<", 30),
    ("label_coverage", "<", 0.5),
    ("latency_p99", ">", 80.0),
]
METRICS = [m for m, _, _ in METRIC_RULES]
KIND_RULES = {
    "count": ("count", "<", 30),
    "drift": ("drift_share", ">", 0.5),
    "quality": ("quality_violations", ">", 0),
    "estimate": ("estimate:roc_auc", "<", 0.6),
}


def model_name(i: int) -> str:
    return f"bench_alerts_{i:03d}"


def _frame(rng: np.random.Generator, n: int, n_features: int, weights: np.ndarray) -> pd.DataFrame:
    numeric = n_features - 1 if n_features == 5 else n_features
    x = rng.normal(size=(n, numeric))
    cols = {f"f{j}": x[:, j] for j in range(numeric)}
    logit = x @ weights[:numeric] + 0.3 * rng.normal(size=n)
    if n_features == 5:
        channel = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
        cols["channel"] = CHANNELS[channel]
        logit = logit + (channel == 1) * 0.5
    score = 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(cols)
    frame["score"] = score
    frame["label"] = (rng.random(n) < score).astype(np.int64)
    return frame


def build(pulse, n_models: int, seed: int, end: datetime) -> list:
    """Register ``n_models`` models and log a day of predictions and labels to each."""
    models = []
    t0 = time.perf_counter()
    start = end - timedelta(days=1)
    start_us = int(start.timestamp() * 1_000_000)
    for i in range(n_models):
        rng = np.random.default_rng([seed, i])
        n_features = 3 + i % 3
        weights = rng.uniform(0.8, 1.6, size=5) * rng.choice([-1, 1], size=5)
        reference = _frame(rng, REFERENCE_ROWS, n_features, weights)
        model = pulse.model(
            model_name(i), version="v1", task="binary", reference=reference,
            prediction="score", label="label", recommended_rules=False,
        )  # fmt: skip
        rows = _frame(rng, ROWS_PER_DAY, n_features, weights)
        labels = rows.pop("label").to_numpy()
        # one prediction a minute, at a random second of it
        minute = np.arange(ROWS_PER_DAY, dtype=np.int64) * 60_000_000
        ts = start_us + minute + rng.integers(0, 60_000_000, ROWS_PER_DAY)
        rows.insert(0, "id", [f"m{i}-{k}" for k in range(ROWS_PER_DAY)])
        rows["timestamp"] = pd.to_datetime(ts, unit="us", utc=True)
        rows["latency_ms"] = rng.lognormal(mean=2.0, sigma=0.4, size=ROWS_PER_DAY)
        if i % DEGRADED_EVERY == 0:  # wrong labels over the last two hours
            late = ts >= start_us + 22 * 3600 * 1_000_000
            labels = np.where(late, 1 - labels, labels)
        report = model.log_batch(rows, id="id", timestamp="timestamp")
        if report.stored != ROWS_PER_DAY:
            raise SystemExit(f"model {model_name(i)}: unexpected ingest report {report}")
        feedback = pd.DataFrame({"id": rows["id"], "label": labels})
        report = model.log_feedback_batch(feedback, id="id", label="label")
        if report.stored != ROWS_PER_DAY:
            raise SystemExit(f"model {model_name(i)}: unexpected feedback report {report}")
        models.append(model)
        if (i + 1) % 10 == 0:
            progress(f"  {i + 1}/{n_models} models built ({time.perf_counter() - t0:.0f} s)")
    return models


def rule(i: int, metric: str, op: str, threshold: float, for_: str = "5m") -> dict:
    return {
        "name": f"{model_name(i)}-{metric.replace(':', '-')}", "model": model_name(i),
        "metric": metric, "window": "1h", "op": op, "threshold": threshold, "for": for_,
    }  # fmt: skip


class Parts:
    """Time spent per round in the evaluator's steps, by wrapping its module-level functions
    (a step the code no longer has is skipped): ``rules`` (load and parse the stored rules),
    ``pairs`` (rule x model pairs, with the models' versions), ``values`` (the metrics,
    drift, quality and estimate queries), ``judge`` (thresholds and state machine, without
    ``values``), ``store`` (the write transaction), ``frame`` (the result frame)."""

    STEPS = {
        "rules": [(evaluator, "rule_from_dict"), (alert_store, "load_rule_dicts")],
        "pairs": [(evaluator, "_pairs")],
        "values": [(evaluator, "group_values")],
        "judge": [(evaluator, "_judge")],
        "store": [(evaluator, "_store")],
        "frame": [(evaluator, "_frame")],
    }

    def __init__(self) -> None:
        self.spent: dict[str, float] = dict.fromkeys(self.STEPS, 0.0)
        self.saved: list[tuple[object, str, object]] = []
        for step, targets in self.STEPS.items():
            for module, name in targets:
                original = getattr(module, name, None)
                if original is not None:
                    self.saved.append((module, name, original))
                    setattr(module, name, self._timed(step, original))

    def _timed(self, step: str, fn):
        spent = self.spent

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[step] += time.perf_counter() - t0

        return timed

    def take(self) -> dict[str, float]:
        out = dict(self.spent)
        out["judge"] -= out["values"]
        for step in self.spent:
            self.spent[step] = 0.0
        return out

    def close(self) -> None:
        for module, name, original in self.saved:
            setattr(module, name, original)


def direct(models: list, phase: str, at: datetime) -> None:
    """The baseline: the same values computed by direct calls, one per model."""
    start, end = at - timedelta(hours=1), at
    for model in models:
        if phase == "metrics":
            model.metrics(METRICS, start, end)
        elif phase == "count":
            model.metrics(["count"], start, end)
        elif phase == "drift":
            model.drift(start, end)
        elif phase == "quality":
            model.quality(start, end).to_pandas()
        elif phase == "estimate":
            model.estimate(["roc_auc"], start, end)


def run_phase(pulse, models: list, phase: str, times: list[datetime], rounds: int,
              profiler: cProfile.Profile | None = None) -> tuple[dict, pd.DataFrame]:  # fmt: skip
    n = len(models)
    if phase == "metrics":
        rules = [rule(i, *spec) for i in range(n) for spec in METRIC_RULES]
    else:
        rules = [rule(i, *KIND_RULES[phase], for_="1m") for i in range(n)]
    pulse.rules.load(rules, replace=True)
    gc.collect()
    t0 = time.perf_counter()
    frame = pulse.evaluate(at=times[0])
    first_s = time.perf_counter() - t0
    check(frame, phase, len(rules))
    round_s, direct_s, parts = [], [], []
    timer = Parts()
    timer.take()
    for k in range(1, rounds + 1):
        t0 = time.perf_counter()
        direct(models, phase, times[k] - timedelta(seconds=15))
        direct_s.append(time.perf_counter() - t0)
        if profiler is not None:
            profiler.enable()
        t0 = time.perf_counter()
        frame = pulse.evaluate(at=times[k])
        round_s.append(time.perf_counter() - t0)
        parts.append(timer.take())
        if profiler is not None:
            profiler.disable()
        check(frame, phase, len(rules))
    timer.close()
    ratios = [r / d for r, d in zip(round_s, direct_s, strict=True)]
    result = {
        "rules": len(rules),
        "first_round_s": first_s,
        "round_s": statistics.median(round_s),
        "round_runs_s": round_s,
        "direct_s": statistics.median(direct_s),
        "direct_runs_s": direct_s,
        "ratio": statistics.median(ratios),
        "per_rule_ms": statistics.median(round_s) / len(rules) * 1000,
        "states": {str(k): int(v) for k, v in frame["state"].value_counts().items()},
        "parts_ms": {
            step: statistics.median(p[step] for p in parts) * 1000 for step in Parts.STEPS
        },
    }
    progress(
        f"{phase}: {len(rules)} rules, first round {first_s:.2f} s, round median "
        f"{result['round_s']:.3f} s ({', '.join(f'{s:.3f}' for s in round_s)}), direct "
        f"{result['direct_s']:.3f} s, ratio {result['ratio']:.2f}x, "
        f"{result['per_rule_ms']:.2f} ms/rule, states {result['states']}; per round (ms): "
        + ", ".join(f"{k} {v:.0f}" for k, v in result["parts_ms"].items())
    )
    return result, frame


def check(frame: pd.DataFrame, phase: str, expected: int) -> None:
    if len(frame) != expected:
        raise SystemExit(f"{phase}: {len(frame)} evaluation rows, expected {expected}")
    notes = frame[frame["note"].notna()]
    if len(notes):
        raise SystemExit(f"{phase}: rules not judged:\n{notes[['rule', 'note']].head(10)}")
    if frame["value"].isna().any():
        raise SystemExit(f"{phase}: NaN values:\n{frame[frame['value'].isna()].head(10)}")


def verify(models: list, frame: pd.DataFrame, at: datetime) -> float:
    """Largest difference between the round's values and ``model.metrics`` at ``at``."""
    worst = 0.0
    by_model = frame.set_index(["model", "metric"])["value"]
    for model in models:
        direct_frame = model.metrics(METRICS, at - timedelta(hours=1), at)
        for m in METRICS:
            a, b = float(by_model[(model.name, m)]), float(direct_frame[m].iloc[0])
            if math.isnan(a) and math.isnan(b):
                continue
            if not math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12):
                worst = max(worst, abs(a - b)) if not math.isnan(a - b) else math.inf
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", type=int, default=None, help="default 100; --quick 20")
    ap.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="timed rounds, metrics phase (default 9; --quick 5)",
    )
    ap.add_argument(
        "--kind-rounds", type=int, default=5, help="timed rounds, other phases (default 5)"
    )
    ap.add_argument("--phases", nargs="+", default=["metrics", "count", "drift", "quality", "estimate"],
                    choices=["metrics", "count", "drift", "quality", "estimate"])  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="20 models, 5 rounds")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--profile", type=Path, default=None,
                    help="cProfile the metrics phase's timed rounds into this file (and print a summary)")  # fmt: skip
    ap.add_argument("--no-save", action="store_true", help="do not append to results/")
    args = ap.parse_args()
    n_models = args.models or (20 if args.quick else 100)
    rounds = args.rounds or (5 if args.quick else 9)

    with tempfile.TemporaryDirectory(prefix="mlpulse-bench-", dir="/tmp") as tmp:
        pulse = mlpulse.connect(str(Path(tmp) / "pulse.duckdb"))
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        t0 = time.perf_counter()
        models = build(pulse, n_models, args.seed, end)
        build_s = time.perf_counter() - t0
        progress(f"built {n_models} models x {ROWS_PER_DAY} rows in {build_s:.0f} s")
        # live times, 30 s apart and never on a minute boundary, moving forward through the
        # phases and ending before the data does
        per_phase = [(rounds if phase == "metrics" else args.kind_rounds) for phase in args.phases]
        count = sum(per_phase) + len(per_phase)
        first = end - INTERVAL * (count + 2) + timedelta(seconds=10)
        times = [first + INTERVAL * k for k in range(count)]
        results: dict[str, dict] = {}
        worst = math.nan
        for phase, phase_rounds in zip(args.phases, per_phase, strict=True):
            profiler = cProfile.Profile() if args.profile and phase == "metrics" else None
            phase_times, times = times[: phase_rounds + 1], times[phase_rounds + 1 :]
            results[phase], frame = run_phase(
                pulse, models, phase, phase_times, phase_rounds, profiler
            )
            if phase == "metrics":
                worst = verify(models, frame, phase_times[-1])
                progress(
                    f"metrics: largest difference to model.metrics at the same time: {worst:g}"
                )
            if profiler is not None:
                profiler.dump_stats(str(args.profile))
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(25)
                print(out.getvalue(), flush=True)
        pulse.close()

    metrics: dict[str, object] = {
        "models": n_models,
        "rounds": rounds,
        "kind_rounds": args.kind_rounds,
        "build_s": build_s,
    }
    for phase, r in results.items():
        for key in ("rules", "first_round_s", "round_s", "direct_s", "ratio", "per_rule_ms",
                    "round_runs_s", "direct_runs_s", "states", "parts_ms"):  # fmt: skip
            metrics[f"{phase}_{key}"] = r[key]
    if "count" in results:
        floor = results["count"]["round_s"]
        for phase in ("drift", "quality", "estimate"):
            if phase in results:
                metrics[f"{phase}_over_count_per_rule_ms"] = (
                    (results[phase]["round_s"] - floor) / results[phase]["rules"] * 1000
                )
    metrics["metrics_max_abs_diff_vs_direct"] = worst
    targets = []
    if "metrics" in results:
        targets.append(
            target(
                f"round of {results['metrics']['rules']:,} metric rules",
                results["metrics"]["round_s"],
                "<",
                2.0,
                " s",
            )
        )
        targets.append(target("round values == model.metrics (max abs diff)", worst, "<=", 1e-9))
    emit(
        "alerts", args.quick, metrics, targets,
        {"models": n_models, "rounds": rounds, "kind_rounds": args.kind_rounds, "phases": args.phases, "seed": args.seed,
         "profile": str(args.profile) if args.profile else None},
        save=not args.no_save,
    )  # fmt: skip


if __name__ == "__main__":
    main()
