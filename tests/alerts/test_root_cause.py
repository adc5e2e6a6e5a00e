"""Root cause of incidents: planted causes on real data rank first, an incident without a
cause lists nothing, and incidents without data or without a reference still answer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlpulse
from mlpulse.alerts.rootcause import COLUMNS, _h, candidates, significant

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _planted import build, run  # noqa: E402

T0 = pd.Timestamp("2026-03-02T00:00:00Z")
ROWS = 150  # per hour: a third of the benchmark's, to keep the tests quick


@pytest.fixture
def pulse():
    p = mlpulse.connect(":memory:")
    yield p
    p.close()


class TestPlantedCauses:
    """A cause planted in real data (scikit-learn's bundled sets) ranks first."""

    @pytest.mark.parametrize(
        "cause,dataset,seed",
        [
            ("feature", "breast_cancer", 0),
            ("segment", "wine", 6),
            ("version", "breast_cancer", 2),
            ("latency", "diabetes", 18),
            ("volume", "wine", 9),
        ],
    )
    def test_planted_cause_ranks_first(self, pulse, cause, dataset, seed) -> None:
        scenario = build(pulse, cause, dataset, seed, rows_per_hour=ROWS, quality=cause == "feature")
        run(pulse, scenario, start="6h")
        assert scenario.incident is not None, "the planted cause opened no incident"
        frame = scenario.root_cause
        assert list(frame.columns) == COLUMNS
        assert scenario.rank == 1, frame.to_string()
        assert frame["rank"].tolist() == list(range(1, len(frame) + 1))
        assert frame["score"].is_monotonic_decreasing and (frame["score"] > 0).all()
        assert all(isinstance(d, str) and "\n" not in d for d in frame["detail"])
        # every listed candidate passed the gate, and some did not
        found = candidates(pulse.service, scenario.incident)
        kept = {(c.kind, c.subject) for c in significant(found)}
        assert set(zip(frame["kind"], frame["subject"], strict=True)) <= kept and len(found) > len(frame)

    def test_nothing_planted_lists_nothing(self, pulse) -> None:
        """An incident opened on healthy traffic (a rule that always fires) has no cause."""
        scenario = run(pulse, build(pulse, "none", "breast_cancer", 3, rows_per_hour=ROWS, quality=False), start="6h")
        assert scenario.incident is not None
        assert scenario.root_cause.empty, scenario.root_cause.to_string()


def _model(pulse, reference: pd.DataFrame | None = None):
    return pulse.model("m", task="binary", prediction="score", label="y", reference=reference,
                       recommended_rules=False)  # fmt: skip


def _rows(rng, n: int, start: pd.Timestamp, hours: float, shift: float = 0.0) -> pd.DataFrame:
    ts = start + pd.to_timedelta(np.sort(rng.uniform(0, hours * 3600, n)), unit="s")
    x = rng.normal(0, 1, n) + shift
    score = 1 / (1 + np.exp(-3 * (x - shift)))
    return pd.DataFrame({"id": [f"{start.value}-{i}" for i in range(n)], "ts": ts, "x": x,
                         "z": rng.normal(0, 1, n), "score": score,
                         "y": (rng.random(n) < score).astype(int)})  # fmt: skip


def _evaluate(pulse, times) -> int:
    pulse.service.alert_settings = pulse.service.alert_settings.__class__(interval=600)
    for at in times:
        pulse.evaluate(at=at)
    incidents = pulse.incidents()
    assert len(incidents) == 1
    return int(incidents["id"].iloc[0])


class TestEdgeCases:
    """Incidents without data, models without a reference, unknown incidents."""

    def test_traffic_stopped(self, pulse) -> None:
        """No row in the incident's window: only the volume drop is listed."""
        rng = np.random.default_rng(1)
        model = _model(pulse)
        rows = _rows(rng, 900, T0, 3)
        model.log_batch(rows.drop(columns="y"), id="id", timestamp="ts")
        pulse.rules.load([{"name": "quiet", "model": "m", "metric": "count", "op": "<", "threshold": 10,
                           "window": "30m", "min_rows": 0}])  # fmt: skip
        incident = _evaluate(pulse, pd.date_range(T0 + pd.Timedelta("3h"), T0 + pd.Timedelta("4h"), freq="10min"))
        frame = pulse.incident(incident).root_cause
        assert frame["kind"].tolist() == ["volume"], frame.to_string()
        assert frame["detail"].item().startswith("0 predictions/hour")

    def test_without_reference_compares_with_the_window_before(self, pulse) -> None:
        rng = np.random.default_rng(2)
        model = _model(pulse)
        before, after = _rows(rng, 900, T0, 3), _rows(rng, 300, T0 + pd.Timedelta("3h"), 1, shift=2.0)
        after["y"] = 1 - after["y"]  # and the model is wrong on them
        rows = pd.concat([before, after], ignore_index=True)
        model.log_batch(rows.drop(columns="y"), id="id", timestamp="ts")
        model.log_feedback_batch(rows[["id", "y"]], id="id", label="y")
        pulse.rules.load([{"name": "acc", "model": "m", "metric": "accuracy", "op": "<", "threshold": 0.6,
                           "window": "30m", "min_rows": 20}])  # fmt: skip
        incident = _evaluate(pulse, pd.date_range(T0 + pd.Timedelta("2h"), T0 + pd.Timedelta("4h"), freq="10min"))
        frame = pulse.incident(incident).root_cause
        top = frame.iloc[0]
        assert (top["kind"], top["subject"]) == ("feature_drift", "x"), frame.to_string()
        assert "vs the 1h before" in top["detail"] and "z" not in set(frame["subject"])

    def test_first_rows_and_no_reference(self, pulse) -> None:
        """Nothing before the incident and no reference: nothing to compare with, no error."""
        rng = np.random.default_rng(3)
        model = _model(pulse)
        rows = _rows(rng, 300, T0, 1)
        rows["y"] = 1 - rows["y"]
        model.log_batch(rows.drop(columns="y"), id="id", timestamp="ts")
        model.log_feedback_batch(rows[["id", "y"]], id="id", label="y")
        pulse.rules.load([{"name": "acc", "model": "m", "metric": "accuracy", "op": "<", "threshold": 0.6,
                           "window": "30m", "min_rows": 20}])  # fmt: skip
        incident = _evaluate(pulse, pd.date_range(T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("1h"), freq="10min"))
        frame = pulse.incident(incident).root_cause
        assert list(frame.columns) == COLUMNS and frame.empty
        assert frame.dtypes["rank"] == np.int64 and frame.dtypes["score"] == np.float64

    def test_unknown_incident(self, pulse) -> None:
        with pytest.raises(mlpulse.errors.RuleError, match="unknown incident 42"):
            pulse.service.root_cause(42)
        with pytest.raises(mlpulse.errors.RuleError, match="ids are integers"):
            pulse.service.root_cause("x")


class TestScale:
    """Scores share one scale: Cohen's h for proportions (SciPy-free closed form checked)."""

    def test_cohens_h(self) -> None:
        assert _h(0.5, 0.5) == 0
        assert _h(1.0, 0.0) == pytest.approx(np.pi)
        assert _h(0.2, 0.1) == pytest.approx(2 * np.arcsin(np.sqrt(0.2)) - 2 * np.arcsin(np.sqrt(0.1)))


class TestHttp:
    """GET /api/v1/incidents/{id}/root_cause: the table, or a clear 4xx."""

    def test_unknown_and_malformed_ids(self) -> None:
        from starlette.testclient import TestClient

        from mlpulse.server import ServerConfig, create_app
        from mlpulse.service import Service

        service = Service.open(":memory:")
        try:
            with TestClient(create_app(ServerConfig(db=":memory:"), service)) as api:
                missing = api.get("/api/v1/incidents/7/root_cause")
                assert missing.status_code == 404 and missing.json()["code"] == "unknown_incident"
                assert api.get("/api/v1/incidents/seven/root_cause").status_code == 422
                assert api.get(f"/api/v1/incidents/{2**70}/root_cause").status_code == 422
        finally:
            service.close()
