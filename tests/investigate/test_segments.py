"""Segment ranking: per-segment values equal scikit-learn's on the same rows, contributions sum
exactly to the total change, the degraded segment ranks first, the tests equal statsmodels' and
SciPy's, and the p-values are calibrated on data from one distribution."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from statsmodels.stats.proportion import proportions_ztest

import mlpulse
from mlpulse.errors import ConfigError, UnknownMetricError
from mlpulse.investigate.segments import two_proportion, welch

T0 = pd.Timestamp("2026-02-01T00:00:00Z")
HOUR = pd.Timedelta("1h")


@functools.cache
def _scored() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    x = data.data.iloc[:, :6].copy()
    x.columns = [c.replace(" ", "_") for c in x.columns]
    y = data.target.to_numpy()
    score = LogisticRegression(max_iter=5000).fit(x, y).predict_proba(x)[:, 1]
    return x.assign(score=score, label=y, plan=np.where(x.mean_texture > 19, "pro", "free"))


def cancer(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = _scored().copy()
    frame["id"] = [f"r{i}" for i in range(len(frame))]
    frame["timestamp"] = T0 + pd.to_timedelta(rng.uniform(0, 7200, len(frame)), unit="s")
    return frame


def load(pulse, frame: pd.DataFrame, *, reference=None, task="binary", name="m", segments=("plan",)):
    model = pulse.model(name, task=task, prediction="score", label="label", reference=reference,
                        segments=list(segments))  # fmt: skip
    model.log_batch(frame.drop(columns="label"), id="id", timestamp="timestamp")
    model.log_feedback_batch(frame[["id", "label"]], id="id", label="label")
    return model


@pytest.fixture
def pulse():
    p = mlpulse.connect(":memory:")
    yield p
    p.close()


def degraded() -> pd.DataFrame:
    """The second hour: the 'pro' segment's decisions inverted for half its rows."""
    frame = cancer()
    rng = np.random.default_rng(3)
    late = (frame.timestamp >= T0 + HOUR) & (frame.plan == "pro") & (rng.uniform(size=len(frame)) < 0.5)
    frame.loc[late, "score"] = 1 - frame.loc[late, "score"]
    return frame


class TestSegmentValues:
    """Per-segment values, shares and the decomposition."""

    def test_against_sklearn_and_sum(self, pulse) -> None:
        frame = degraded()
        model = load(pulse, frame)
        against = {"start": T0, "end": T0 + HOUR}
        out = model.segments("accuracy", T0 + HOUR, T0 + 2 * HOUR, against=against)
        assert list(out.columns) == ["segment", "value", "rows", "rows_against", "share",
                                     "share_against", "metric", "metric_against", "change",
                                     "contribution", "p_value"]  # fmt: skip
        assert out.value.iloc[0] == "pro" and out.p_value.iloc[0] < 1e-6
        cur = frame[frame.timestamp >= T0 + HOUR]
        base = frame[frame.timestamp < T0 + HOUR]
        for _, row in out.iterrows():
            c, b = cur[cur.plan == row.value], base[base.plan == row.value]
            assert row.metric == pytest.approx(skm.accuracy_score(c.label, c.score >= 0.5), abs=1e-12)
            assert row.metric_against == pytest.approx(skm.accuracy_score(b.label, b.score >= 0.5), abs=1e-12)
            assert (row.rows, row.rows_against) == (len(c), len(b))
            assert row.share == pytest.approx(len(c) / len(cur))
        total = skm.accuracy_score(cur.label, cur.score >= 0.5) - skm.accuracy_score(base.label, base.score >= 0.5)
        assert out.contribution.sum() == pytest.approx(total, abs=1e-12)
        assert out.attrs["change"] == pytest.approx(total, abs=1e-12)
        realised = model.metrics(["accuracy"], T0 + HOUR, T0 + 2 * HOUR).accuracy.item()
        assert out.attrs["total"] == pytest.approx(realised, abs=1e-12)

    @pytest.mark.parametrize("metric", ["precision", "recall", "f1", "log_loss", "brier", "positive_rate",
                                        "prediction_mean", "label_coverage", "count"])  # fmt: skip
    def test_every_binary_metric_sums(self, pulse, metric) -> None:
        model = load(pulse, degraded())
        out = model.segments(metric, T0 + HOUR, T0 + 2 * HOUR, against={"start": T0, "end": T0 + HOUR})
        want = model.metrics([metric], T0 + HOUR, T0 + 2 * HOUR)[metric].item() - model.metrics(
            [metric], T0, T0 + HOUR)[metric].item()  # fmt: skip
        assert out.contribution.sum() == pytest.approx(want, abs=1e-9)

    def test_regression_mae_and_welch(self, pulse) -> None:
        data = load_diabetes(as_frame=True)
        x, y = data.data, data.target.to_numpy()
        pred = LinearRegression().fit(x, y).predict(x)
        rng = np.random.default_rng(1)
        frame = x.assign(score=pred, label=y, group=np.where(x.sex > 0, "a", "b"))
        frame["id"] = [f"r{i}" for i in range(len(frame))]
        frame["timestamp"] = T0 + pd.to_timedelta(rng.uniform(0, 7200, len(frame)), unit="s")
        late = (frame.timestamp >= T0 + HOUR) & (frame.group == "a")
        frame.loc[late, "score"] += 40.0
        model = load(pulse, frame, task="regression", segments=("group",))
        out = model.segments("mae", T0 + HOUR, T0 + 2 * HOUR, against="previous")
        assert out.value.iloc[0] == "a" and out.attrs["against"] == "previous"
        cur, base = frame[frame.timestamp >= T0 + HOUR], frame[frame.timestamp < T0 + HOUR]
        total = skm.mean_absolute_error(cur.label, cur.score) - skm.mean_absolute_error(base.label, base.score)
        assert out.contribution.sum() == pytest.approx(total, abs=1e-9)
        for _, row in out.iterrows():
            c, b = cur[cur.group == row.value], base[base.group == row.value]
            want = stats.ttest_ind((c.score - c.label).abs(), (b.score - b.label).abs(), equal_var=False)
            assert row.p_value == pytest.approx(want.pvalue, rel=1e-9)


class TestSignificance:
    """The per-segment tests equal the reference implementations."""

    def test_z_matches_statsmodels(self) -> None:
        k1, n1, k0, n0 = np.array([40, 90]), np.array([100, 120]), np.array([55, 80]), np.array([110, 130])
        got = two_proportion(k1, n1, k0, n0)
        for i in range(2):
            want = proportions_ztest([k1[i], k0[i]], [n1[i], n0[i]])[1]
            assert got[i] == pytest.approx(want, rel=1e-12)

    def test_fisher_for_small_counts(self) -> None:
        got = two_proportion(np.array([1]), np.array([6]), np.array([5]), np.array([7]))
        assert got[0] == pytest.approx(stats.fisher_exact([[1, 5], [5, 2]]).pvalue, rel=1e-12)

    def test_edges(self) -> None:
        assert np.isnan(two_proportion(np.array([0]), np.array([0]), np.array([1]), np.array([2]))[0])
        assert two_proportion(np.array([5]), np.array([5]), np.array([9]), np.array([9]))[0] == 1.0
        one = np.array([1.0])
        assert np.isnan(welch(one, one, one, one, one, np.array([5.0]))[0])  # one row
        assert welch(one, 0 * one, 3 * one, one, 0 * one, 3 * one)[0] == 1.0

    def test_calibrated_on_one_distribution(self, pulse) -> None:
        """Two windows drawn from the same rows (20 random splits, each in its own two
        hours of one model): p < 0.05 about 5% of the time."""
        parts = []
        for seed in range(20):
            f = cancer(seed)
            f["timestamp"] += 2 * seed * HOUR
            f["id"] = [f"{seed}-{i}" for i in range(len(f))]
            parts.append(f)
        model = load(pulse, pd.concat(parts, ignore_index=True))
        small = []
        for seed in range(20):
            at = T0 + 2 * seed * HOUR
            out = model.segments("accuracy", at + HOUR, at + 2 * HOUR, against="previous")
            small += (out.p_value < 0.05).tolist()
        assert len(small) == 40 and sum(small) <= 5, sum(small)  # 2 expected


class TestBaselineAndPooling:
    """The baseline chosen, ``__other__`` pooling, missing values, errors."""

    def test_reference_is_the_default_baseline(self, pulse) -> None:
        frame = cancer()
        ref = frame.drop(columns=["id", "timestamp"])
        model = load(pulse, frame, reference=ref)
        out = model.segments("accuracy", T0, T0 + 2 * HOUR)
        assert out.attrs["against"] == "reference"
        pro = ref[ref.plan == "pro"]
        row = out[out.value == "pro"].iloc[0]
        assert row.metric_against == pytest.approx(skm.accuracy_score(pro.label, pro.score >= 0.5))
        assert model.segments("count", T0 + HOUR, T0 + 2 * HOUR).attrs["against"] == "previous"

    def test_cap_pools_other_and_missing_is_a_segment(self, pulse) -> None:
        frame = cancer()
        frame["shop"] = [f"s{i % 60}" for i in range(len(frame))]
        frame.loc[frame.index % 7 == 0, "shop"] = None
        model = load(pulse, frame, segments=("shop",))
        out = model.segments("accuracy", T0 + HOUR, T0 + 2 * HOUR, against="previous")
        assert "__other__" in set(out.value) and out.value.isna().sum() == 1
        assert len(out) <= 52
        cur, base = frame[frame.timestamp >= T0 + HOUR], frame[frame.timestamp < T0 + HOUR]
        total = skm.accuracy_score(cur.label, cur.score >= 0.5) - skm.accuracy_score(base.label, base.score >= 0.5)
        assert out.contribution.sum() == pytest.approx(total, abs=1e-12)

    def test_errors_name_model_and_column(self, pulse) -> None:
        model = load(pulse, cancer())
        with pytest.raises(ConfigError, match="'roc_auc' is not a ratio of sums"):
            model.segments("roc_auc", T0, T0 + HOUR)
        with pytest.raises(UnknownMetricError, match="no metric 'mae'"):
            model.segments("mae", T0, T0 + HOUR)
        with pytest.raises(ConfigError, match=r"model 'm': 'nope' is not a segment column"):
            model.segments("accuracy", T0, T0 + HOUR, segment="nope")
        with pytest.raises(ConfigError, match="against"):
            model.segments("accuracy", T0, T0 + HOUR, against="yesterday")
        with pytest.raises(ConfigError, match="no reference"):
            model.segments("accuracy", T0, T0 + HOUR, against="reference")

    def test_empty_windows(self, pulse) -> None:
        model = load(pulse, cancer())
        out = model.segments("accuracy", T0 + 5 * HOUR, T0 + 6 * HOUR, against="previous")
        assert out.empty and out.attrs["total"] is None
