"""Confidence intervals of the metrics: the formulas against independent references, and
coverage by simulation (windows drawn from a population whose metric is known exactly)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import mlpulse
from mlpulse.errors import ConfigError
from mlpulse.metrics import confidence
from mlpulse.profiles import BinaryState
from mlpulse.profiles.classification import MulticlassState, build_binary
from mlpulse.profiles.latency import build_latency
from mlpulse.profiles.regression import build_regression

WINDOWS = 2000


def _coverage(bounds: list[tuple[float, float]], truth: float) -> float:
    arr = np.asarray(bounds, dtype=np.float64)
    ok = np.isfinite(arr).all(axis=1)
    return float(np.mean((arr[ok, 0] <= truth) & (truth <= arr[ok, 1])))


def _binormal_windows(rng, windows: int, sizes: tuple[int, int], d: float, prevalence: float):
    """Labels, logistic scores of N(d * y, 1) and the window of each row."""
    n = rng.integers(*sizes, size=windows)
    group = np.repeat(np.arange(windows), n)
    y = (rng.uniform(size=len(group)) < prevalence).astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(size=len(group)) + d * y)))
    return y, score, group


class TestFormulas:
    """Each interval equals an independent computation of the same method."""

    def test_wilson_matches_statsmodels(self) -> None:
        proportion = pytest.importorskip("statsmodels.stats.proportion")
        for k, n in [(0, 1), (1, 1), (0, 20), (20, 20), (7, 13), (4500, 5000), (1, 1000)]:
            for level in (0.8, 0.95, 0.99):
                lo, hi = confidence.wilson([k], [n], level)
                ref = proportion.proportion_confint(k, n, alpha=1 - level, method="wilson")
                assert lo[0] == pytest.approx(ref[0], abs=1e-12)
                assert hi[0] == pytest.approx(ref[1], abs=1e-12)
        lo, hi = confidence.wilson([0], [0], 0.95)
        assert math.isnan(lo[0]) and math.isnan(hi[0])

    def test_delong_matches_the_pairwise_definition(self) -> None:
        """DeLong's variance from per-score counts equals the O(mn) kernel computation on
        the raw scores, ties included."""
        rng = np.random.default_rng(3)
        y = rng.integers(0, 2, 300)
        s = np.round(rng.normal(0.4 + 0.2 * y, 0.2), 2)  # many ties
        state = BinaryState()
        state.update(y, np.clip(s, 0, 1))
        pos, neg = state.class_counts()
        auc, var = confidence.delong_variance(pos, neg)
        x, w = np.clip(s, 0, 1)[y == 1], np.clip(s, 0, 1)[y == 0]
        kernel = (x[:, None] > w[None, :]) + 0.5 * (x[:, None] == w[None, :])
        v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
        ref_var = v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(w)
        assert auc == pytest.approx(kernel.mean(), abs=1e-12)
        assert var == pytest.approx(ref_var, rel=1e-10)

    def test_auc_interval_edges(self) -> None:
        """A perfect ranking still gets a lower bound below 1; one class gives NaN; the
        interval always holds the estimate."""
        lo, hi = confidence.auc_interval(np.array([0, 0, 5]), np.array([5, 0, 0]), 0.95)
        assert hi == 1.0 and 0.5 < lo < 1.0
        lo, hi = confidence.auc_interval(np.array([0, 3]), np.array([0, 0]), 0.95)
        assert math.isnan(lo) and math.isnan(hi)
        rng = np.random.default_rng(0)
        for _ in range(50):
            pos, neg = rng.integers(0, 4, 8), rng.integers(0, 4, 8)
            if pos.sum() and neg.sum():
                auc, _ = confidence.delong_variance(pos, neg)
                lo, hi = confidence.auc_interval(pos, neg, 0.95)
                assert 0 <= lo <= auc <= hi <= 1

    def test_order_statistic_ranks_cover(self) -> None:
        """P(l <= B < u) >= level for B ~ Binomial(n, q): the distribution-free guarantee."""
        for n in (5, 20, 100, 1000):
            for q in (0.5, 0.95, 0.99):
                lo, hi = confidence.order_statistic_ranks(n, q, 0.95)
                covered = stats.binom.cdf(hi - 1, n, q) - stats.binom.cdf(lo - 1, n, q)
                assert covered >= 0.95 - 1e-12

    def test_bootstrap_is_deterministic_and_brackets_the_value(self) -> None:
        state = MulticlassState()
        rng = np.random.default_rng(1)
        true = rng.choice(np.array(["a", "b", "c"], dtype=object), 400)
        pred = np.where(
            rng.uniform(size=400) < 0.7,
            true,
            rng.choice(np.array(["a", "b", "c"], dtype=object), 400),
        )
        state.update(true, pred)
        from sklearn.metrics import f1_score

        value = f1_score(true.astype(str), pred.astype(str), average="macro")
        a = confidence.interval("f1_macro", "multiclass", None, state, 400, 400, 0.95)
        b = confidence.interval("f1_macro", "multiclass", None, state, 400, 400, 0.95)
        assert a == b and a[0] < value < a[1]

    def test_bad_level(self) -> None:
        for bad in (0, 1, 1.5, -0.1, "0.95", True):
            with pytest.raises(ConfigError, match="ci must be"):
                confidence.check_level(bad)


class TestCoverage:
    """Realised coverage of 95% intervals over 2,000 simulated windows with known truth is
    within 2 points of nominal, small windows (20-60 rows) included."""

    @pytest.mark.parametrize(
        ("sizes", "d", "prevalence"),
        [
            ((20, 61), 1.19, 0.5),
            ((20, 61), 2.5, 0.5),
            ((20, 61), 1.19, 0.25),
            ((300, 1000), 1.19, 0.3),
        ],
    )
    def test_accuracy_and_roc_auc(self, sizes, d, prevalence) -> None:
        rng = np.random.default_rng(int(d * 100) + sizes[0] + int(prevalence * 10))
        y, score, group = _binormal_windows(rng, WINDOWS, sizes, d, prevalence)
        states = build_binary(y, score, group, WINDOWS)
        # threshold 0.5 is a latent value of 0: a positive is right with P = Phi(d)
        true_acc = prevalence * stats.norm.cdf(d) + (1 - prevalence) * 0.5
        true_auc = stats.norm.cdf(d / math.sqrt(2))
        acc = [confidence.interval("accuracy", "binary", None, s, s.n, s.n, 0.95) for s in states]
        auc = [confidence.interval("roc_auc", "binary", None, s, s.n, s.n, 0.95) for s in states]
        assert 0.93 <= _coverage(acc, true_acc) <= 0.97
        assert 0.93 <= _coverage(auc, true_auc) <= 0.97

    def test_latency_quantiles(self) -> None:
        """Order-statistic intervals of p50 and p95 read from the sketch: at least nominal
        (the method is conservative), within the sketch's 0.5% relative accuracy."""
        rng = np.random.default_rng(5)
        windows = WINDOWS // 2
        n = rng.integers(60, 200, size=windows)
        group = np.repeat(np.arange(windows), n)
        states = build_latency(rng.lognormal(2.0, 0.5, len(group)), group, windows)
        for q in (0.5, 0.95):
            truth = math.exp(2.0 + 0.5 * stats.norm.ppf(q))
            bounds = [confidence._latency_interval(s, q, 0.95) for s in states]
            assert 0.93 <= _coverage(bounds, truth) <= 0.985

    def test_regression_means(self) -> None:
        """t intervals of MAE and mean error from the stored sums of squares."""
        rng = np.random.default_rng(6)
        n = rng.integers(20, 200, size=WINDOWS)
        group = np.repeat(np.arange(WINDOWS), n)
        y = rng.normal(size=len(group))
        pred = y + 0.3 + rng.normal(0, 1.0, len(group))
        states = build_regression(y, pred, group, WINDOWS)
        mae = [confidence.interval("mae", "regression", None, s, s.n, s.n, 0.95) for s in states]
        bias = [
            confidence.interval("mean_error", "regression", None, s, s.n, s.n, 0.95) for s in states
        ]
        # |N(0.3, 1)| has mean sqrt(2/pi) exp(-0.045) + 0.3 (1 - 2 Phi(-0.3))
        true_mae = math.sqrt(2 / math.pi) * math.exp(-0.045) + 0.3 * (1 - 2 * stats.norm.cdf(-0.3))
        assert 0.93 <= _coverage(mae, true_mae) <= 0.97
        assert 0.93 <= _coverage(bias, 0.3) <= 0.97


@pytest.fixture(scope="module")
def model():
    """Breast-cancer tumours scored by a logistic regression, labeled, over ~2 hours."""
    data = load_breast_cancer()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.target))
    fit, rest = order[:200], order[200:]
    clf = LogisticRegression(max_iter=5000).fit(data.data[fit], data.target[fit])
    base = pd.Timestamp("2026-02-01", tz="UTC")
    frame = pd.DataFrame(data.data[rest][:, :4], columns=["a", "b", "c", "d"])
    frame["score"] = clf.predict_proba(data.data[rest])[:, 1]
    frame["id"] = [f"r{i}" for i in range(len(rest))]
    frame["ts"] = base + pd.to_timedelta(np.arange(len(rest)) * 20, unit="s")
    frame["latency_ms"] = rng.lognormal(2, 0.4, len(rest))
    pulse = mlpulse.connect(":memory:")
    model = pulse.model("bc", task="binary", prediction="score", label="y")
    model.log_batch(frame, id="id", timestamp="ts")
    labels = pd.DataFrame({"id": frame["id"], "y": data.target[rest]})
    model.log_feedback_batch(labels, id="id", label="y")
    yield model, base
    pulse.close()


class TestModelMetrics:
    """``model.metrics(ci=...)`` on real data: the columns, their order and their NaNs."""

    def test_columns_follow_each_metric(self, model) -> None:
        m, base = model
        names = ["accuracy", "roc_auc", "count", "latency_p99"]
        plain = m.metrics(names, start=base, end=base + pd.Timedelta("3h"), step="1h")
        with_ci = m.metrics(names, start=base, end=base + pd.Timedelta("3h"), step="1h", ci=0.95)
        assert list(with_ci.columns) == [
            "window_start",
            "window_end",
            "n",
            "n_labeled",
            *[c for name in names for c in (name, f"{name}_lower", f"{name}_upper")],
        ]
        pd.testing.assert_frame_equal(with_ci[list(plain.columns)], plain)
        assert not plain.attrs and with_ci.attrs["ci"]["methods"]["roc_auc"] == "delong-score"
        assert with_ci["count_lower"].isna().all()
        inside = (with_ci.accuracy_lower <= with_ci.accuracy) & (
            with_ci.accuracy <= with_ci.accuracy_upper
        )
        assert inside.all()
        narrower = m.metrics(names, start=base, end=base + pd.Timedelta("3h"), step="1h", ci=0.5)
        assert (
            narrower.roc_auc_upper - narrower.roc_auc_lower
            < with_ci.roc_auc_upper - with_ci.roc_auc_lower
        ).all()

    def test_empty_window_and_bad_level(self, model) -> None:
        m, base = model
        frame = m.metrics(["accuracy", "f1"], start=base - pd.Timedelta("2h"), end=base, ci=0.9)
        assert (
            frame[["accuracy_lower", "accuracy_upper", "f1_lower", "f1_upper"]].isna().all().all()
        )
        with pytest.raises(ConfigError, match="ci must be"):
            m.metrics(["accuracy"], start=base, end=base + pd.Timedelta("1h"), ci=95)
