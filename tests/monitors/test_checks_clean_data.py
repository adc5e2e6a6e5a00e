"""``model.checks`` stays quiet on clean data and still fails on a real drop (issue 10).

Clean data: real datasets shipped with scikit-learn and statsmodels; a model is fitted on a
random third, the rest is split at random in two many times. The first half (scores and
labels) is the reference, the second is logged as a day of traffic with its labels. Both
halves come from one distribution, so neither ``data_invariants`` nor
``prediction_quality`` may fail, overall or in any segment.

Run as a script (``python tests/monitors/test_checks_clean_data.py``) it prints the
false-alarm rate over the splits; with ``PYTHONPATH`` pointing at an older ``src`` it
measures that version's rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlpulse

BASE = pd.Timestamp("2026-01-05T00:00:00Z")
START, END = "2026-01-05", "2026-01-06"
SPLITS = 10
MONITORS = ["data_invariants", "prediction_quality"]


def breast_cancer() -> dict[str, Any]:
    data = load_breast_cancer(as_frame=True)
    x = data.data.iloc[:, :10].rename(columns=lambda c: c.replace(" ", "_"))
    return {"x": x, "y": data.target.to_numpy(), "task": "binary", "segments": []}


def digits() -> dict[str, Any]:
    data = load_digits(as_frame=True)
    x = data.data.loc[:, data.data.std() > 0].iloc[:, ::4]
    return {"x": x, "y": data.target.to_numpy(), "task": "multiclass", "segments": []}


def diabetes() -> dict[str, Any]:
    data = load_diabetes(as_frame=True, scaled=False)
    x = data.data.assign(sex=data.data.sex.astype(int).astype(str))
    return {"x": x, "y": data.target.to_numpy(), "task": "regression", "segments": ["sex"]}


def fair() -> dict[str, Any]:
    """statsmodels' Fair affairs survey (6,366 rows), segmented by occupation: slices from
    a dozen to about a thousand labeled rows."""
    sm = pytest.importorskip("statsmodels.datasets")
    data = sm.fair.load_pandas().data
    x = data.drop(columns="affairs").assign(
        occupation=data.occupation.astype(int).astype(str),
        religious=data.religious.astype(int).astype(str),
    )
    y = (data.affairs > 0).to_numpy().astype(int)
    return {"x": x, "y": y, "task": "binary", "segments": ["occupation", "religious"]}


DATASETS: dict[str, Callable[[], dict[str, Any]]] = {
    "breast_cancer": breast_cancer,
    "digits": digits,
    "diabetes": diabetes,
    "fair": fair,
}


def scored(name: str, seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows not used for fitting, with the model's ``score`` and the ``label``."""
    data = DATASETS[name]()
    x, y, task = data["x"], data["y"], data["task"]
    order = np.random.default_rng(seed).permutation(len(x))
    train, rest = order[: len(x) // 3], order[len(x) // 3 :]
    numeric = x.select_dtypes("number")
    if task == "regression":
        score: Any = Ridge().fit(numeric.iloc[train], y[train]).predict(numeric)
    else:
        fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        fitted.fit(numeric.iloc[train], y[train])
        score = (
            fitted.predict_proba(numeric)[:, 1]
            if task == "binary"
            else fitted.predict(numeric).astype(str)
        )
        if task == "multiclass":
            y = y.astype(str)
    frame = x.assign(score=score, label=y).iloc[rest].reset_index(drop=True)
    return frame, data


def register(pulse: Any, name: str, data: dict[str, Any], ref: pd.DataFrame) -> Any:
    classes = sorted(ref.label.unique()) if data["task"] == "multiclass" else None
    return pulse.model(
        name,
        task=data["task"],
        reference=ref,
        prediction="score",
        label="label",
        segments=data["segments"] or None,
        classes=classes,
    )


def log_day(model: Any, cur: pd.DataFrame, seed: int) -> None:
    """The rows as a day of traffic, then their labels."""
    rng = np.random.default_rng(seed)
    rows = cur.reset_index(drop=True).copy()
    rows["id"] = [f"t{seed}_{i}" for i in range(len(rows))]
    # every ten minutes of the day (fewer buckets to write than at random seconds)
    rows["timestamp"] = BASE + pd.to_timedelta(rng.integers(0, 144, len(rows)) * 600, unit="s")
    model.log_batch(rows.drop(columns="label"), id="id", timestamp="timestamp")
    model.log_feedback_batch(rows[["id", "label"]], id="id", label="label")


def split_checks(name: str, splits: int = SPLITS, seed: int = 0):
    """The checks report of each random split."""
    frame, data = scored(name, seed)
    rng = np.random.default_rng(seed + 1)
    pulse = mlpulse.connect(":memory:")
    try:
        for i in range(splits):
            order = rng.permutation(len(frame))
            half = len(frame) // 2
            ref, cur = frame.iloc[order[:half]], frame.iloc[order[half:]]
            model = register(pulse, f"{name}_{i}", data, ref)
            log_day(model, cur, i)
            yield model.checks(START, END, monitors=MONITORS, now="2026-01-06")
    finally:
        pulse.close()


def false_alarms(name: str, splits: int = SPLITS) -> dict[str, int]:
    """Per monitor, the splits in which it failed."""
    failed = dict.fromkeys(MONITORS, 0)
    for report in split_checks(name, splits):
        for monitor in report.failed:
            failed[monitor] += 1
    return failed


class TestCleanData:
    """A second sample of the reference's distribution fails no check."""

    @pytest.mark.parametrize("name", list(DATASETS))
    def test_no_false_alarms(self, name: str) -> None:
        for report in split_checks(name):
            assert report.ok, report.to_pandas().to_string()


def one_split(name: str, change: Callable[[pd.DataFrame], pd.DataFrame], **options: Any):
    """The checks report of one split after ``change`` is applied to the traffic."""
    frame, data = scored(name)
    order = np.random.default_rng(7).permutation(len(frame))
    ref, cur = frame.iloc[order[: len(frame) // 2]], frame.iloc[order[len(frame) // 2 :]]
    pulse = mlpulse.connect(":memory:")
    model = register(pulse, name, data, ref)
    log_day(model, change(cur.reset_index(drop=True)), 0)
    report = model.checks(START, END, monitors=["prediction_quality"], **options)
    pulse.close()
    return report["prediction_quality"]


def reversed_in(column: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Scores reversed (a bug in one client, say) for the rows of one segment."""

    def change(t: pd.DataFrame) -> pd.DataFrame:
        return t.assign(score=t.score.where(t[column] != value, 1.0 - t.score))

    return change


class TestRealDrops:
    """A real drop on enough rows fails the check; a tiny slice cannot fail it alone."""

    def test_large_segment(self) -> None:
        """Scores reversed in occupation 5 (about 250 labeled rows): that segment fails."""
        check = one_split("fair", reversed_in("occupation", "5"))
        assert check.status == "fail", check.detail
        assert "occupation=5" in check.detail and "occupation=3" not in check.detail

    def test_small_segment_alone(self) -> None:
        """Scores reversed in occupation 1 (a dozen labeled rows): not judged by default,
        judged when the minimum is lowered (and found significant at a laxer level); the
        overall drop is too small to fail."""
        counts = scored("fair")[0].occupation.value_counts()
        assert counts["1"] < 2 * 200
        check = one_split("fair", reversed_in("occupation", "1"))
        assert check.status == "pass", check.detail
        assert "fewer than 200 labeled rows not judged" in check.detail
        lowered = one_split(
            "fair", reversed_in("occupation", "1"), min_segment_rows=5, alpha=0.01
        )
        assert lowered.status == "fail" and "occupation=1: roc_auc" in lowered.detail

    def test_bad_options(self) -> None:
        """The new options are checked, and the error names the option."""
        from mlpulse.errors import ConfigError

        pulse = mlpulse.connect(":memory:")
        frame, data = scored("breast_cancer")
        model = register(pulse, "bc", data, frame)
        for options, name in (
            ({"alpha": 0.0}, "alpha"),
            ({"alpha": float("nan")}, "alpha"),
            ({"min_segment_rows": -1}, "min_segment_rows"),
            ({"min_segment_rows": 2.5}, "min_segment_rows"),
        ):
            with pytest.raises(ConfigError, match=name):
                model.checks(START, END, **options)
        pulse.close()

    def test_multiclass_accuracy(self) -> None:
        """A fifth of the predictions shifted to the next digit: accuracy falls by ~0.2."""

        def change(t: pd.DataFrame) -> pd.DataFrame:
            wrong = np.random.default_rng(1).uniform(size=len(t)) < 0.2
            shifted = ((t.score.astype(int) + 1) % 10).astype(str)
            return t.assign(score=t.score.where(~wrong, shifted))

        check = one_split("digits", change)
        assert check.status == "fail" and "accuracy" in check.detail, check.detail

    def test_regression_rmse(self) -> None:
        """Predictions off by a constant 60 on ~150 rows: RMSE grows from ~55 to ~80."""
        check = one_split("diabetes", lambda t: t.assign(score=t.score + 60.0))
        assert check.status == "fail" and "all rows: rmse" in check.detail, check.detail


class TestSignificance:
    """The tests behind the check agree with independent computations on real data."""

    def test_delong_variance(self) -> None:
        """DeLong's variance from per-level counts equals the per-row computation."""
        from mlpulse.monitors.significance import auc_with_variance

        frame, _ = scored("breast_cancer")
        s, y = np.round(frame.score.to_numpy(), 3), frame.label.to_numpy() == 1
        pair = (s[y][:, None] > s[~y][None, :]) + 0.5 * (s[y][:, None] == s[~y][None, :])
        expected = pair.mean(1).var(ddof=1) / y.sum() + pair.mean(0).var(ddof=1) / (~y).sum()
        levels, level = np.unique(s, return_inverse=True)
        auc, var = auc_with_variance(
            np.bincount(level[y], minlength=len(levels)),
            np.bincount(level[~y], minlength=len(levels)),
        )
        assert auc == pytest.approx(pair.mean(), abs=1e-12)
        assert var == pytest.approx(expected, rel=1e-9)

    def test_two_proportions(self) -> None:
        """The accuracy test equals statsmodels' one-sided two-proportion z-test."""
        proportion = pytest.importorskip("statsmodels.stats.proportion")
        from mlpulse.monitors.significance import SliceQuality, drop_pvalue

        for (a, n), (b, m) in [((900, 1000), (24, 30)), ((412, 500), (380, 500))]:
            expected = proportion.proportions_ztest([a, b], [n, m], alternative="larger")[1]
            got = drop_pvalue(
                SliceQuality("accuracy", a / n, n, correct=a),
                SliceQuality("accuracy", b / m, m, correct=b),
            )
            assert got == pytest.approx(expected, rel=1e-9)


if __name__ == "__main__":
    for dataset in DATASETS:
        print(f"{dataset}: failed splits of {SPLITS}: {false_alarms(dataset)}")
