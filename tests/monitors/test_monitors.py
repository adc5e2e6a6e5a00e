"""The seven ML Test Score monitors, each made to pass and to fail."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import mlpulse
from mlpulse.monitors import MONITORS, environment_diff

BASE = pd.Timestamp("2026-01-05T00:00:00Z")
START, END = "2026-01-05", "2026-01-06"


@pytest.fixture()
def setup():
    """Breast-cancer classifier: v1 well behaved; v2 slower, with broken scores and worse
    quality, in a changed environment."""
    data = load_breast_cancer(as_frame=True)
    x, y = data.data.iloc[:, :5], data.target.to_numpy()
    x.columns = [c.replace(" ", "_") for c in x.columns]
    clf = LogisticRegression(max_iter=5000).fit(x.iloc[:200], y[:200])
    score = clf.predict_proba(x)[:, 1]
    ref = x.iloc[200:380].assign(score=score[200:380], label=y[200:380])
    cur = x.iloc[380:].reset_index(drop=True).assign(score=score[380:], label=y[380:])
    cur["id"] = [f"c{i}" for i in range(len(cur))]
    cur["timestamp"] = BASE + pd.to_timedelta(np.arange(len(cur)) * 60, unit="s")
    cur["latency_ms"] = 5.0
    pulse = mlpulse.connect(":memory:")
    v1 = pulse.model(
        "bc", version="v1", task="binary", reference=ref, prediction="score", label="label"
    )
    v1.log_batch(cur.drop(columns="label"), id="id", timestamp="timestamp")
    v1.log_feedback_batch(cur[["id", "label"]], id="id", label="label")
    yield pulse, v1, cur
    pulse.close()


def make_v2(pulse, cur):
    v2 = pulse.model("bc", version="v2")
    bad = cur.copy()
    bad["id"] = "v2_" + bad["id"]
    bad["latency_ms"] = 9.0
    bad["score"] = 1.0 - bad["score"]  # inverted: quality collapses
    bad.loc[:3, "score"] = np.nan
    bad.loc[4:40, "mean_radius"] = np.inf  # a fifth of the rows: more than chance explains
    v2.log_batch(bad.drop(columns="label"), id="id", timestamp="timestamp")
    v2.log_feedback_batch(bad[["id", "label"]], id="id", label="label")
    # a changed environment for v2
    store = pulse.store
    env = {"python": "3.11.0", "packages": {"numpy": "0.0.1", "newpkg": "1.0"}}
    with store.write() as conn:
        conn.execute("UPDATE versions SET environment = ? WHERE version = 'v2'", [json.dumps(env)])
    return v2


class TestHealthy:
    """A healthy version passes (or skips what it lacks inputs for)."""

    def test_v1(self, setup) -> None:
        pulse, v1, cur = setup
        v1.set_training_info(trained_at="2026-01-01", max_age="30d")
        v1.log_training_features(cur.drop(columns=["score", "label"]), id="id")
        report = v1.checks(START, END, now="2026-01-05T12:00:00Z")
        frame = report.to_pandas()
        assert list(frame.monitor) == list(MONITORS)
        status = dict(zip(frame.monitor, frame.status, strict=True))
        assert status["dependencies"] == "skipped" and status["computational"] == "skipped"
        for name in (
            "training_serving_skew",
            "staleness",
            "numerical_stability",
            "prediction_quality",
        ):
            assert status[name] == "pass", frame.to_string()


class TestFailures:
    """Each monitor fails on the problem it exists for."""

    def test_v2(self, setup) -> None:
        pulse, v1, cur = setup
        v2 = make_v2(pulse, cur)
        v1.log_resource_usage(100.0, timestamp="2026-01-05T01:00:00Z")
        v2.log_resource_usage(180.0, timestamp="2026-01-05T01:00:00Z")
        v2.set_training_info(trained_at="2025-10-01", max_age="30d")
        train = cur.drop(columns=["score", "label"]).copy()
        train["id"] = "v2_" + train["id"]
        train.loc[:9, "mean_texture"] += 1.0  # ten rows differ from what serving saw
        train.loc[4:40, "mean_radius"] = np.inf  # as served: no skew there
        v2.log_training_features(train, id="id")
        report = v2.checks(START, END, against="v1", now="2026-01-05T12:00:00Z")
        frame = report.to_pandas().set_index("monitor")
        for name in MONITORS:
            assert frame.loc[name, "status"] == "fail", (name, frame.loc[name, "detail"])
        assert "numpy" in frame.loc["dependencies", "detail"]
        # rows 0-3 were quarantined (NaN score): 6 of the ten mismatches were served
        assert frame.loc["training_serving_skew", "value"] == pytest.approx(6 / (len(cur) - 4))
        assert "latency_p95" in frame.loc["computational", "detail"]
        assert "memory_mb" in frame.loc["computational", "detail"]
        assert not report.ok

    def test_environment_diff(self) -> None:
        old = {"python": "3.11.1", "packages": {"a": "1", "b": "2"}}
        new = {"python": "3.11.2", "packages": {"a": "1", "b": "3", "c": "1"}}
        assert environment_diff(old, new) == {
            "python": ["3.11.1", "3.11.2"],
            "changed": {"b": ["2", "3"]},
            "added": {"c": "1"},
        }
