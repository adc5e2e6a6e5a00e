"""Slice finding on scikit-learn's bundled data: a planted high-error slice ranks first (binary,
regression, multiclass), nothing is reported when errors do not depend on the features, and
the test and the correction equal SciPy's and statsmodels'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from statsmodels.stats.multitest import multipletests

import mlpulse
from mlpulse.errors import ConfigError
from mlpulse.investigate.slices import benjamini_hochberg

T0 = pd.Timestamp("2026-02-01T00:00:00Z")
W = {"start": T0, "end": T0 + pd.Timedelta("1h")}


@pytest.fixture
def pulse():
    p = mlpulse.connect(":memory:")
    yield p
    p.close()


def cancer_features() -> pd.DataFrame:
    x = load_breast_cancer(as_frame=True).data.iloc[:, :10].copy()
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x.assign(plan=np.where(x.mean_texture > 19, "pro", "free"))


def log(pulse, frame: pd.DataFrame, task: str = "binary", name: str = "m", hours: int = 1):
    """Log ``frame`` (``hours`` copies of the data set's rows: one per hour)."""
    frame = frame.copy()
    frame["id"] = [f"r{i}" for i in range(len(frame))]
    per_hour = len(frame) // hours
    offsets = np.tile(np.linspace(0, 3500, per_hour), hours) + np.repeat(np.arange(hours) * 3600, per_hour)
    frame["timestamp"] = T0 + pd.to_timedelta(offsets, unit="s")
    model = pulse.model(name, task=task, prediction="score", label="label")
    model.log_batch(frame.drop(columns="label"), id="id", timestamp="timestamp")
    model.log_feedback_batch(frame[["id", "label"]], id="id", label="label")
    return model


def binary_with_errors(x: pd.DataFrame, error: np.ndarray, rng) -> pd.DataFrame:
    """Labels from the data set; decisions wrong exactly where ``error`` draws say so."""
    y = load_breast_cancer().target
    wrong = rng.uniform(size=len(x)) < error
    decision = np.where(wrong, 1 - y, y)
    score = np.where(decision == 1, rng.uniform(0.5, 1.0, len(x)), rng.uniform(0.0, 0.5, len(x)))
    return x.assign(score=score, label=y)


class TestPlanted:
    """A slice with planted errors ranks first."""

    @pytest.mark.parametrize("seed", range(3))
    def test_binary_conjunction_ranks_first(self, pulse, seed) -> None:
        x = cancer_features()
        rng = np.random.default_rng(seed)
        edge = x.mean_smoothness.quantile(0.25)
        inside = (x.plan == "pro") & (x.mean_smoothness < edge)
        frame = binary_with_errors(x, np.where(inside, 0.6, 0.05), rng)
        out = log(pulse, frame, name=f"m{seed}").slices(**W)
        top = out.iloc[0]
        assert set(top.slice.split(" and ")) == {"plan = pro", f"mean_smoothness < {edge:.6g}"}
        assert {c["column"] for c in top.conditions} == {"plan", "mean_smoothness"}
        assert top.rows == inside.sum() and top.q_value < 1e-6 and top.lift > 3
        assert list(out.columns) == ["slice", "conditions", "rows", "support", "error_rate", "lift",
                                     "p_value", "q_value"]  # fmt: skip

    def test_tiny_extreme_slice_does_not_top(self, pulse) -> None:
        x = cancer_features()
        rng = np.random.default_rng(5)
        big = (x.plan == "pro") & (x.mean_radius < x.mean_radius.quantile(0.25))
        tiny = x.mean_area > x.mean_area.quantile(0.995)  # 3 rows, all wrong
        frame = binary_with_errors(x, np.where(tiny, 1.0, np.where(big, 0.5, 0.05)), rng)
        out = log(pulse, frame).slices(**W, min_support=1)
        assert "plan = pro" in out.slice.iloc[0] and out.rows.iloc[0] >= 30

    def test_regression_high_error_slice(self, pulse) -> None:
        data = load_diabetes(as_frame=True)
        x, y = data.data, data.target.to_numpy()
        rng = np.random.default_rng(2)
        inside = x.bmi.to_numpy() >= np.quantile(x.bmi, 0.75)
        noise = rng.normal(0, 10, len(x)) + np.where(inside, rng.normal(0, 80, len(x)), 0)
        out = log(pulse, x.assign(score=y + noise, label=y), task="regression").slices(**W)
        assert out.slice.iloc[0].startswith("bmi >= ")

    def test_multiclass(self, pulse) -> None:
        data = load_wine(as_frame=True)
        x, y = data.data.iloc[:, :6], data.target.astype(str).to_numpy()
        rng = np.random.default_rng(4)
        inside = x.alcohol.to_numpy() < np.quantile(x.alcohol, 0.25)
        wrong = rng.uniform(size=len(x)) < np.where(inside, 0.7, 0.03)
        pred = np.where(wrong, np.where(y == "0", "1", "0"), y)
        out = log(pulse, x.assign(score=pred, label=y), task="multiclass").slices(**W)
        assert out.slice.iloc[0].startswith("alcohol < ")


class TestSilence:
    """No slice is reported when errors do not depend on the features."""

    def test_random_errors_give_nothing(self, pulse) -> None:
        x = cancer_features()
        splits = 20  # one per hour of one model
        rng = np.random.default_rng(100)
        frame = pd.concat([binary_with_errors(x, np.full(len(x), 0.12), rng) for _ in range(splits)])
        model = log(pulse, frame.reset_index(drop=True), hours=splits)
        found = 0
        for hour in range(splits):
            at = T0 + pd.Timedelta(hours=hour)
            found += not model.slices(at, at + pd.Timedelta("1h")).empty
        assert found <= 1, found


class TestStatistics:
    """The test and the correction equal the reference implementations."""

    def test_fisher_one_sided(self, pulse) -> None:
        x = cancer_features()
        rng = np.random.default_rng(0)
        inside = (x.plan == "pro") & (x.mean_smoothness < x.mean_smoothness.quantile(0.25))
        frame = binary_with_errors(x, np.where(inside, 0.6, 0.05), rng)
        top = log(pulse, frame).slices(**W).iloc[0]
        errors = (frame.score >= 0.5) != (frame.label == 1)
        a, b = errors[inside].sum(), (~errors[inside]).sum()
        c, d = errors[~inside].sum(), (~errors[~inside]).sum()
        want = stats.fisher_exact([[a, b], [c, d]], alternative="greater").pvalue
        assert top.p_value == pytest.approx(want, rel=1e-9)
        assert top.error_rate == pytest.approx(errors[inside].mean()) and top.support == pytest.approx(inside.mean())

    def test_bh_equals_statsmodels(self) -> None:
        p = np.random.default_rng(1).uniform(size=200) ** 3
        assert np.allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
        assert benjamini_hochberg(np.array([])).size == 0

    def test_arguments(self, pulse) -> None:
        model = log(pulse, binary_with_errors(cancer_features(), np.full(569, 0.1), np.random.default_rng(0)))
        with pytest.raises(ConfigError, match="metric='error'"):
            model.slices(**W, metric="accuracy")
        with pytest.raises(ConfigError, match="max_conditions"):
            model.slices(**W, max_conditions=4)
        with pytest.raises(ConfigError, match="min_support"):
            model.slices(**W, min_support=-1)
        assert model.slices(T0 + pd.Timedelta("5h"), T0 + pd.Timedelta("6h")).empty
        three = model.slices(**W, max_conditions=3, alpha=1.0, limit=5)
        assert len(three) == 5
