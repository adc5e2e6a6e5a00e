"""Thresholds from a baseline: the reference's value and band, and the previous version.

Reference values are compared with scikit-learn on the same rows and with ``model.metrics()``
on the reference logged as traffic; bands with the binomial standard error and with the
breach rate of many windows drawn from one population.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from scipy.stats import norm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlpulse
from mlpulse.alerts import baseline
from mlpulse.alerts.baseline import (
    Band,
    baseline_threshold,
    check_baseline,
    reference_band,
    sample_size,
)
from mlpulse.alerts.rules import Rule, rule_from_dict
from mlpulse.errors import RuleError

BASE = pd.Timestamp("2026-01-05T00:00:00Z")


def _fitted(x: pd.DataFrame, y: np.ndarray, task: str) -> pd.DataFrame:
    """Rows not used for fitting (two thirds), with ``score`` and ``label``."""
    order = np.random.default_rng(0).permutation(len(x))
    train, rest = order[: len(x) // 3], order[len(x) // 3 :]
    if task == "regression":
        score: Any = Ridge().fit(x.iloc[train], y[train]).predict(x)
    else:
        fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        fitted.fit(x.iloc[train], y[train])
        score = fitted.predict_proba(x)[:, 1] if task == "binary" else fitted.predict(x)
    return x.iloc[:, :5].assign(score=score, label=y).iloc[rest].reset_index(drop=True)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    x = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    return _fitted(x, data.target.to_numpy(), "binary")


@pytest.fixture(scope="module")
def digits() -> pd.DataFrame:
    data = load_digits(as_frame=True)
    return _fitted(data.data, data.target.to_numpy().astype(str), "multiclass")


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    data = load_diabetes(as_frame=True)
    return _fitted(data.data, data.target.to_numpy(), "regression")


def rule(metric: str, op: str = "<", **extra: Any) -> Rule:
    fields = {"baseline": "reference", **extra}
    return rule_from_dict({"name": "r", "model": "m", "metric": metric, "op": op, **fields})


def band(pulse: Any, metric: str, rows: int, name: str = "m") -> Band:
    found = reference_band(pulse.service, name, "v1", metric, rows)
    assert found is not None
    return found


def register(pulse: Any, ref: pd.DataFrame, task: str, name: str = "m") -> Any:
    classes = sorted(ref.label.unique()) if task == "multiclass" else None
    return pulse.model(name, "v1", task=task, reference=ref, prediction="score", classes=classes)


class TestReferenceValue:
    """The baseline value is the metric of the reference rows, as scikit-learn computes it."""

    def test_binary_matches_sklearn(self, pulse, cancer) -> None:
        register(pulse, cancer, "binary")
        y, s = cancer.label.to_numpy(), cancer.score.to_numpy()
        expected = {
            "accuracy": skm.accuracy_score(y, s >= 0.5),
            "precision": skm.precision_score(y, s >= 0.5),
            "recall": skm.recall_score(y, s >= 0.5),
            "f1": skm.f1_score(y, s >= 0.5),
            "roc_auc": skm.roc_auc_score(y, s),
            "log_loss": skm.log_loss(y, s),
            "brier": skm.brier_score_loss(y, s),
            "positive_rate": float(np.mean(s >= 0.5)),
            "prediction_mean": float(np.mean(s)),
        }
        for metric, value in expected.items():
            assert band(pulse, metric, 100).value == pytest.approx(value, abs=1e-12), metric

    def test_multiclass_matches_sklearn(self, pulse, digits) -> None:
        register(pulse, digits, "multiclass")
        y, p = digits.label, digits.score
        assert band(pulse, "accuracy", 100).value == pytest.approx(skm.accuracy_score(y, p))
        for average in ("macro", "weighted"):
            expected = skm.f1_score(y, p, average=average)
            assert band(pulse, f"f1_{average}", 100).value == pytest.approx(expected)

    def test_regression_matches_sklearn(self, pulse, diabetes) -> None:
        register(pulse, diabetes, "regression")
        y, p = diabetes.label, diabetes.score
        assert band(pulse, "mae", 50).value == pytest.approx(skm.mean_absolute_error(y, p))
        rmse = math.sqrt(skm.mean_squared_error(y, p))
        assert band(pulse, "rmse", 50).value == pytest.approx(rmse)
        assert band(pulse, "r2", 50).value == pytest.approx(skm.r2_score(y, p))

    def test_same_as_metrics_of_the_reference_logged_as_traffic(self, pulse, cancer) -> None:
        """Same state builders, same functions: the value is what model.metrics() shows (sums
        of floats up to their order)."""
        model = register(pulse, cancer, "binary")
        rows = cancer.assign(id=[f"r{i}" for i in range(len(cancer))], timestamp=BASE)
        model.log_batch(rows.drop(columns="label"), id="id", timestamp="timestamp")
        model.log_feedback_batch(rows[["id", "label"]], id="id", label="label")
        names = ["accuracy", "f1", "roc_auc", "pr_auc", "log_loss", "positive_rate"]
        shown = model.metrics(names, start=BASE, end=BASE + pd.Timedelta(hours=1)).iloc[0]
        for metric in names:
            assert band(pulse, metric, 100).value == pytest.approx(shown[metric], rel=1e-12), metric

    def test_rows_ingest_would_quarantine_are_left_out(self, pulse, cancer) -> None:
        """A missing score or label, a score outside [0, 1], a label other than 0/1."""
        bad = cancer.head(4).assign(score=[np.nan, 1.5, 0.2, 0.9], label=[1.0, 0.0, np.nan, 2.0])
        ref = pd.concat([cancer.astype({"label": float}), bad], ignore_index=True)
        register(pulse, ref, "binary")
        y, s = cancer.label.to_numpy(), cancer.score.to_numpy()
        found = band(pulse, "roc_auc", 100)
        assert found.value == pytest.approx(skm.roc_auc_score(y, s))
        assert found.n_reference == len(cancer)

    def test_text_labels_read_as_ingest_reads_them(self, pulse, cancer) -> None:
        ref = cancer.assign(label=np.where(cancer.label == 1, " True", "false"))
        register(pulse, ref, "binary")
        expected = skm.accuracy_score(cancer.label, cancer.score >= 0.5)
        assert band(pulse, "accuracy", 100).value == pytest.approx(expected)


class TestBand:
    """The band is the spread of the metric over windows of the current size."""

    def test_accuracy_band_is_the_binomial_standard_error(self, pulse) -> None:
        """Bootstrap sd of accuracy at m rows ~ sqrt(p(1-p)/m), to the bootstrap's 10%."""
        rng = np.random.default_rng(1)
        s = rng.uniform(size=20_000)
        ref = pd.DataFrame({"score": s, "label": (rng.uniform(size=len(s)) < s).astype(int)})
        register(pulse, ref, "binary")
        p = skm.accuracy_score(ref.label, ref.score >= 0.5)
        for rows in (32, 128, 512):
            found = band(pulse, "accuracy", rows)
            binomial = math.sqrt(p * (1 - p) / rows) * math.sqrt(1 + rows / len(ref))
            assert found.sd == pytest.approx(binomial, rel=0.1), rows

    def test_band_shrinks_like_one_over_sqrt_rows(self, pulse, cancer) -> None:
        """Quadrupling the rows halves the band (while the reference is much larger than the
        window, ROC AUC included)."""
        big = pd.concat([cancer] * 50, ignore_index=True)  # its sampling spread, 50x rows
        register(pulse, big, "binary")
        for metric in ("accuracy", "roc_auc", "log_loss"):
            sds = [band(pulse, metric, rows).sd for rows in (32, 128, 512)]
            ratios = [sds[0] / sds[1], sds[1] / sds[2]]
            assert ratios == pytest.approx([2.0, 2.0], rel=0.15), (metric, sds)

    def test_large_windows_are_limited_by_the_reference(self, pulse, cancer) -> None:
        """Beyond the reference's size the band stops shrinking: the reference value is
        itself uncertain (sd of a difference of two samples)."""
        register(pulse, cancer, "binary")
        n = len(cancer)
        small, large = band(pulse, "accuracy", n), band(pulse, "accuracy", 100 * n)
        assert large.sd == pytest.approx(small.sd / math.sqrt(2) * math.sqrt(1.01), rel=1e-9)

    def test_breach_rate_matches_the_band(self, pulse) -> None:
        """Clean windows from the reference's population breach a 2-sd band about 2.3% of
        the time, over fresh references as well as fresh windows (the band counts the
        reference's own sampling error)."""
        rng = np.random.default_rng(2)
        rates = []
        for i in range(16):
            s = rng.uniform(size=1500)
            ref = pd.DataFrame({"score": s, "label": (rng.uniform(size=1500) < s).astype(int)})
            register(pulse, ref, "binary", name=f"m{i}")
            threshold = band(pulse, "accuracy", 300, name=f"m{i}").threshold("<", 0.0, 2.0)
            w = rng.uniform(size=(100, 300))  # 100 windows of 300 rows
            accuracy = ((rng.uniform(size=w.shape) < w) == (w >= 0.5)).mean(axis=1)
            rates.append(np.mean(accuracy < threshold))
        assert norm.sf(2.0) / 2 < np.mean(rates) < norm.sf(2.0) * 2, rates

    def test_deterministic(self, cancer) -> None:
        """Two stores with the same reference give the same thresholds."""
        out = []
        for _ in range(2):
            pulse = mlpulse.connect(":memory:")
            register(pulse, cancer, "binary")
            out.append([band(pulse, m, 64).sd for m in ("accuracy", "roc_auc", "estimate:roc_auc")])
            pulse.close()
        assert out[0] == out[1]

    def test_threshold_direction_tolerance_and_width(self) -> None:
        b = Band(value=0.8, sd=0.02, rows=100, n_reference=1000)
        assert b.threshold("<", 0.0, 3.0) == pytest.approx(0.74)
        assert b.threshold("<=", 0.01, 3.0) == pytest.approx(0.73)
        assert b.threshold(">", 0.01, 1.0) == pytest.approx(0.83)
        assert b.threshold(">=", 0.0, 0.0) == 0.8

    def test_sample_size_is_a_power_of_two(self) -> None:
        assert [sample_size(n) for n in (0, 20, 24, 700, 10**9)] == [16, 16, 32, 512, 512]

    def test_memoised_until_the_reference_changes(self, pulse, cancer, monkeypatch) -> None:
        """A round of many rules computes each band once; a new reference recomputes it."""
        calls: list[tuple[str, int]] = []
        real = baseline._bootstrap

        def counted(*args: Any) -> Any:
            calls.append(args[-2:])
            return real(*args)

        monkeypatch.setattr(baseline, "_bootstrap", counted)
        register(pulse, cancer, "binary")
        for _ in range(100):  # a round of 300 rules
            first = [band(pulse, m, 200) for m in ("accuracy", "roc_auc", "f1")]
        assert calls == [("labels", 256)]  # the label metrics share one bootstrap
        band(pulse, "accuracy", 210)  # same power of two
        assert len(calls) == 1
        flipped = cancer.assign(label=1 - cancer.label)
        pulse.model("m", "v1", reference=flipped)
        again = band(pulse, "accuracy", 200)
        assert len(calls) == 2
        assert again.value == pytest.approx(1 - first[0].value)

    def test_estimate_is_centred_on_the_reference_estimate(self, pulse, cancer) -> None:
        """CBPE's estimate on the reference itself is what a clean window converges to."""
        from mlpulse.estimation.cbpe import CBPE

        register(pulse, cancer, "binary")
        est = CBPE(threshold=0.5).fit(cancer.score, cancer.label)
        found = band(pulse, "estimate:roc_auc", 100)
        assert found.value == pytest.approx(est.estimate(cancer.score)["roc_auc"].value)
        # the estimate varies less than the realised metric (labels add their noise)
        assert 0 < found.sd < band(pulse, "roc_auc", 100).sd


class TestNoBaseline:
    """Where no baseline can be derived the threshold is NaN: the rule is not judged."""

    def test_no_reference(self, pulse) -> None:
        pulse.model("m", "v1", task="binary", prediction="score")
        spec = pulse.service.spec("m")
        got = baseline_threshold(pulse.service, rule("accuracy"), spec, "v1", 0, 100)
        assert all(math.isnan(x) for x in got)

    def test_reference_without_labels(self, pulse, cancer) -> None:
        """Label metrics and estimates need the label; prediction_mean does not."""
        register(pulse, cancer.drop(columns="label"), "binary")
        spec = pulse.service.spec("m")
        for metric in ("accuracy", "estimate:roc_auc"):
            got = baseline_threshold(pulse.service, rule(metric), spec, "v1", 0, 100)
            assert all(math.isnan(x) for x in got), metric
        threshold, value = baseline_threshold(
            pulse.service, rule("prediction_mean", ">"), spec, "v1", 0, 100
        )
        assert value == pytest.approx(cancer.score.mean()) and threshold > value

    def test_no_rows(self, pulse, cancer) -> None:
        register(pulse, cancer, "binary")
        spec = pulse.service.spec("m")
        assert math.isnan(baseline_threshold(pulse.service, rule("f1"), spec, "v1", 0, 0)[0])

    def test_estimate_of_a_regression_model(self, pulse, diabetes) -> None:
        register(pulse, diabetes, "regression")
        spec = pulse.service.spec("m")
        got = baseline_threshold(pulse.service, rule("estimate:roc_auc"), spec, "v1", 0, 50)
        assert math.isnan(got[0])

    def test_later_version_uses_the_latest_reference(self, pulse, cancer) -> None:
        register(pulse, cancer, "binary")
        pulse.model("m", "v2")
        found = reference_band(pulse.service, "m", "v2", "accuracy", 100)
        assert found is not None and found.value == band(pulse, "accuracy", 100).value


class TestSegment:
    """A segment's rule is compared with the same segment of the reference."""

    def test_segment_of_the_reference(self, pulse, ref) -> None:
        rows = ref.binary_rows(1200, seed=4).drop(columns=["id", "ts", "latency_ms"])
        # the "pro" slice is scored much better than the rest (95% right)
        pro = rows.plan == "pro"
        right = np.random.default_rng(0).uniform(size=pro.sum()) < 0.95
        rows.loc[pro, "score"] = np.where((rows.churned[pro] == 1) == right, 0.9, 0.1)
        pulse.model(
            "m", "v1", task="binary", reference=rows, prediction="score", label="churned",
            segments=["plan"],
        )  # fmt: skip
        spec = pulse.service.spec("m")
        segment = rule("accuracy", segment="plan=pro")
        threshold, value = baseline_threshold(pulse.service, segment, spec, "v1", 0, 100)
        sub = rows[pro]
        assert value == pytest.approx(skm.accuracy_score(sub.churned, sub.score >= 0.5))
        assert value > 0.9 and threshold < value
        whole = baseline_threshold(pulse.service, rule("accuracy"), spec, "v1", 0, 100)[1]
        expected = skm.accuracy_score(rows.churned, rows.score >= 0.5)
        assert whole == pytest.approx(expected) and whole < 0.9
        free = reference_band(pulse.service, "m", "v1", "roc_auc", 100, "plan=free")
        sub = rows[rows.plan == "free"]
        assert free is not None
        assert free.value == pytest.approx(skm.roc_auc_score(sub.churned, sub.score))
        assert free.n_reference == len(sub)

    def test_perfect_reference_has_no_band(self, pulse, cancer) -> None:
        """Every sample of a perfect reference scores 1.0: no spread, so no threshold (one
        error in a window would otherwise breach it)."""
        perfect = cancer.assign(score=cancer.label.astype(float))
        register(pulse, perfect, "binary")
        spec = pulse.service.spec("m")
        got = baseline_threshold(pulse.service, rule("accuracy"), spec, "v1", 0, 100)
        assert all(math.isnan(x) for x in got)

    def test_reference_without_the_segment_column(self, pulse, cancer) -> None:
        pulse.model(
            "m", "v1", task="binary", reference=cancer, prediction="score", segments=["plan"]
        )
        spec = pulse.service.spec("m")
        got = baseline_threshold(
            pulse.service, rule("accuracy", segment="plan=pro"), spec, "v1", 0, 100
        )
        assert all(math.isnan(x) for x in got)


class TestCheckBaseline:
    """Values that are comparisons already, or have no reference counterpart, are refused."""

    @pytest.mark.parametrize(
        "metric", ["drift_share", "drift:age", "quality_violations", "quality:age"]
    )
    def test_analyses_take_a_fixed_threshold(self, metric: str) -> None:
        for which in ("reference", "previous_version"):
            with pytest.raises(RuleError, match=r"rule 'r': field 'baseline'"):
                check_baseline(rule(metric, ">", baseline=which))

    @pytest.mark.parametrize("metric", ["count", "label_coverage", "latency_p99"])
    def test_reference_has_no_time_latency_or_missing_labels(self, metric: str) -> None:
        with pytest.raises(RuleError, match="use 'previous_version'"):
            check_baseline(rule(metric))
        check_baseline(rule(metric, baseline="previous_version"))

    def test_refused_rules_are_not_judged(self, pulse, cancer) -> None:
        register(pulse, cancer, "binary")
        spec = pulse.service.spec("m")
        with pytest.raises(RuleError, match="field 'baseline'"):
            rule("drift_share", ">")  # refused when the rule is loaded
        # and a Rule built around the validation is not judged
        unchecked = Rule(name="r", model="m", metric="drift_share", op=">", baseline="reference")
        got = baseline_threshold(pulse.service, unchecked, spec, "v1", 0, 100)
        assert all(math.isnan(x) for x in got)


class TestPreviousVersion:
    """The previous version's value over the baseline window, -/+ the tolerance."""

    @pytest.fixture
    def versions(self, pulse, ref) -> Any:
        rows = ref.binary_rows(800, seed=3, start=BASE, span=pd.Timedelta(hours=20))
        v1 = pulse.model("m", "v1", task="binary", prediction="score", label="churned")
        v1.log_batch(rows.drop(columns="churned"), id="id", timestamp="ts")
        v1.log_feedback_batch(rows[["id", "churned"]], id="id", label="churned")
        pulse.model("m", "v2")
        return rows

    def at(self, hours: float) -> int:
        return int((BASE + pd.Timedelta(hours=hours)).value // 1000)

    def test_value_and_tolerance(self, pulse, versions) -> None:
        rows = versions
        spec = pulse.service.spec("m")
        last = rows[rows.ts >= BASE + pd.Timedelta(hours=4)]
        expected = skm.roc_auc_score(last.churned, last.score)
        r = rule("roc_auc", baseline="previous_version", tolerance=0.05, baseline_window="20h")
        threshold, value = baseline_threshold(pulse.service, r, spec, "v2", self.at(24), 1)
        assert value == pytest.approx(expected, abs=0.005)
        assert threshold == pytest.approx(value - 0.05)
        up = rule("log_loss", ">", baseline="previous_version", tolerance=0.1)
        threshold, value = baseline_threshold(pulse.service, up, spec, "v2", self.at(24), 1)
        assert threshold == pytest.approx(value + 0.1)

    def test_count_is_per_window_while_it_served(self, pulse, versions) -> None:
        r = rule("count", "<", baseline="previous_version", window="1h", baseline_window="7d")
        spec = pulse.service.spec("m")
        threshold, value = baseline_threshold(pulse.service, r, spec, "v2", self.at(30), 1)
        assert value == pytest.approx(800 / 20, rel=0.15)  # 20 hours of traffic, not 7 days

    def test_first_version_and_too_few_rows(self, pulse, versions) -> None:
        spec = pulse.service.spec("m")
        r = rule("accuracy", baseline="previous_version")
        assert math.isnan(baseline_threshold(pulse.service, r, spec, "v1", self.at(24), 1)[0])
        few = rule("accuracy", baseline="previous_version", min_rows=10_000)
        assert math.isnan(baseline_threshold(pulse.service, few, spec, "v2", self.at(24), 1)[0])
        # a baseline window with none of v1's rows
        late = rule("accuracy", baseline="previous_version", baseline_window="1h")
        assert math.isnan(baseline_threshold(pulse.service, late, spec, "v2", self.at(48), 1)[0])
