"""Label-free estimation: withhold the labels, estimate, reveal them, compare.

A logistic regression trained on part of statsmodels' RAND health-insurance data
(20,190 rows, "any doctor visit") scores the rest; the rows arrive ordered by a noisy score,
so each window's case mix differs (a covariate shift that keeps P(label | score), the
assumption CBPE rests on). Estimates must track the realised metrics that
``model.metrics`` computes once the labels arrive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import mlpulse
from mlpulse.errors import ConfigError
from mlpulse.estimation import CBPE

sm_datasets = pytest.importorskip("statsmodels.datasets")
BASE = pd.Timestamp("2026-01-05T00:00:00Z")
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


@pytest.fixture()
def rand_model():
    data = sm_datasets.randhie.load_pandas().data
    y = (data.mdvis > 0).astype(int).to_numpy()
    x = data.drop(columns="mdvis")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data))
    train, ref_idx, cur_idx = order[:4000], order[4000:9000], order[9000:]
    clf = LogisticRegression(max_iter=2000).fit(x.iloc[train], y[train])
    score = clf.predict_proba(x)[:, 1]
    frame = x.assign(score=score, label=y)
    ref = frame.iloc[ref_idx]
    cur = frame.iloc[cur_idx]
    # covariate shift that keeps P(label | score): order the rows by a noisy score
    cur = cur.iloc[np.argsort(cur.score.to_numpy() + rng.normal(0, 0.1, len(cur)))]
    cur = cur.reset_index(drop=True)
    cur["id"] = [f"h{i}" for i in range(len(cur))]
    # ~11,000 rows over 11 hours, in disease-index order: each hour a different case mix
    cur["timestamp"] = BASE + pd.to_timedelta(np.linspace(0, 11 * 3600 - 1, len(cur)), unit="s")
    pulse = mlpulse.connect(":memory:")
    model = pulse.model("rand", task="binary", reference=ref, prediction="score", label="label")
    model.log_batch(cur.drop(columns="label"), id="id", timestamp="timestamp")
    yield model, cur
    pulse.close()


class TestWithholdThenReveal:
    """Estimates made before the labels arrive track the metrics computed after."""

    @pytest.mark.parametrize("mode", ["sketch", "exact"])
    def test_tracks_realised(self, rand_model, mode) -> None:
        model, cur = rand_model
        est = model.estimate(
            METRICS, start=BASE, end=BASE + pd.Timedelta("11h"), step="1h", band=True, mode=mode
        )
        assert (est["n_labeled"] == 0).all()
        assert list(est.columns[:9]) == ["window_start", "window_end", "n", "n_labeled", *METRICS]
        model.log_feedback_batch(cur[["id", "label"]], id="id", label="label")
        real = model.metrics(METRICS, start=BASE, end=BASE + pd.Timedelta("11h"), step="1h")
        assert (est.n == real.n).all()
        for m in METRICS:
            error = (est[m] - real[m]).abs()
            assert error.mean() < 0.03, (m, error.tolist())
            inside = (real[m] >= est[f"{m}_lower"] - 0.01) & (real[m] <= est[f"{m}_upper"] + 0.01)
            assert inside.mean() >= 0.8, (m, inside.tolist())

    def test_same_shape_as_metrics(self, rand_model) -> None:
        model, _ = rand_model
        est = model.estimate(["accuracy", "f1"], start=BASE, end=BASE + pd.Timedelta("2h"))
        real = model.metrics(["accuracy", "f1"], start=BASE, end=BASE + pd.Timedelta("2h"))
        # the metrics frame's columns, then the honesty verdict (docs/estimation.md)
        assert list(est.columns) == [*real.columns, "estimate_warning", "estimate_reason"]
        assert list(est.dtypes)[: len(real.columns)] == list(real.dtypes)
        assert est["estimate_warning"].dtype == bool
        assert "band" in est.attrs

    def test_unknown_metric(self, rand_model) -> None:
        model, _ = rand_model
        with pytest.raises(Exception, match="cannot estimate"):
            model.estimate(["log_loss"], start=BASE, end=BASE + pd.Timedelta("1h"))


class TestCBPE:
    """The estimator itself on scikit-learn's breast-cancer data."""

    def test_expected_confusion(self) -> None:
        """With perfectly calibrated scores the point estimate is the expectation: check
        accuracy against a direct sum, and ROC AUC against scikit-learn on simulated labels."""
        from sklearn.metrics import roc_auc_score

        data = load_breast_cancer()
        clf = LogisticRegression(max_iter=5000).fit(data.data[:300], data.target[:300])
        s = clf.predict_proba(data.data[300:])[:, 1]
        est = CBPE(threshold=0.5).fit(s, data.target[300:])
        p = est.calibrated(s)
        expected_acc = np.mean(np.where(s >= 0.5, p, 1 - p))
        got = est.estimate(s)
        assert got["accuracy"].value == pytest.approx(expected_acc, rel=1e-12)
        rng = np.random.default_rng(0)
        aucs = []
        for _ in range(120):
            y = rng.uniform(size=len(p)) < p
            if 0 < y.sum() < len(y):
                aucs.append(roc_auc_score(y, s))
        assert got["roc_auc"].value == pytest.approx(np.mean(aucs), abs=0.01)
        assert got["roc_auc"].lower <= np.mean(aucs) <= got["roc_auc"].upper

    def test_needs_reference_labels(self) -> None:
        pulse = mlpulse.connect(":memory:")
        model = pulse.model(
            "nolabels",
            task="binary",
            reference=pd.DataFrame({"a": [1.0, 2.0], "score": [0.1, 0.9]}),
            prediction="score",
        )
        with pytest.raises(ConfigError, match="label"):
            model.estimate(["accuracy"], start=BASE, end=BASE + pd.Timedelta("1h"))
        pulse.close()


class TestStoreOwnedCalibrators:
    """A calibrator belongs to the store and the reference it was fitted on."""

    @staticmethod
    def _round(pulse, flipped: bool, rng: np.random.Generator, hour: int = 0) -> tuple:
        score = rng.uniform(0, 1, 2000)
        label = (rng.uniform(0, 1, 2000) < score).astype(int)
        if flipped:  # labels anti-correlated to the score: CBPE's accuracy estimate is ~0.33
            label = 1 - label
        ref = pd.DataFrame({"x": rng.normal(size=2000), "score": score, "label": label})
        model = pulse.model("m", "v1", task="binary", reference=ref, prediction="score")
        cur = pd.DataFrame(
            {
                "id": [f"r{hour}-{i}" for i in range(500)],
                "x": rng.normal(size=500),
                "score": rng.uniform(0, 1, 500),
                "timestamp": BASE
                + pd.Timedelta(hours=hour)
                + pd.to_timedelta(np.arange(500), unit="s"),
            }
        )
        model.log_batch(cur, id="id", timestamp="timestamp")
        start = BASE + pd.Timedelta(hours=hour)
        est = model.estimate("accuracy", start=start, end=start + pd.Timedelta("1h"), mode="exact")
        expected = CBPE(threshold=0.5).fit(score, label.astype(float))
        want = expected.estimate(cur.score.to_numpy())["accuracy"].value
        return float(est.accuracy.iloc[0]), float(want)

    def test_reused_object_ids_never_share_calibrators(self) -> None:
        # issue 9: caches keyed by id(store) handed a dead store's calibrator to a new store
        # that CPython placed at the same address
        rng = np.random.default_rng(3)
        for round_ in range(30):
            pulse = mlpulse.connect(":memory:")
            got, want = self._round(pulse, round_ % 2 == 1, rng)
            pulse.close()
            del pulse
            assert got == pytest.approx(want, abs=1e-9), f"round {round_}"

    def test_replaced_reference_refits(self) -> None:
        """Re-uploading a reference of the same size in the same store refits."""
        rng = np.random.default_rng(4)
        with mlpulse.connect(":memory:") as pulse:
            for hour, flipped in enumerate((False, True, False)):
                got, want = self._round(pulse, flipped, rng, hour)
                assert got == pytest.approx(want, abs=1e-9)
