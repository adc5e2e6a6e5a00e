"""Planted-cause incidents on scikit-learn's bundled datasets, for root-cause evaluation.

A model is trained on half of a dataset (breast_cancer and wine: classification, digits:
10 classes, diabetes: regression) and serves the other half, resampled, for nine hours
with a ``channel`` segment and a latency. At a random time after six hours one cause is
planted:

* ``feature``: an influential feature is corrupted (shifted, rescaled, stuck or missing)
  before the model sees it;
* ``segment``: one channel's predictions go bad (the model is wrong there);
* ``version``: a worse version ``v2`` takes all (or half) of the traffic;
* ``latency``: every request gets 2-4x slower;
* ``volume``: 70-90% of the traffic disappears.

The alert rules an on-call team would have (performance, data quality, latency p95, traffic)
are evaluated every 10 minutes with ``pulse.evaluate(at=...)`` until an incident opens; then
``pulse.incident(id).root_cause`` is ranked and the planted cause looked up in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

CAUSES = ("feature", "segment", "version", "latency", "volume")  # and "none": nothing planted
DATASETS = ("breast_cancer", "wine", "digits", "diabetes")
T0 = pd.Timestamp("2026-03-02T00:00:00Z")
HOURS = 9
ROWS_PER_HOUR = 360
CHANNELS = np.array(["web", "app", "api"])


@dataclass
class Scenario:
    cause: str
    dataset: str
    seed: int
    planted_at: pd.Timestamp = T0
    truth: dict[str, Any] = field(default_factory=dict)  # kinds and subject of the answer
    incident: int | None = None
    root_cause: pd.DataFrame | None = None
    name: str = ""
    batches: list[tuple[str, pd.DataFrame, pd.DataFrame]] = field(default_factory=list)

    @property
    def rank(self) -> int | None:
        """Rank of the planted cause in the root cause table (None: not listed)."""
        if self.root_cause is None:
            return None
        for row in self.root_cause.itertuples(index=False):
            if row.kind in self.truth["kinds"] and row.subject == self.truth["subject"]:
                return int(row.rank)
        return None


def _load(name: str) -> tuple[pd.DataFrame, np.ndarray, str]:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    bunch = loader()
    x = pd.DataFrame(bunch.data, columns=[str(c).replace(" ", "_") for c in bunch.feature_names])
    if name == "digits":
        x.columns = [f"pixel_{i}" for i in range(x.shape[1])]
    task = "regression" if name == "diabetes" else ("binary" if name == "breast_cancer" else "multiclass")
    return x, np.asarray(bunch.target), task


class Served:
    """A fitted model and the function that turns feature rows into its predictions."""

    def __init__(self, task: str, x: pd.DataFrame, y: np.ndarray, seed: int) -> None:
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.task = task
        self.mean = x.mean()
        estimator = Ridge(alpha=1.0) if task == "regression" else LogisticRegression(max_iter=2000, C=1.0)
        self.model = make_pipeline(StandardScaler(), estimator).fit(x, y)
        coef = np.abs(np.atleast_2d(self.model[-1].coef_)).max(axis=0)
        self.influence = pd.Series(coef, index=x.columns).sort_values(ascending=False)

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        x = x.fillna(0.0)  # a broken upstream: missing values reach the model as zeros
        if self.task == "binary":
            return self.model.predict_proba(x)[:, 1]
        if self.task == "multiclass":
            return self.model.predict(x).astype(str)
        return self.model.predict(x)


def build(
    pulse: Any, cause: str, dataset: str, seed: int, rows_per_hour: int = ROWS_PER_HOUR, quality: bool = True
) -> Scenario:
    """Log the scenario's first six hours or so and load its rules (nothing evaluated yet;
    the rest is logged when the evaluation reaches the planted time). ``quality=False``
    leaves out the data-quality rule (the slowest to evaluate)."""
    rng = np.random.default_rng(seed)
    x, y, task = _load(dataset)
    order = rng.permutation(len(x))
    train, serve = order[: len(x) // 2], order[len(x) // 2 :]
    served = Served(task, x.iloc[train], y[train], seed)
    scenario = Scenario(cause, dataset, seed)
    name = f"{dataset}-{cause}-{seed}"

    n = HOURS * rows_per_hour
    ts = T0 + pd.to_timedelta(np.sort(rng.uniform(0, HOURS * 3600, n)), unit="s")
    pick = rng.choice(serve, n)
    feats = x.iloc[pick].reset_index(drop=True)
    label = y[pick]
    channel = CHANNELS[rng.choice(3, n, p=[0.5, 0.3, 0.2])]
    latency = rng.lognormal(np.log(20.0), 0.35, n)
    planted = T0 + pd.Timedelta(hours=6) + pd.Timedelta(minutes=float(rng.uniform(0, 60)))
    scenario.planted_at = planted
    after = np.asarray(ts >= planted)
    keep = np.ones(n, bool)
    version = np.array(["v1"] * n, dtype=object)

    model_in = feats.copy()
    if cause == "feature":
        top = list(served.influence.index[:3])
        column = str(rng.choice(top))
        how = rng.choice(["shift", "scale", "stuck", "missing"])
        sd = float(x[column].std())
        values = model_in[column].to_numpy(float).copy()
        if how == "shift":
            values[after] += rng.choice([-1, 1]) * rng.uniform(3, 5) * sd
        elif how == "scale":
            values[after] *= rng.uniform(5, 10)
            values[after] += sd * 3 * (values[after] == 0)
        elif how == "stuck":
            values[after] = float(x[column].max()) + 3 * sd
        else:
            values[after & (rng.random(n) < 0.7)] = np.nan
        model_in[column] = values
        feats[column] = values
        scenario.truth = {"kinds": ("feature_drift", "quality"), "subject": column, "how": str(how)}
    prediction = served.predict(model_in)
    if cause == "segment":
        bad = str(rng.choice(CHANNELS))
        hit = after & (channel == bad)
        prediction = _wrong(task, prediction, hit, rng, served, y)
        scenario.truth = {"kinds": ("segment",), "subject": f"channel={bad}"}
    elif cause == "version":
        share = float(rng.choice([1.0, 0.5]))
        moved = after & (rng.random(n) < share)
        version[moved] = "v2"
        prediction = _wrong(task, prediction, moved & (rng.random(n) < 0.6), rng, served, y)
        scenario.truth = {"kinds": ("version_change",), "subject": "v2", "share": share}
    elif cause == "latency":
        latency[after] *= rng.uniform(2, 4)
        scenario.truth = {"kinds": ("latency",), "subject": "latency_ms"}
    elif cause == "volume":
        keep = ~after | (rng.random(n) > rng.uniform(0.7, 0.9))
        scenario.truth = {"kinds": ("volume",), "subject": "predictions"}
    elif cause == "none":  # nothing planted: a rule that always fires opens the incident
        scenario.truth = {"kinds": (), "subject": None}

    reference = x.iloc[train].reset_index(drop=True).copy()
    reference["channel"] = CHANNELS[rng.choice(3, len(reference), p=[0.5, 0.3, 0.2])]
    reference["prediction"] = served.predict(x.iloc[train])
    reference["target"] = y[train].astype(str) if task == "multiclass" else y[train]
    pulse.model(name, version="v1", task=task, prediction="prediction", label="target",
                reference=reference, segments=["channel"], recommended_rules=False)  # fmt: skip
    rows = feats.assign(channel=channel, prediction=prediction, latency_ms=latency,
                        id=[f"r{i}" for i in range(n)], ts=ts)  # fmt: skip
    labels = pd.DataFrame({"id": rows["id"], "target": label.astype(str) if task == "multiclass" else label})
    # rows before the planted time are logged now, the others when the evaluation reaches it
    # (a new version is registered when it is deployed, not before)
    for later in (False, True):
        for v in ("v1", "v2"):
            part = keep & (version == v) & (after == later)
            if part.any():
                scenario.batches.append((v, rows[part].reset_index(drop=True), labels[part].reset_index(drop=True)))
    scenario.name = name
    _log(pulse, scenario, later=False)
    rules = _rules(name, task, rows[~after], label[~after], latency[~after])
    if not quality:
        rules = [r for r in rules if r["metric"] != "quality_violations"]
    if cause == "none":
        rules.append({"name": f"{name}:heartbeat", "model": name, "metric": "count", "op": ">",
                      "threshold": 0, "window": "1h", "for": "10m", "min_rows": 0})  # fmt: skip
    pulse.rules.load(rules)
    return scenario


def _log(pulse: Any, scenario: Scenario, later: bool) -> None:
    for version, rows, labels in scenario.batches:
        if (rows["ts"].iloc[0] >= scenario.planted_at) != later:
            continue
        model = pulse.model(scenario.name, version=version)
        model.log_batch(rows, id="id", timestamp="ts")
        model.log_feedback_batch(labels, id="id", label="target")


def _wrong(task: str, prediction: np.ndarray, hit: np.ndarray, rng: Any, served: Served, y: np.ndarray):
    """Predictions made wrong on the rows ``hit``."""
    out = prediction.copy()
    if task == "binary":
        out[hit] = 1.0 - out[hit]
    elif task == "multiclass":
        classes = np.unique(y).astype(str)
        out[hit] = rng.choice(classes, int(hit.sum()))
    else:
        out[hit] = out[hit] + rng.choice([-1, 1], int(hit.sum())) * 2 * float(np.std(y))
    return out


def _rules(name: str, task: str, before: pd.DataFrame, label: np.ndarray, latency: np.ndarray) -> list[dict]:
    """The team's rules, thresholds set from the healthy hours."""
    pred = before["prediction"].to_numpy()
    if task == "regression":
        perf = {"metric": "mae", "op": ">", "threshold": float(np.mean(np.abs(pred - label))) * 1.4}
    else:
        correct = (pred >= 0.5) == (label == 1) if task == "binary" else pred == label.astype(str)
        perf = {"metric": "accuracy", "op": "<", "threshold": float(np.mean(correct)) - 0.1}
    hourly = len(before) / 6
    common = {"model": name, "window": "1h", "for": "10m"}
    return [
        {"name": f"{name}:perf", **common, **perf, "min_rows": 50},
        {"name": f"{name}:latency", **common, "metric": "latency_p95", "op": ">",
         "threshold": float(np.percentile(latency, 95)) * 1.5, "min_rows": 50},
        {"name": f"{name}:traffic", **common, "metric": "count", "op": "<", "threshold": hourly * 0.5,
         "min_rows": 0},
        {"name": f"{name}:quality", **common, "metric": "quality_violations", "op": ">", "threshold": 0},
    ]  # fmt: skip


def run(pulse: Any, scenario: Scenario, step: str = "10min", start: str = "5h") -> Scenario:
    """Evaluate the rules every ``step`` (the evaluator's interval) from ``start`` until the
    first incident open after the planted time (or the end); rank its root cause."""
    from dataclasses import replace

    service = pulse.service
    service.alert_settings = replace(service.alert_settings, interval=pd.Timedelta(step).total_seconds())
    times = pd.date_range(T0 + pd.Timedelta(start), T0 + pd.Timedelta(hours=HOURS), freq=step)
    name = scenario.name
    logged = False
    for at in times:
        if at >= scenario.planted_at and not logged:
            _log(pulse, scenario, later=True)
            logged = True
        pulse.evaluate(at=at)
        incidents = pulse.incidents()
        mine = incidents[incidents["models"].map(lambda m: name in m)]
        if not mine.empty and at >= scenario.planted_at:
            scenario.incident = int(mine["id"].iloc[0])
            break
    if scenario.incident is not None:
        scenario.root_cause = pulse.incident(scenario.incident).root_cause
    return scenario


__all__ = ["CAUSES", "DATASETS", "Scenario", "build", "run"]
