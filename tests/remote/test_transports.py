"""One suite, two transports: every test runs against the embedded store and a real server."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlpulse.errors import (
    ConfigError,
    ModelConflictError,
    SchemaError,
    UnknownMetricError,
    UnknownModelError,
)

BINARY = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier",
          "positive_rate", "count", "label_coverage", "prediction_mean"]
WINDOW = {"start": "2026-01-05", "end": "2026-01-08"}


class TestRegistry:
    """pulse.model registers once, returns the same model and refuses contradictions."""

    def test_register_and_return(self, transport, model_name):
        """The second call returns the same handle with the stored settings."""
        a = transport.model(model_name, version="v1", task="binary", prediction="score",
                            label="churned", threshold=0.3, segments=["plan"])
        b = transport.model(model_name, version="v1")
        assert a is b
        spec = b.spec
        assert (spec.task, spec.prediction, spec.label, spec.threshold, spec.segments) == (
            "binary", "score", "churned", 0.3, ("plan",))
        assert model_name in transport.models()
        v2 = transport.model(model_name, version="v2")
        assert v2.versions() == ["v1", "v2"]

    def test_conflict_and_unknown(self, transport, model_name):
        """Conflicts and unknown models raise the same exception types on both transports."""
        transport.model(model_name, task="binary", prediction="score", label="churned")
        with pytest.raises(ModelConflictError):
            transport.model(model_name, task="regression")
        with pytest.raises(UnknownModelError):
            transport.model(model_name + "_nope")
        with pytest.raises(ConfigError):
            transport.model(model_name + "_bad", task="binary", threshold=1.5)

    def test_reference_defines_features(self, transport, model_name, ref):
        """Reference data registers the features with their kinds."""
        df = ref.binary_rows(50)
        model = transport.model(model_name, version="v1", task="binary", prediction="score",
                                label="churned", reference=df.drop(columns=["id", "ts"]))
        assert model.spec.features == {"plan": "categorical", "age": "numeric"}


class TestIngestAndQuery:
    """Batches are stored and reported; metrics agree with scikit-learn on both transports."""

    def test_log_batch_metrics_match_sklearn(self, transport, model_name, ref):
        """log_batch + log_feedback_batch, then metrics equal scikit-learn's."""
        df = ref.binary_rows(800, seed=3)
        model = transport.model(model_name, version="v1", task="binary", prediction="score",
                                label="churned", segments=["plan"])
        ref.log_binary(model, df)
        frame = model.metrics(BINARY, **WINDOW)
        assert list(frame.columns) == ["window_start", "window_end", "n", "n_labeled", *BINARY]
        expected = ref.expected("binary", ref.window(df, pd.Timestamp(WINDOW["start"], tz="UTC"),
                                                     pd.Timestamp(WINDOW["end"], tz="UTC")),
                                pred="score", label="churned")
        ref.check(frame.iloc[0], expected)
        hourly = model.metrics(["count"], step="1h", **WINDOW)
        assert hourly["count"].sum() == 800 and len(hourly) == 72
        seg = model.metrics(["count"], segment="plan=pro", **WINDOW)
        assert seg["n"].iloc[0] == (df["plan"] == "pro").sum()

    def test_log_flush_observe(self, transport, model_name):
        """log / log_feedback / observe are asynchronous; flush makes them visible."""
        model = transport.model(model_name, version="v1", task="binary", prediction="score",
                                label="y")
        for i in range(300):
            model.log(f"r{i}", {"age": i % 40, "plan": "a"}, prediction=(i % 10) / 10,
                      timestamp="2026-01-05T01:00:00Z", latency_ms=1.0 + i % 7)
            model.log_feedback(f"r{i}", label=int(i % 10 >= 5))
        with model.observe("obs", {"age": 1, "plan": "b"}, timestamp="2026-01-05T01:00:00Z") as obs:
            obs.prediction = 0.9
        assert transport.flush(30)
        row = model.metrics(["accuracy", "count", "label_coverage", "latency_p50"], **WINDOW).iloc[0]
        assert row["count"] == 301 and row["n_labeled"] == 300
        assert row["accuracy"] == 1.0
        assert not math.isnan(row["latency_p50"])
        summary = model.summary(**WINDOW)
        assert set(summary["column"]) == {"age", "plan"}

    def test_quarantine_and_bad_input(self, transport, model_name):
        """Bad rows are quarantined with a reason; whole-batch errors raise."""
        model = transport.model(model_name, version="v1", task="binary", prediction="score",
                                label="y")
        report = model.log_batch(pd.DataFrame({
            "id": ["a", "b", "c"], "score": [0.2, None, 0.7],
            "ts": pd.to_datetime(["2026-01-05"] * 3, utc=True)}), timestamp="ts")
        assert (report.received, report.stored, report.quarantined) == (3, 2, 1)
        q = model.quarantined()
        assert list(q["id"]) == ["b"] and "score" in q["reason"].iloc[0]
        with pytest.raises(SchemaError):
            model.log_batch(pd.DataFrame({"rid": ["x"], "score": [0.1]}))
        with pytest.raises(UnknownMetricError):
            model.metrics(["nope"], **WINDOW)
        with pytest.raises(ConfigError):
            model.metrics(["count"], start="2026-01-06", end="2026-01-05")


class TestSameFrames:
    """The remote client returns exactly the embedded client's frames."""

    def test_frames_identical(self, server, spool_dir, model_name, ref):
        """Same data through both transports -> equal metrics and summary frames."""
        import mlpulse

        df = ref.binary_rows(500, seed=9)
        frames = []
        for pulse in (mlpulse.connect(":memory:"),
                      mlpulse.connect(server.url, spool_dir=spool_dir)):
            with pulse:
                model = pulse.model(model_name, version="v1", task="binary", prediction="score",
                                    label="churned", segments=["plan"])
                ref.log_binary(model, df)
                frames.append((model.metrics(BINARY, step="6h", **WINDOW),
                               model.summary(step="1d", **WINDOW)))
        (m1, s1), (m2, s2) = frames
        pd.testing.assert_frame_equal(m1, m2)
        # p50 comes from a KLL sketch, which is randomised: equal within its error only
        pd.testing.assert_frame_equal(s1.drop(columns=["p50"]), s2.drop(columns=["p50"]))
        np.testing.assert_allclose(s1["p50"], s2["p50"], rtol=0.05)
        assert np.isfinite(m1["accuracy"]).any()
