"""The embedded client: model registry, async logging, observe(), flush and never-raising log()."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import mlpulse
from mlpulse.errors import ConfigError, ModelConflictError, UnknownModelError

BINARY = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "positive_rate",
    "count",
    "label_coverage",
    "prediction_mean",
]


class TestRegistry:
    """pulse.model registers once, returns the same model later, and refuses conflicts."""

    def test_unknown_model_without_task(self, pulse):
        with pytest.raises(UnknownModelError) as info:
            pulse.model("nope")
        assert "nope" in str(info.value)
        assert isinstance(info.value, KeyError)

    def test_same_handle_and_stored_settings(self, pulse):
        a = pulse.model(
            "churn",
            version="v1",
            task="binary",
            prediction="score",
            label="churned",
            threshold=0.3,
            segments=["plan"],
        )
        b = pulse.model("churn", version="v1")
        assert a is b
        spec = pulse.model("churn").spec
        assert (spec.task, spec.prediction, spec.label, spec.threshold, spec.segments) == (
            "binary",
            "score",
            "churned",
            0.3,
            ("plan",),
        )
        assert pulse.models() == ["churn"]

    def test_conflicting_task(self, pulse):
        pulse.model("churn", task="binary", prediction="score", label="churned")
        with pytest.raises(ModelConflictError) as info:
            pulse.model("churn", task="regression")
        assert "churn" in str(info.value) and "task" in str(info.value)

    @pytest.mark.parametrize("kwargs", [{"prediction": "p2"}, {"label": "y2"}, {"threshold": 0.9}])
    def test_other_conflicts(self, pulse, kwargs):
        pulse.model("churn", task="binary", prediction="score", label="churned")
        with pytest.raises(ModelConflictError):
            pulse.model(
                "churn", task="binary", **{"prediction": "score", "label": "churned", **kwargs}
            )

    def test_new_version_inherits_the_model(self, pulse):
        pulse.model("churn", version="v1", task="binary", prediction="score", label="churned")
        v2 = pulse.model("churn", version="v2")
        assert v2.version == "v2" and v2.spec.prediction == "score"
        assert v2.versions() == ["v1", "v2"]

    def test_bad_task_and_threshold(self, pulse):
        with pytest.raises(ConfigError):
            pulse.model("m", task="ranking")
        with pytest.raises(ConfigError):
            pulse.model("m2", task="binary", threshold=1.5)

    def test_reference_defines_features(self, pulse, ref):
        df = ref.binary_rows(n=50, seed=60)
        model = pulse.model(
            "r",
            task="binary",
            prediction="score",
            label="churned",
            reference=df.drop(columns=["id", "ts", "latency_ms"]),
        )
        assert model.spec.features == {"plan": "categorical", "age": "numeric"}

    def test_closed_pulse_refuses(self):
        p = mlpulse.connect(":memory:")
        p.close()
        p.close()  # twice is fine
        with pytest.raises(ConfigError):
            p.model("m", task="binary")


class TestAsyncLogging:
    """log() and log_feedback() rows, once flushed, give the same metrics as log_batch."""

    def test_log_then_flush_equals_log_batch(self, pulse, ref):
        sync = pulse.model(
            "sync", task="binary", prediction="score", label="churned", segments=["plan"]
        )
        lazy = pulse.model(
            "lazy", task="binary", prediction="score", label="churned", segments=["plan"]
        )
        df = ref.binary_rows(n=300, seed=61)
        ref.log_binary(sync, df)
        for row in df.itertuples(index=False):
            lazy.log(
                id=row.id,
                features={"plan": row.plan, "age": row.age},
                prediction=row.score,
                timestamp=row.ts,
                latency_ms=row.latency_ms,
            )
        for row in df.sample(frac=1, random_state=0).itertuples(index=False):
            lazy.log_feedback(id=row.id, label=row.churned)
        assert pulse.flush(timeout=30)
        names = BINARY + ["latency_p50", "latency_p99"]
        for segment in (None, "plan=team"):
            a = sync.metrics(
                names,
                start="2026-01-05T04:33:21Z",
                end="2026-01-07T02:07:09Z",
                step="6h",
                segment=segment,
            )
            b = lazy.metrics(
                names,
                start="2026-01-05T04:33:21Z",
                end="2026-01-07T02:07:09Z",
                step="6h",
                segment=segment,
            )
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)
        assert lazy.spec.features == {"plan": "categorical", "age": "numeric"}

    def test_feedback_logged_before_prediction(self, pulse, ref):
        model = pulse.model("early", task="binary", prediction="score", label="churned")
        df = ref.binary_rows(n=80, seed=62)
        for row in df.itertuples(index=False):
            model.log_feedback(id=row.id, label=row.churned)
        pulse.flush()
        for row in df.itertuples(index=False):
            model.log(id=row.id, prediction=row.score, timestamp=row.ts)
        pulse.flush()
        frame = model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        ref.check(frame.iloc[0], ref.expected("binary", df, pred="score", label="churned"))

    def test_default_timestamp_is_now(self, binary_model):
        binary_model.log(id="now1", prediction=0.4, features={"plan": "pro"})
        binary_model._pulse.flush()
        frame = binary_model.metrics(["count"], start="-2m", end="+1m")
        assert frame["n"].iloc[0] == 1

    def test_log_returns_quickly(self, binary_model):
        started = time.perf_counter()
        for i in range(2000):
            binary_model.log(id=f"q{i}", prediction=0.5, features={"plan": "pro"})
        per_call = (time.perf_counter() - started) / 2000
        assert per_call < 1e-3
        binary_model._pulse.flush()
        assert binary_model.metrics(["count"], start="-5m", end="+1m")["n"].iloc[0] == 2000

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"id": None, "prediction": 0.5},
            {"id": "g1", "prediction": "abc"},
            {"id": "g2", "prediction": float("nan")},
            {"id": "g3", "prediction": 7.0},
            {"id": "g4", "prediction": None},
            {"id": "g5", "prediction": 0.5, "timestamp": "yesterday-ish"},
            {"id": "g6", "prediction": 0.5, "features": {"age": object()}},
            {"id": ["not", "hashable"], "prediction": 0.5},
            {"id": "g7", "prediction": 0.5, "features": "not a dict"},
            {"id": "g8", "prediction": 0.5, "latency_ms": "fast"},
        ],
    )
    def test_log_with_garbage_never_raises(self, pulse, kwargs):
        model = pulse.model("garbage", task="binary", prediction="score", label="churned")
        model.log(**kwargs)
        model.log_feedback(id=kwargs.get("id"), label="???")
        assert pulse.flush(timeout=30)
        # nothing is lost silently: the bad row is stored or quarantined
        stored = model.metrics(["count"], start="2000-01-01", end="2100-01-01")["n"].iloc[0]
        assert stored + len(model.quarantined()) >= 1

    def test_garbage_mixed_with_good_rows(self, pulse):
        model = pulse.model("mixed", task="binary", prediction="score", label="churned")
        for i in range(20):
            model.log(
                id=f"ok{i}",
                prediction=i / 20,
                features={"age": i},
                timestamp="2026-01-05T10:00:00Z",
            )
        model.log(
            id="bad", prediction="abc", features={"age": "old"}, timestamp="2026-01-05T10:00:00Z"
        )
        model.log(id="bad2", prediction=3.0, timestamp="2026-01-05T10:00:00Z")
        pulse.flush()
        assert model.metrics(["count"], start="2026-01-05", end="2026-01-06")["n"].iloc[0] == 20
        q = model.quarantined()
        assert sorted(q["id"]) == ["bad", "bad2"]
        assert all("mixed" in r and "'score'" in r for r in q["reason"])

    def test_log_accepts_numpy_scalars(self, pulse, ref):
        """numpy scalar predictions and features from a model's output are logged normally."""
        rows = ref.binary_rows(n=10, seed=63)
        model = pulse.model("np", task="binary", prediction="score", label="churned")
        for row in rows.itertuples(index=False):
            model.log(
                id=row.id,
                prediction=np.float32(row.score),
                features={"age": np.float64(row.age)},
                timestamp=row.ts,
            )
        pulse.flush()
        frame = model.metrics(["count", "prediction_mean"], start="2026-01-05", end="2026-01-08")
        assert frame["n"].iloc[0] == 10
        assert frame["prediction_mean"].iloc[0] == pytest.approx(
            rows["score"].astype(np.float32).mean(), rel=1e-6
        )


class TestObserve:
    """observe() times the block and records the prediction with its latency."""

    def test_observe_records_latency(self, binary_model):
        for i in range(5):
            with binary_model.observe(id=f"o{i}", features={"plan": "pro", "age": 30}) as obs:
                time.sleep(0.02)
                obs.prediction = 0.8
        binary_model._pulse.flush()
        frame = binary_model.metrics(
            ["count", "latency_p50", "prediction_mean"], start="-5m", end="+1m"
        )
        assert frame["n"].iloc[0] == 5
        assert 20.0 <= frame["latency_p50"].iloc[0] < 1000.0
        assert frame["prediction_mean"].iloc[0] == pytest.approx(0.8)

    def test_observe_with_explicit_timestamp_and_feedback(self, binary_model):
        with binary_model.observe(
            id="x", features={"plan": "free"}, timestamp="2026-01-05T01:02:03Z"
        ) as obs:
            obs.prediction = 0.9
        binary_model.log_feedback(id="x", label=1)
        binary_model._pulse.flush()
        frame = binary_model.metrics(
            ["accuracy", "latency_p99"], start="2026-01-05T01:02:03Z", end="2026-01-05T01:02:04Z"
        )
        assert frame["n_labeled"].iloc[0] == 1 and frame["accuracy"].iloc[0] == 1.0
        assert frame["latency_p99"].iloc[0] >= 0

    def test_observe_does_not_swallow_errors(self, binary_model):
        with pytest.raises(RuntimeError), binary_model.observe(id="boom") as obs:
            obs.prediction = 0.1
            raise RuntimeError("model failed")


class TestPublicApi:
    """The package exposes the names of the API contract."""

    def test_exports(self):
        for name in ("connect", "metric", "errors", "Pulse", "Model", "IngestReport"):
            assert hasattr(mlpulse, name)
        assert set(mlpulse.__all__) >= {"connect", "metric", "errors"}

    def test_http_target_is_remote(self):
        pulse = mlpulse.connect("http://127.0.0.1:1", on_full="drop")
        assert isinstance(pulse, mlpulse.RemotePulse)
        pulse.close(timeout=0)

    def test_remote_options_rejected_for_files(self):
        with pytest.raises(ConfigError, match="http"):
            mlpulse.connect(":memory:", on_full="drop")

    def test_context_manager_closes(self, tmp_path):
        path = str(tmp_path / "cm.duckdb")
        with mlpulse.connect(path) as p:
            p.model("m", task="regression").log_batch({"id": ["a"], "prediction": [1.0]})
        with mlpulse.connect(path) as p:
            assert p.models() == ["m"]
