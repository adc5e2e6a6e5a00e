"""Window queries (``model.metrics``) agree with scikit-learn on the raw rows of each window."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

import mlpulse
from mlpulse.errors import ConfigError, UnknownMetricError, UnknownModelError

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
MULTICLASS = [
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_micro",
    "f1_weighted",
    "count",
    "label_coverage",
]
REGRESSION = [
    "mae",
    "mse",
    "rmse",
    "mape",
    "r2",
    "mean_error",
    "count",
    "label_coverage",
    "prediction_mean",
]

#: Windows over data in [2026-01-05 00:00, 2026-01-07 07:00): unaligned seconds, sub-minute,
#: one minute boundary, across midnight, multi-day with partial hours and minutes at both ends.
WINDOWS = [
    ("2026-01-05T00:00:00Z", "2026-01-08T00:00:00Z"),  # everything, day-aligned
    ("2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z"),  # exactly one day bucket
    ("2026-01-05T13:00:00Z", "2026-01-05T14:00:00Z"),  # exactly one hour bucket
    ("2026-01-05T03:17:42.123456Z", "2026-01-05T03:17:59Z"),  # inside one minute
    ("2026-01-05T03:17:42Z", "2026-01-05T03:18:13.5Z"),  # straddles one minute boundary
    ("2026-01-05T23:41:07Z", "2026-01-06T00:19:53Z"),  # across midnight, minutes only
    ("2026-01-05T22:59:59.999999Z", "2026-01-06T01:00:00.000001Z"),  # hours + 1us edges
    ("2026-01-05T04:33:21Z", "2026-01-07T02:07:09Z"),  # multi-day, partials both ends
    ("2026-01-05T00:00:01Z", "2026-01-06T23:59:59Z"),  # nearly two days
    ("2026-01-06T11:11:11.111Z", "2026-01-06T11:11:11.111Z"),  # empty (start == end)
    ("2025-12-31T00:00:00Z", "2026-01-02T00:00:00Z"),  # before any data
]


@pytest.fixture(scope="module")
def binary_data(ref):
    """One store with 700 labeled binary rows, shared by the read-only tests of this module."""
    pulse = mlpulse.connect(":memory:")
    model = pulse.model(
        "churn", version="v1", task="binary", prediction="score", label="churned", segments=["plan"]
    )
    df = ref.binary_rows(n=700, seed=1)
    ref.log_binary(model, df)
    yield model, df
    pulse.close()


@pytest.fixture(scope="module")
def multiclass_data(ref):
    """One store with 500 labeled multiclass rows, shared by read-only tests."""
    pulse = mlpulse.connect(":memory:")
    model = pulse.model("zoo", task="multiclass", prediction="pred", label="animal")
    df = ref.multiclass_rows(n=500, seed=2)
    report = model.log_batch(df.drop(columns=["animal"]), id="id", timestamp="ts")
    assert report.stored == len(df)
    model.log_feedback_batch(df[["id", "animal"]], id="id", label="animal")
    yield model, df
    pulse.close()


@pytest.fixture(scope="module")
def regression_data(ref):
    """One store with 500 labeled regression rows, shared by read-only tests."""
    pulse = mlpulse.connect(":memory:")
    model = pulse.model("price", task="regression", prediction="yhat", label="y")
    df = ref.regression_rows(n=500, seed=2)
    model.log_batch(df.drop(columns=["y"]), id="id", timestamp="ts")
    model.log_feedback_batch(df[["id", "y"]], id="id", label="y")
    yield model, df
    pulse.close()


class TestBinaryWindows:
    """Binary metrics over any [start, end) equal scikit-learn on the rows in that window."""

    @pytest.mark.parametrize(("start", "end"), WINDOWS)
    def test_window_matches_sklearn(self, binary_data, ref, start, end):
        model, df = binary_data
        frame = model.metrics(BINARY, start=start, end=end)
        assert len(frame) == 1
        expected = ref.expected("binary", ref.window(df, start, end), pred="score", label="churned")
        ref.check(frame.iloc[0], expected, where=f"[{start}, {end})")

    @pytest.mark.parametrize(
        ("start", "end", "step"),
        [
            ("2026-01-05T00:00:00Z", "2026-01-07T08:00:00Z", "7h"),
            ("2026-01-05T05:03:27Z", "2026-01-06T19:48:10Z", "47m"),
            ("2026-01-05T23:58:30.5Z", "2026-01-06T00:02:10Z", "45s"),
            ("2026-01-04T22:00:00Z", "2026-01-07T09:30:00Z", "1d"),
        ],
    )
    def test_stepped_windows_match_sklearn(self, binary_data, ref, start, end, step):
        model, df = binary_data
        frame = model.metrics(BINARY, start=start, end=end, step=step)
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        width = pd.Timedelta(step.replace("d", "D"))
        assert frame["window_start"].iloc[0] == lo
        assert frame["window_end"].iloc[-1] == hi
        # contiguous, each of the step's width except the last which is cut at end
        assert (
            frame["window_start"].iloc[1:].to_numpy() == frame["window_end"].iloc[:-1].to_numpy()
        ).all()
        assert ((frame["window_end"] - frame["window_start"]).iloc[:-1] == width).all()
        assert len(frame) == math.ceil((hi - lo) / width)
        for _, row in frame.iterrows():
            rows = ref.window(df, row["window_start"], row["window_end"])
            ref.check(
                row,
                ref.expected("binary", rows, pred="score", label="churned"),
                where=f"[{row['window_start']}, {row['window_end']})",
            )
        assert frame["n"].sum() == len(ref.window(df, lo, hi))

    def test_frame_shape_and_utc_timestamps(self, binary_data):
        model, _ = binary_data
        frame = model.metrics(["f1", "accuracy"], start="2026-01-05", end="2026-01-06", step="6h")
        assert list(frame.columns) == [
            "window_start",
            "window_end",
            "n",
            "n_labeled",
            "f1",
            "accuracy",
        ]
        assert len(frame) == 4
        for column in ("window_start", "window_end"):
            assert isinstance(frame[column].dtype, pd.DatetimeTZDtype)
            assert str(frame[column].dt.tz) == "UTC"
        assert frame["window_start"].iloc[0] == pd.Timestamp("2026-01-05T00:00:00", tz="UTC")

    def test_empty_window_gives_zero_n_and_nan(self, binary_data):
        model, _ = binary_data
        frame = model.metrics(BINARY, start="2030-01-01", end="2030-01-02", step="12h")
        assert len(frame) == 2
        assert (frame["n"] == 0).all() and (frame["n_labeled"] == 0).all()
        for name in BINARY:
            if name == "count":
                assert (frame[name] == 0).all()
            else:
                assert frame[name].isna().all(), name

    def test_model_without_data_gives_nan(self, binary_model):
        frame = binary_model.metrics(BINARY + ["latency_p99"], start="2026-01-01", end="2026-01-02")
        assert frame["n"].tolist() == [0]
        assert frame[[m for m in BINARY if m != "count"] + ["latency_p99"]].isna().all().all()

    def test_unlabeled_rows_count_but_do_not_score(self, binary_model, ref):
        df = ref.binary_rows(n=400, seed=3)
        ref.log_binary(binary_model, df, labels=False)
        half = df.sample(frac=0.45, random_state=0)
        binary_model.log_feedback_batch(half[["id", "churned"]], id="id", label="churned")
        df = df.assign(churned=df["churned"].where(df["id"].isin(half["id"])))
        for start, end in WINDOWS[:8]:
            frame = binary_model.metrics(BINARY, start=start, end=end)
            expected = ref.expected(
                "binary", ref.window(df, start, end), pred="score", label="churned"
            )
            ref.check(frame.iloc[0], expected, where=f"[{start}, {end})")

    def test_threshold_changes_hard_metrics(self, pulse, ref):
        model = pulse.model(
            "strict", task="binary", prediction="score", label="churned", threshold=0.7
        )
        df = ref.binary_rows(n=300, seed=4)
        ref.log_binary(model, df)
        frame = model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        ref.check(
            frame.iloc[0], ref.expected("binary", df, pred="score", label="churned", threshold=0.7)
        )

    def test_default_metrics_cover_the_task(self, binary_data, ref):
        model, df = binary_data
        frame = model.metrics(start="2026-01-05", end="2026-01-08")
        for name in BINARY + ["latency_p50", "latency_p95", "latency_p99"]:
            assert name in frame.columns, name
        ref.check(frame.iloc[0], ref.expected("binary", df, pred="score", label="churned"))


class TestAucResolution:
    """ROC AUC and average precision stay within 0.005 of scikit-learn even for nearly tied scores."""

    def test_small_window_with_nearly_tied_scores(self, binary_model, ref):
        df = pd.DataFrame(
            {
                "id": ["p1", "n1", "p2", "n2"],
                "ts": pd.to_datetime(["2026-01-05T10:00:01Z"] * 4),
                "score": [0.81234, 0.81231, 0.30007, 0.30002],
                "churned": [1, 0, 1, 0],
            }
        )
        ref.log_binary(binary_model, df)
        frame = binary_model.metrics(["roc_auc", "pr_auc"], start="2026-01-05", end="2026-01-06")
        ref.check(
            frame.iloc[0],
            ref.expected("binary", df, pred="score", label="churned"),
            names=["n_labeled", "roc_auc", "pr_auc"],
        )

    def test_many_rows_continuous_scores(self, binary_model, ref):
        df = ref.binary_rows(n=3000, seed=99, span=timedelta(hours=3))
        ref.log_binary(binary_model, df)
        frame = binary_model.metrics(
            ["roc_auc", "pr_auc"], start="2026-01-05", end="2026-01-06", step="20m"
        )
        for _, row in frame.iterrows():
            rows = ref.window(df, row["window_start"], row["window_end"])
            ref.check(
                row,
                ref.expected("binary", rows, pred="score", label="churned"),
                names=["roc_auc", "pr_auc"],
            )


class TestTimeArguments:
    """start/end accept datetimes (naive = UTC), ISO strings with offsets and relative times."""

    def test_naive_aware_and_iso_agree(self, binary_data):
        model, _ = binary_data
        naive = model.metrics(
            ["count", "f1"], start=datetime(2026, 1, 5, 6), end=datetime(2026, 1, 6, 1, 30)
        )
        aware = model.metrics(
            ["count", "f1"],
            start=datetime(2026, 1, 5, 8, tzinfo=timezone(timedelta(hours=2))),
            end=datetime(2026, 1, 6, 1, 30, tzinfo=UTC),
        )
        iso = model.metrics(
            ["count", "f1"], start="2026-01-05T09:00:00+03:00", end="2026-01-06T01:30:00Z"
        )
        pd.testing.assert_frame_equal(naive, aware)
        pd.testing.assert_frame_equal(naive, iso)
        assert naive["window_start"].iloc[0] == pd.Timestamp("2026-01-05T06:00Z")

    def test_relative_window_sees_recent_rows(self, pulse, ref):
        model = pulse.model("recent", task="binary", prediction="score", label="churned")
        now = pd.Timestamp.now(tz="UTC")
        df = ref.binary_rows(
            n=120, seed=5, start=now - pd.Timedelta("50min"), span=timedelta(minutes=45)
        )
        ref.log_binary(model, df)
        frame = model.metrics(["count", "accuracy"], start="-1h", end="now")
        ref.check(
            frame.iloc[0],
            ref.expected("binary", df, pred="score", label="churned"),
            names=["n", "count", "accuracy"],
        )
        assert model.metrics(["count"], start="-3h", end="-2h")["n"].tolist() == [0]

    def test_end_before_start_is_a_config_error(self, binary_data):
        model, _ = binary_data
        with pytest.raises(ConfigError):
            model.metrics(["count"], start="2026-01-06", end="2026-01-05")


class TestLatency:
    """latency_p50/p95/p99 are within the sketch's rank error of numpy's quantiles."""

    @pytest.mark.parametrize(("start", "end"), [WINDOWS[0], WINDOWS[7], WINDOWS[5]])
    def test_latency_quantiles(self, binary_data, ref, start, end):
        model, df = binary_data
        rows = ref.window(df, start, end)
        frame = model.metrics(["latency_p50", "latency_p95", "latency_p99"], start=start, end=end)
        for name, q in (("latency_p50", 0.5), ("latency_p95", 0.95), ("latency_p99", 0.99)):
            estimate = float(frame[name].iloc[0])
            truth = float(np.quantile(rows["latency_ms"], q))
            # 0.02 in rank, plus one sample's rank step (a sample quantile of 11 rows moves by 1/11)
            assert ref.rank_error(estimate, rows["latency_ms"], q) <= 0.02 + 1 / len(rows), (
                name,
                estimate,
                truth,
            )
            assert rows["latency_ms"].min() * 0.99 <= estimate <= rows["latency_ms"].max() * 1.01

    def test_latency_heavy_tail(self, pulse, ref):
        model = pulse.model("tail", task="regression", prediction="yhat", label="y")
        rng = np.random.default_rng(11)
        n = 4000
        latency = np.concatenate([rng.exponential(3.0, n - 80), rng.uniform(500, 5000, 80)])
        rng.shuffle(latency)
        df = pd.DataFrame(
            {
                "id": np.arange(n),
                "ts": ref.timestamps(rng, n),
                "yhat": rng.normal(size=n),
                "latency_ms": latency,
            }
        )
        model.log_batch(df, id="id", timestamp="ts")
        frame = model.metrics(
            ["latency_p50", "latency_p95", "latency_p99"], start="2026-01-05", end="2026-01-08"
        )
        for name, q in (("latency_p50", 0.5), ("latency_p95", 0.95), ("latency_p99", 0.99)):
            assert ref.rank_error(float(frame[name].iloc[0]), latency, q) <= 0.02 + 1 / n, name

    def test_rows_without_latency_give_nan(self, binary_model, ref):
        df = ref.binary_rows(n=50, seed=6).drop(columns=["latency_ms"])
        ref.log_binary(binary_model, df)
        frame = binary_model.metrics(["latency_p50", "count"], start="2026-01-05", end="2026-01-08")
        assert frame["count"].iloc[0] == 50
        assert math.isnan(frame["latency_p50"].iloc[0])


class TestMulticlassWindows:
    """Multiclass metrics equal scikit-learn's macro/micro/weighted averages per window."""

    @pytest.fixture
    def data(self, multiclass_data):
        return multiclass_data

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            WINDOWS[0],
            WINDOWS[4],
            WINDOWS[5],
            WINDOWS[6],
            ("2026-01-05T02:02:02Z", "2026-01-06T04:44:44Z"),
        ],
    )
    def test_window_matches_sklearn(self, data, ref, start, end):
        model, df = data
        frame = model.metrics(MULTICLASS, start=start, end=end)
        ref.check(
            frame.iloc[0],
            ref.expected("multiclass", ref.window(df, start, end), pred="pred", label="animal"),
            where=f"[{start}, {end})",
        )

    def test_stepped(self, data, ref):
        model, df = data
        frame = model.metrics(
            MULTICLASS, start="2026-01-05T01:30:30Z", end="2026-01-06T05:00:00Z", step="3h"
        )
        for _, row in frame.iterrows():
            rows = ref.window(df, row["window_start"], row["window_end"])
            ref.check(row, ref.expected("multiclass", rows, pred="pred", label="animal"))

    def test_prediction_of_unseen_class(self, pulse, ref):
        model = pulse.model("zoo2", task="multiclass", prediction="pred", label="animal")
        df = ref.multiclass_rows(n=200, seed=9)
        df.loc[df.index[:15], "pred"] = "yak"  # a class never in the labels
        model.log_batch(df.drop(columns=["animal"]), id="id", timestamp="ts")
        model.log_feedback_batch(df[["id", "animal"]], id="id", label="animal")
        frame = model.metrics(MULTICLASS, start="2026-01-05", end="2026-01-07")
        ref.check(frame.iloc[0], ref.expected("multiclass", df, pred="pred", label="animal"))

    def test_integer_classes(self, pulse, ref):
        model = pulse.model("digits", task="multiclass", prediction="pred", label="digit")
        rng = np.random.default_rng(3)
        n = 300
        y = rng.integers(0, 5, size=n)
        p = np.where(rng.uniform(size=n) < 0.5, y, rng.integers(0, 5, size=n))
        df = pd.DataFrame(
            {"id": [f"d{i}" for i in range(n)], "ts": ref.timestamps(rng, n), "pred": p, "digit": y}
        )
        model.log_batch(df.drop(columns=["digit"]), id="id", timestamp="ts")
        model.log_feedback_batch(df[["id", "digit"]], id="id", label="digit")
        frame = model.metrics(MULTICLASS, start="2026-01-05", end="2026-01-08")
        ref.check(
            frame.iloc[0],
            ref.expected(
                "multiclass", df.astype({"pred": str, "digit": str}), pred="pred", label="digit"
            ),
        )


class TestManyClasses:
    """A multiclass model with 4,000 classes in one batch takes its labels within modest
    memory (dense matrices took 2.7 GB, then every label request failed), and its metrics
    equal scikit-learn's while the classes fit the cap."""

    def test_4000_classes(self, pulse, ref, monkeypatch):
        import tracemalloc

        monkeypatch.setenv("MLPULSE_MAX_CLASSES", "5000")  # every class tracked one by one
        k, n = 4_000, 8_000
        model = pulse.model("many", task="multiclass", prediction="pred", label="animal")
        df = ref.multiclass_rows(n=n, seed=4, classes=[f"c{i:04d}" for i in range(k)],
                                 span=timedelta(hours=20))
        assert df["animal"].nunique() > 3_000
        model.log_batch(df.drop(columns=["animal"]), id="id", timestamp="ts")
        tracemalloc.start()
        report = model.log_feedback_batch(df[["id", "animal"]], id="id", label="animal")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert report.matched == n
        assert peak < 100_000_000, f"{peak / 1e6:.0f} MB"  # dense: 128 MB per day bucket
        frame = model.metrics(MULTICLASS, start="2026-01-05", end="2026-01-07")
        ref.check(frame.iloc[0], ref.expected("multiclass", df, pred="pred", label="animal"))

    def test_past_the_cap_accuracy_stays_exact(self, pulse, ref):
        """At the default cap (1,000) the classes sorting last pool into __other__: the
        count and accuracy stay exact, the request succeeds."""
        k, n = 1_500, 4_000
        model = pulse.model("pooled", task="multiclass", prediction="pred", label="animal")
        df = ref.multiclass_rows(n=n, seed=5, classes=[f"c{i:04d}" for i in range(k)],
                                 span=timedelta(hours=3))
        model.log_batch(df.drop(columns=["animal"]), id="id", timestamp="ts")
        assert model.log_feedback_batch(df[["id", "animal"]], id="id", label="animal").matched == n
        frame = model.metrics(["accuracy", "f1_micro", "count"], start="2026-01-05",
                              end="2026-01-06")
        expected = ref.expected("multiclass", df, pred="pred", label="animal")
        ref.check(frame.iloc[0], expected, names=["n", "count", "accuracy", "f1_micro"])


class TestRegressionWindows:
    """Regression metrics equal scikit-learn (and mean_error = mean(pred - true)) per window."""

    @pytest.fixture
    def data(self, regression_data):
        return regression_data

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            WINDOWS[0],
            WINDOWS[3],
            WINDOWS[4],
            WINDOWS[5],
            WINDOWS[6],
            ("2026-01-05T02:02:02Z", "2026-01-06T04:44:44Z"),
        ],
    )
    def test_window_matches_sklearn(self, data, ref, start, end):
        model, df = data
        frame = model.metrics(REGRESSION, start=start, end=end)
        ref.check(
            frame.iloc[0],
            ref.expected("regression", ref.window(df, start, end), pred="yhat", label="y"),
            where=f"[{start}, {end})",
        )

    def test_stepped(self, data, ref):
        model, df = data
        frame = model.metrics(
            REGRESSION, start="2026-01-05T00:10:00Z", end="2026-01-06T06:00:00Z", step="150m"
        )
        for _, row in frame.iterrows():
            rows = ref.window(df, row["window_start"], row["window_end"])
            ref.check(row, ref.expected("regression", rows, pred="yhat", label="y"))

    @pytest.mark.parametrize("scale", [1e12, 1e-12])
    def test_huge_and_tiny_values(self, pulse, ref, scale):
        model = pulse.model(f"scale{scale:g}", task="regression", prediction="yhat", label="y")
        df = ref.regression_rows(n=300, seed=7, scale=scale)
        model.log_batch(df.drop(columns=["y"]), id="id", timestamp="ts")
        model.log_feedback_batch(df[["id", "y"]], id="id", label="y")
        for start, end in (WINDOWS[0], ("2026-01-05T03:03:03Z", "2026-01-05T21:21:21Z")):
            frame = model.metrics(REGRESSION, start=start, end=end)
            expected = ref.expected(
                "regression", ref.window(df, start, end), pred="yhat", label="y"
            )
            ref.check(frame.iloc[0], expected, where=f"scale {scale}")

    def test_single_row_window_r2_is_nan(self, pulse, ref):
        model = pulse.model("one", task="regression", prediction="yhat", label="y")
        model.log_batch(
            {"id": ["a"], "ts": ["2026-01-05T10:00:00Z"], "yhat": [3.0]}, timestamp="ts"
        )
        model.log_feedback_batch({"id": ["a"], "y": [5.0]}, label="y")
        frame = model.metrics(REGRESSION, start="2026-01-05", end="2026-01-06")
        ref.check(
            frame.iloc[0],
            ref.expected(
                "regression", pd.DataFrame({"yhat": [3.0], "y": [5.0]}), pred="yhat", label="y"
            ),
        )


class TestSingleClassAndSpecialValues:
    """Windows with one class, and NaN/inf features, give scikit-learn's answers, not errors."""

    @pytest.mark.parametrize("label", [0, 1])
    def test_single_class_window(self, binary_model, ref, label):
        df = ref.binary_rows(n=200, seed=8)
        df["churned"] = label
        ref.log_binary(binary_model, df)
        frame = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        expected = ref.expected("binary", df, pred="score", label="churned")
        assert math.isnan(frame["roc_auc"].iloc[0])
        ref.check(frame.iloc[0], expected)

    def test_single_class_multiclass(self, pulse, ref):
        model = pulse.model("mono", task="multiclass", prediction="pred", label="animal")
        df = ref.multiclass_rows(n=100, seed=8)
        df["animal"] = "cat"
        model.log_batch(df.drop(columns=["animal"]), id="id", timestamp="ts")
        model.log_feedback_batch(df[["id", "animal"]], id="id", label="animal")
        frame = model.metrics(MULTICLASS, start="2026-01-05", end="2026-01-08")
        ref.check(frame.iloc[0], ref.expected("multiclass", df, pred="pred", label="animal"))

    def test_nan_and_inf_features_are_stored_and_counted(self, binary_model, ref):
        df = ref.binary_rows(n=200, seed=12, span=timedelta(hours=20))
        df["age"] = df["age"].astype(float)
        df.loc[df.index[:10], "age"] = np.nan
        df.loc[df.index[10:15], "age"] = np.inf
        df.loc[df.index[15:18], "age"] = -np.inf
        report = binary_model.log_batch(df.drop(columns=["churned"]), id="id", timestamp="ts")
        assert (report.received, report.stored, report.quarantined) == (200, 200, 0)
        binary_model.log_feedback_batch(df[["id", "churned"]], id="id", label="churned")
        frame = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-06")
        ref.check(frame.iloc[0], ref.expected("binary", df, pred="score", label="churned"))
        summary = binary_model.summary(start="2026-01-05", end="2026-01-06")
        age = summary[summary["column"] == "age"].iloc[0]
        finite = df["age"][np.isfinite(df["age"])]
        assert age["count"] == len(finite)
        assert age["missing"] >= 10
        assert math.isclose(age["mean"], finite.mean(), rel_tol=1e-9)


class TestUnknownMetric:
    """An unknown metric name raises UnknownMetricError naming the model."""

    @pytest.mark.parametrize("name", ["acuracy", "mae", "f1_macro", ""])
    def test_unknown_metric(self, binary_model, name):
        with pytest.raises(UnknownMetricError) as info:
            binary_model.metrics([name], start="2026-01-05", end="2026-01-06")
        assert "churn" in str(info.value)
        assert isinstance(info.value, mlpulse.errors.ConfigError)

    def test_unknown_metric_as_string(self, binary_model):
        with pytest.raises(UnknownMetricError, match="churn"):
            binary_model.metrics("nope", start="2026-01-05", end="2026-01-06")


class TestCustomMetrics:
    """A @mlpulse.metric function is evaluated exactly on each window's labeled rows."""

    def test_custom_binary_metric(self, binary_data, ref, custom_metric):
        model, df = binary_data

        def top_decile_precision(y_true, y_pred):
            order = np.argsort(-np.asarray(y_pred), kind="stable")
            k = max(1, len(order) // 10)
            return float(np.mean(np.asarray(y_true)[order[:k]]))

        custom_metric("test_top_decile_precision", top_decile_precision)
        for start, end, step in (
            ("2026-01-05T00:00:00Z", "2026-01-08T00:00:00Z", None),
            ("2026-01-05T04:33:21Z", "2026-01-07T02:07:09Z", "9h"),
        ):
            frame = model.metrics(
                ["test_top_decile_precision", "f1"], start=start, end=end, step=step
            )
            for _, row in frame.iterrows():
                rows = ref.window(df, row["window_start"], row["window_end"])
                want = top_decile_precision(rows["churned"].to_numpy(), rows["score"].to_numpy())
                assert math.isclose(row["test_top_decile_precision"], want, abs_tol=1e-12)

    def test_custom_receives_only_labeled_rows(self, binary_model, ref, custom_metric):
        df = ref.binary_rows(n=300, seed=13)
        ref.log_binary(binary_model, df, labels=False)
        part = df.iloc[::3]
        binary_model.log_feedback_batch(part[["id", "churned"]], id="id", label="churned")
        seen = []

        def n_rows(y_true, y_pred):
            seen.append(len(y_true))
            assert not np.isnan(np.asarray(y_true, dtype=float)).any()
            return float(len(y_true))

        custom_metric("test_n_rows", n_rows)
        frame = binary_model.metrics(["test_n_rows"], start="2026-01-05", end="2026-01-08")
        assert frame["test_n_rows"].iloc[0] == len(part) == frame["n_labeled"].iloc[0]

    def test_custom_regression_with_segment_and_empty_window(self, pulse, ref, custom_metric):
        model = pulse.model(
            "seg_reg", task="regression", prediction="yhat", label="y", segments=["zone"]
        )
        df = ref.regression_rows(n=300, seed=14)
        df["zone"] = np.random.default_rng(0).choice(["n", "s"], size=len(df))
        model.log_batch(df.drop(columns=["y"]), id="id", timestamp="ts")
        model.log_feedback_batch(df[["id", "y"]], id="id", label="y")

        def max_abs_error(y_true, y_pred):
            return float(np.max(np.abs(np.asarray(y_true) - np.asarray(y_pred))))

        custom_metric("test_max_abs_error", max_abs_error)
        frame = model.metrics(
            ["test_max_abs_error"],
            start="2026-01-05T03:03:03Z",
            end="2026-01-06T01:01:01Z",
            segment="zone=s",
        )
        rows = ref.window(df[df["zone"] == "s"], "2026-01-05T03:03:03Z", "2026-01-06T01:01:01Z")
        assert frame["test_max_abs_error"].iloc[0] == pytest.approx(
            max_abs_error(rows["y"], rows["yhat"]), abs=1e-12
        )
        empty = model.metrics(["test_max_abs_error"], start="2030-01-01", end="2030-01-02")
        assert math.isnan(empty["test_max_abs_error"].iloc[0])


class TestSegments:
    """segment='col=value' or {'col': value} restricts every metric to that slice."""

    @pytest.mark.parametrize("plan", ["pro", "free", "team"])
    def test_segment_matches_sklearn_subset(self, binary_data, ref, plan):
        model, df = binary_data
        subset = df[df["plan"] == plan]
        for start, end in (WINDOWS[0], WINDOWS[7], WINDOWS[5]):
            as_text = model.metrics(BINARY, start=start, end=end, segment=f"plan={plan}")
            as_dict = model.metrics(BINARY, start=start, end=end, segment={"plan": plan})
            pd.testing.assert_frame_equal(as_text, as_dict)
            ref.check(
                as_text.iloc[0],
                ref.expected(
                    "binary", ref.window(subset, start, end), pred="score", label="churned"
                ),
                where=plan,
            )

    def test_segments_partition_the_rows(self, binary_data, ref):
        model, df = binary_data
        total = model.metrics(["count"], start=WINDOWS[7][0], end=WINDOWS[7][1], step="5h")
        parts = [
            model.metrics(
                ["count"], start=WINDOWS[7][0], end=WINDOWS[7][1], step="5h", segment=f"plan={p}"
            )
            for p in ("free", "pro", "team")
        ]
        assert (sum(p["n"] for p in parts) == total["n"]).all()
        assert (sum(p["n_labeled"] for p in parts) == total["n_labeled"]).all()

    def test_unknown_segment_value_is_empty(self, binary_data):
        model, _ = binary_data
        frame = model.metrics(
            ["count", "f1"], start="2026-01-05", end="2026-01-08", segment="plan=enterprise"
        )
        assert frame["n"].tolist() == [0]
        assert math.isnan(frame["f1"].iloc[0])

    def test_non_segment_column_is_rejected(self, binary_data):
        model, _ = binary_data
        with pytest.raises(ConfigError, match="age"):
            model.metrics(["count"], start="2026-01-05", end="2026-01-08", segment="age=40")

    def test_values_beyond_the_cap_pool_into_other(self, binary_model, ref):
        from mlpulse.schema import OTHER_SEGMENT, SEGMENT_CAP

        values = [f"p{i:02d}" for i in range(SEGMENT_CAP + 10)]
        df = ref.binary_rows(n=1200, seed=15, plans=values)
        ref.log_binary(binary_model, df)
        counts = {
            v: binary_model.metrics(
                ["count"], start="2026-01-05", end="2026-01-08", segment=f"plan={v}"
            )
            for v in values
        }
        admitted = [v for v, f in counts.items() if f["n"].iloc[0] > 0]
        assert len(admitted) == SEGMENT_CAP
        for v in admitted:
            assert counts[v]["n"].iloc[0] == (df["plan"] == v).sum(), v
        for v in admitted[::10]:
            frame = binary_model.metrics(
                BINARY, start="2026-01-05", end="2026-01-08", segment=f"plan={v}"
            )
            ref.check(
                frame.iloc[0],
                ref.expected("binary", df[df["plan"] == v], pred="score", label="churned"),
                where=v,
            )
        other = binary_model.metrics(
            BINARY, start="2026-01-05", end="2026-01-08", segment=f"plan={OTHER_SEGMENT}"
        )
        pooled = df[~df["plan"].isin(admitted)]
        assert pooled["plan"].nunique() == 10
        ref.check(
            other.iloc[0],
            ref.expected("binary", pooled, pred="score", label="churned"),
            where="__other__",
        )

    def test_new_values_after_the_cap_pool_into_other(self, binary_model, ref):
        from mlpulse.schema import OTHER_SEGMENT, SEGMENT_CAP

        first = ref.binary_rows(
            n=SEGMENT_CAP * 4, seed=16, plans=[f"a{i:02d}" for i in range(SEGMENT_CAP)]
        )
        ref.log_binary(binary_model, first)
        later = ref.binary_rows(n=200, seed=17, plans=["late1", "late2"], prefix="late")
        ref.log_binary(binary_model, later)
        other = binary_model.metrics(
            BINARY, start="2026-01-05", end="2026-01-08", segment=f"plan={OTHER_SEGMENT}"
        )
        ref.check(other.iloc[0], ref.expected("binary", later, pred="score", label="churned"))
        late = binary_model.metrics(
            ["count"], start="2026-01-05", end="2026-01-08", segment="plan=late1"
        )
        assert late["n"].iloc[0] == 0


class TestVersions:
    """Each version has its own metrics; version='*' merges all; default is the handle's version."""

    @pytest.fixture
    def two_versions(self, pulse, ref):
        v1 = pulse.model("churn", version="v1", task="binary", prediction="score", label="churned")
        v2 = pulse.model("churn", version="v2")
        d1 = ref.binary_rows(n=300, seed=21, prefix="a")
        d2 = ref.binary_rows(n=250, seed=22, prefix="b")
        d2["score"] = 1.0 - d2["score"]  # a worse model
        ref.log_binary(v1, d1)
        ref.log_binary(v2, d2)
        return v1, v2, d1, d2

    def test_version_selection(self, two_versions, ref):
        v1, v2, d1, d2 = two_versions
        window = ("2026-01-05T04:33:21Z", "2026-01-07T02:07:09Z")
        e1 = ref.expected("binary", ref.window(d1, *window), pred="score", label="churned")
        e2 = ref.expected("binary", ref.window(d2, *window), pred="score", label="churned")
        both = ref.expected(
            "binary", ref.window(pd.concat([d1, d2]), *window), pred="score", label="churned"
        )
        ref.check(
            v1.metrics(BINARY, start=window[0], end=window[1]).iloc[0], e1, where="v1 default"
        )
        ref.check(
            v2.metrics(BINARY, start=window[0], end=window[1]).iloc[0], e2, where="v2 default"
        )
        ref.check(
            v1.metrics(BINARY, start=window[0], end=window[1], version="v2").iloc[0],
            e2,
            where="v1 handle, version=v2",
        )
        ref.check(
            v2.metrics(BINARY, start=window[0], end=window[1], version="*").iloc[0],
            both,
            where="version=*",
        )

    def test_versions_listed_and_unknown_rejected(self, two_versions):
        v1, _v2, _, _ = two_versions
        assert v1.versions() == ["v1", "v2"]
        with pytest.raises(UnknownModelError, match="v9"):
            v1.metrics(["count"], start="2026-01-05", end="2026-01-06", version="v9")

    def test_feedback_through_either_handle_reaches_the_prediction(self, pulse, ref):
        v1 = pulse.model("fb", version="v1", task="binary", prediction="score", label="churned")
        v2 = pulse.model("fb", version="v2")
        d1 = ref.binary_rows(n=100, seed=23, prefix="a")
        v1.log_batch(d1.drop(columns=["churned"]), id="id", timestamp="ts")
        v2.log_feedback_batch(d1[["id", "churned"]], id="id", label="churned")
        frame = v1.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        ref.check(frame.iloc[0], ref.expected("binary", d1, pred="score", label="churned"))
        assert v2.metrics(["count"], start="2026-01-05", end="2026-01-08")["n"].iloc[0] == 0


class TestEdgesFromMinuteProfiles:
    """An edge range holding all or none of its minute's rows is answered from the minute's
    stored profile (the event-time span kept in the core part); others from raw rows."""

    @pytest.fixture
    def minute_model(self, pulse):
        model = pulse.model("edges", task="binary", prediction="score", label="y")
        rng = np.random.default_rng(7)
        n = 60
        ts = pd.Timestamp("2026-03-01T12:00:00Z") + pd.to_timedelta(
            np.sort(rng.uniform(0, 30, n)), unit="s"
        )
        df = pd.DataFrame(
            {
                "id": [f"r{i}" for i in range(n)],
                "ts": ts,
                "score": rng.random(n),
                "y": rng.integers(0, 2, n),
            }
        )
        model.log_batch(df.drop(columns=["y"]), timestamp="ts")
        model.log_feedback_batch(df[["id", "y"]])
        return model, df

    def test_edge_holding_all_rows_needs_no_raw_rows(self, minute_model, monkeypatch):
        from sklearn.metrics import accuracy_score, roc_auc_score

        from mlpulse.engine.query import WindowQuery

        def no_raw_rows(*args, **kwargs):
            raise AssertionError("raw rows were read")

        monkeypatch.setattr(WindowQuery, "_range_rows", no_raw_rows)
        model, df = minute_model
        # head edge [11:00:00.5, 11:01) holds none of 11:00's (absent) rows; tail edge
        # [12:00:00, 12:00:45) holds all of 12:00's rows, which end before 12:00:30
        out = model.metrics(
            ["accuracy", "roc_auc"], start="2026-03-01T11:00:00.5Z", end="2026-03-01T12:00:45Z"
        )
        assert out["n"].iloc[0] == 60 and out["n_labeled"].iloc[0] == 60
        pred = (df["score"] >= 0.5).astype(int)
        assert out["accuracy"].iloc[0] == pytest.approx(accuracy_score(df["y"], pred), abs=1e-12)
        assert out["roc_auc"].iloc[0] == pytest.approx(roc_auc_score(df["y"], df["score"]))

    def test_edge_cutting_through_rows_reads_them(self, minute_model, monkeypatch):
        from mlpulse.engine.query import WindowQuery

        model, df = minute_model
        calls = []
        original = WindowQuery._range_rows

        def counted(self, cur, ranges, needed):
            calls.append(ranges)
            return original(self, cur, ranges, needed)

        monkeypatch.setattr(WindowQuery, "_range_rows", counted)
        end = pd.Timestamp("2026-03-01T12:00:15Z")
        out = model.metrics(["count"], start="2026-03-01T11:00:00Z", end=end)
        assert out["n"].iloc[0] == int((df["ts"] < end).sum())
        assert calls == [[(to_us("2026-03-01T12:00:00Z"), to_us(end))]]

    def test_profiles_without_a_time_span_fall_back_to_raw_rows(self):
        import msgpack

        from mlpulse.profiles.bucket import CoreState

        old = CoreState.from_bytes(
            msgpack.packb(
                {"n": 2, "positives": 1, "prediction": None, "latency": None, "type_errors": {}}
            )
        )
        assert old.first_ts is None and old.last_ts is None
        known = CoreState(n=3, first_ts=10, last_ts=20)
        merged = CoreState.merge_many([known, old])
        assert merged.n == 5 and merged.first_ts is None  # unknown stays unknown
        both = CoreState.merge_many([CoreState(), known, CoreState(n=1, first_ts=5, last_ts=7)])
        assert (both.first_ts, both.last_ts) == (5, 20)


def to_us(value) -> int:
    return int(pd.Timestamp(value).value // 1000)


def test_feature_edges_spanning_many_minutes(pulse):
    """Summary windows with edges of up to 59 minutes each, hundreds of edge minutes in all
    (fetched as one span rather than a listed set): counts and means equal pandas'."""
    model = pulse.model("wide", task="binary", prediction="score")
    rng = np.random.default_rng(11)
    n = 4000
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": pd.Timestamp("2026-04-01T00:00:00Z")
            + pd.to_timedelta(rng.uniform(0, 2 * 86400, n), unit="s"),
            "score": rng.random(n),
            "x": rng.normal(size=n),
        }
    )
    model.log_batch(df, timestamp="ts")
    out = model.summary(start="2026-04-01T00:07:00Z", end="2026-04-02T23:50:00Z", step="59min")
    x = out[out["column"] == "x"]
    assert len(x) > 40
    for _, row in x.iterrows():
        inside = df[(df["ts"] >= row["window_start"]) & (df["ts"] < row["window_end"])]
        assert row["count"] == len(inside)
        assert row["mean"] == pytest.approx(inside["x"].mean(), rel=1e-9, abs=1e-12)


class TestWindowLimits:
    """A window is validated and bounded before any work: times outside years 1-9999 and
    more than 10,000 windows are refused, and a long window costs what the days holding
    data cost (``start=-100000000000h`` grew a server by ~1 GB/s; year 1 to 9999 took 57 s
    and 5 GB)."""

    EVERYTHING = ("2026-01-05T00:00:00Z", "2026-01-08T00:00:00Z")

    @staticmethod
    def measured(fn):
        """(result or exception, seconds, peak traced bytes) of one call."""
        import time
        import tracemalloc

        tracemalloc.start()
        began = time.perf_counter()
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - returned for the caller to check
            out = exc
        seconds = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out, seconds, peak

    @pytest.mark.parametrize(
        ("start", "end"),
        [("-100000000000h", "now"), ("2026-01-05", "+100000000000h"), (-1e20, "now")],
    )
    def test_out_of_range_times_are_refused_at_once(self, binary_data, start, end):
        model, _ = binary_data
        out, seconds, peak = self.measured(
            lambda: model.metrics(["count", "accuracy"], start=start, end=end)
        )
        assert isinstance(out, ConfigError), out
        assert "out of range" in str(out) and "0001-01-01 to 9999-12-31" in str(out)
        assert seconds < 2.0 and peak < 5_000_000

    def test_year_1_to_9999_equals_the_window_over_the_data(self, binary_data):
        model, _ = binary_data
        out, seconds, peak = self.measured(
            lambda: model.metrics(BINARY, start="0001-01-01", end="9999-12-31")
        )
        assert not isinstance(out, Exception), out
        assert seconds < 2.0 and peak < 50_000_000, (seconds, peak)
        expected = model.metrics(BINARY, start=self.EVERYTHING[0], end=self.EVERYTHING[1])
        bounds = ["window_start", "window_end"]
        pd.testing.assert_frame_equal(out.drop(columns=bounds), expected.drop(columns=bounds))
        assert out["n"].iloc[0] == 700
        assert out["window_start"].iloc[0] == pd.Timestamp("0001-01-01", tz="UTC")

    def test_long_window_with_unaligned_edges_inside_the_data(self, binary_data):
        """Clamping keeps edges inside the data exact: year 1 to a mid-minute instant."""
        model, df = binary_data
        end = "2026-01-06T11:11:11.5Z"
        wide = model.metrics(BINARY, start="0001-01-01", end=end)
        narrow = model.metrics(BINARY, start=self.EVERYTHING[0], end=end)
        bounds = ["window_start", "window_end"]
        pd.testing.assert_frame_equal(wide.drop(columns=bounds), narrow.drop(columns=bounds))
        assert wide["n"].iloc[0] == (df["ts"] < pd.Timestamp(end)).sum()

    def test_summary_drift_and_quality_over_the_longest_window(self, binary_data):
        model, _ = binary_data
        whole = {"start": "0001-01-01", "end": "9999-12-31"}
        data = {"start": self.EVERYTHING[0], "end": self.EVERYTHING[1]}
        # correctness only: how long these take is timed by benchmarks/bench_query.py (its
        # "longest window" figures), not here, where a loaded machine made a bound flaky; and
        # no tracemalloc (nothing here asserts memory), which slowed each call several times
        for query in (model.summary, model.quality):
            out = query(**whole)
            frame = out if isinstance(out, pd.DataFrame) else out.to_pandas()
            expected = query(**data)
            expected = expected if isinstance(expected, pd.DataFrame) else expected.to_pandas()
            bounds = [c for c in ("window_start", "window_end") if c in frame.columns]
            pd.testing.assert_frame_equal(frame.drop(columns=bounds), expected.drop(columns=bounds))
        # the baseline from year 1, the current window to year 9999, cut into 9,131 steps
        against = {"start": "0001-01-01", "end": "2026-01-06"}
        stepped = model.drift(**whole, against=against, step="400d")
        assert len(stepped.windows) == 9_131 and stepped.windows["n"].sum() == 700
        expected = model.drift(**data, against={"start": "2026-01-05", "end": "2026-01-06"})
        got = model.drift(**whole, against=against).to_pandas()
        pd.testing.assert_frame_equal(got, expected.to_pandas())

    def test_too_many_windows_name_the_limit(self, binary_data):
        model, _ = binary_data
        out, seconds, peak = self.measured(
            lambda: model.metrics(["count"], start="0001-01-01", end="9999-12-31", step="1d")
        )
        assert isinstance(out, ConfigError), out
        assert "3,652,058 windows" in str(out) and "at most 10,000" in str(out)
        assert seconds < 2.0 and peak < 5_000_000
        with pytest.raises(ConfigError, match="at most 10,000"):
            model.drift(start="2026-01-01", end="2026-03-01", step="1min",
                        against={"start": "2025-12-01", "end": "2026-01-01"})

    def test_many_windows_over_a_long_span_cost_what_the_data_costs(self, binary_data):
        model, _ = binary_data
        out, seconds, _peak = self.measured(
            lambda: model.metrics(["count", "accuracy"], start="0001-01-01", end="9999-12-31",
                                  step="400d")
        )
        assert not isinstance(out, Exception), out
        assert len(out) == 9_131 and out["n"].sum() == 700
        assert seconds < 5.0
