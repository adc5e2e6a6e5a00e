"""Multiclass CBPE and direct loss estimation, on scikit-learn's bundled data: estimate
before the labels arrive, reveal them, compare with what ``model.metrics`` realises; the
honesty verdict stays silent on clean splits and fires when the errors change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_digits, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlpulse
from mlpulse.estimation.multiclass import MulticlassCBPE

BASE = pd.Timestamp("2026-04-01T00:00:00Z")


def _windows(model, frame: pd.DataFrame, label: str, hours: int) -> pd.DataFrame:
    """Log ``frame`` (without its labels) spread over ``hours``; return it with ids."""
    cur = frame.reset_index(drop=True)
    cur["id"] = [f"i{i}" for i in range(len(cur))]
    cur["ts"] = BASE + pd.to_timedelta(np.linspace(0, hours * 3600 - 1, len(cur)), unit="s")
    model.log_batch(cur.drop(columns=label), id="id", timestamp="ts")
    return cur


def _classified(loader, n_fit: int, n_ref: int, seed: int, proba: bool):
    data = loader()
    x = pd.DataFrame(data.data[:, :8], columns=[f"f{i}" for i in range(8)])
    y = np.array([f"c{v}" for v in data.target], dtype=object)
    order = np.random.default_rng(seed).permutation(len(y))
    fit, ref, cur = order[:n_fit], order[n_fit : n_fit + n_ref], order[n_fit + n_ref :]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x.iloc[fit], y[fit])
    probabilities = clf.predict_proba(x)
    frame = x.assign(pred=clf.classes_[probabilities.argmax(axis=1)], label=y)
    if proba:
        for j, c in enumerate(clf.classes_):
            frame[f"proba_{c}"] = probabilities[:, j]
    return frame.iloc[ref], frame.iloc[cur]


class TestMulticlassCBPE:
    """Digits (10 classes): estimates of accuracy and macro F1 track the realised values,
    with and without the class probabilities logged; wine stays silent."""

    @pytest.mark.parametrize("proba", [True, False])
    def test_tracks_realised_digits(self, proba: bool) -> None:
        ref, cur = _classified(load_digits, 600, 500, 0, proba)
        with mlpulse.connect(":memory:") as pulse:
            model = pulse.model("digits", task="multiclass", reference=ref, prediction="pred",
                                label="label")  # fmt: skip
            cur = _windows(model, cur, "label", 2)
            window = {"start": BASE, "end": BASE + pd.Timedelta("2h"), "step": "1h"}
            est = model.estimate(band=True, **window)
            model.log_feedback_batch(cur[["id", "label"]], id="id", label="label")
            real = model.metrics(["accuracy", "f1_macro", "recall_macro"], **window)
            after = model.estimate(**window)
        for m in ("accuracy", "f1_macro", "recall_macro"):
            error = (est[m] - real[m]).abs()
            # windows of ~350 rows: the realised accuracy's own sd is about 0.025
            assert error.max() < 0.06, (m, error.tolist())
        assert not est.estimate_warning.any() and not after.estimate_warning.any()
        assert list(est.columns[:10]) == [
            "window_start", "window_end", "n", "n_labeled", "accuracy", "precision_macro",
            "recall_macro", "f1_macro", "f1_micro", "f1_weighted",
        ]  # fmt: skip

    def test_silent_on_wine_splits(self) -> None:
        reasons = []
        for seed in range(3):
            ref, cur = _classified(load_wine, 60, 60, seed, proba=True)
            with mlpulse.connect(":memory:") as pulse:
                model = pulse.model("wine", task="multiclass", reference=ref, prediction="pred",
                                    label="label")  # fmt: skip
                cur = _windows(model, cur, "label", 1)
                model.log_feedback_batch(cur[["id", "label"]], id="id", label="label")
                reasons += model.estimate(start=BASE, end=BASE + pd.Timedelta("1h"))[
                    "estimate_reason"
                ].tolist()
        assert not any(reasons), reasons

    def test_expected_confusion_matches_simulation(self) -> None:
        """Without probabilities, the point estimate is the expectation of the confusion
        under P(label | predicted class)."""
        rng = np.random.default_rng(0)
        classes = np.array(["a", "b", "c"], dtype=object)
        y = rng.choice(classes, 5000, p=[0.5, 0.3, 0.2])
        pred = np.where(rng.uniform(size=5000) < 0.7, y, rng.choice(classes, 5000))
        est = MulticlassCBPE(draws=400).fit(pred, y)
        window = rng.choice(classes, 800, p=[0.2, 0.3, 0.5])
        got = est.estimate(window)
        given = {c: pd.Series(y[pred == c]).value_counts(normalize=True) for c in classes}
        expected_acc = np.mean([given[c].get(c, 0.0) for c in window])
        assert got["accuracy"].value == pytest.approx(expected_acc, rel=1e-9)
        assert got["accuracy"].lower < expected_acc < got["accuracy"].upper


class TestDirectLossEstimation:
    """Diabetes (442 rows, a ridge regression): DLE's MAE and RMSE track the realised values
    on clean splits without warning, and disagree loudly when the labels shift."""

    def test_tracks_realised_and_warns_on_changed_errors(self) -> None:
        data = load_diabetes(as_frame=True)
        errors, warned = [], []
        for seed in range(2):
            order = np.random.default_rng(seed).permutation(len(data.target))
            fit, ref, cur = order[:120], order[120:300], order[300:]
            clf = Ridge(alpha=1.0).fit(data.data.iloc[fit], data.target.iloc[fit])
            frame = data.data.assign(pred=clf.predict(data.data), label=data.target)
            # the second hour's outcomes drift (+150, two sd of the label): the model's errors grow, unseen
            late = np.arange(len(cur)) >= len(cur) // 2
            current = frame.iloc[cur].copy()
            current.loc[late, "label"] += 150.0
            with mlpulse.connect(":memory:") as pulse:
                model = pulse.model("diabetes", task="regression", reference=frame.iloc[ref],
                                    prediction="pred", label="label")  # fmt: skip
                current = _windows(model, current, "label", 2)
                window = {"start": BASE, "end": BASE + pd.Timedelta("2h"), "step": "1h"}
                est = model.estimate(band=True, **window)
                model.log_feedback_batch(current[["id", "label"]], id="id", label="label")
                real = model.metrics(["mae", "rmse"], **window)
                after = model.estimate(**window)
            errors.append(abs(est.mae[0] - real.mae[0]) / real.mae[0])
            errors.append(abs(est.rmse[0] - real.rmse[0]) / real.rmse[0])
            warned.append((bool(est.estimate_warning[0]), bool(after.estimate_warning[0])))
            assert after.estimate_warning[1], after.estimate_reason.tolist()
            assert "mae realised" in after.estimate_reason[1]
            assert real.mae[1] > est.mae_upper[1]  # the band did not cover the changed hour
        # about 70 rows an hour: the realised MAE's own sd is about 7% of it
        assert max(errors) < 0.2, errors
        assert warned == [(False, False), (False, False)]
