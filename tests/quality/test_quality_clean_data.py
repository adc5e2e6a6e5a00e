"""Inferred constraints stay quiet on clean data and still catch real problems (issue 10).

Clean data: real datasets shipped with scikit-learn and statsmodels, split at random in two
many times; the first half is the reference, the second is logged as a day of traffic. Both
halves come from one distribution, so no inferred rule should be broken, in the whole day
or in any hour of it. The same columns, corrupted, must still be flagged.

Run as a script (``python tests/quality/test_quality_clean_data.py``) it prints the
false-alarm rate over the splits; with ``PYTHONPATH`` pointing at an older ``src`` it
measures that version's rate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlpulse

BASE = pd.Timestamp("2026-01-05T00:00:00Z")
START, END = "2026-01-05", "2026-01-06"
SPLITS = 10


def _snake(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=lambda c: str(c).replace(" ", "_").replace("/", "_"))


def _with_missing(frame: pd.DataFrame, rates: dict[str, float], seed: int) -> pd.DataFrame:
    """Values missing completely at random, at the same rate in every row: still clean."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for column, rate in rates.items():
        out[column] = out[column].astype(float).mask(rng.uniform(size=len(out)) < rate)
    return out


def breast_cancer() -> tuple[pd.DataFrame, np.ndarray, str]:
    data = load_breast_cancer(as_frame=True)
    return _snake(data.data), data.target.to_numpy(), "binary"


def wine() -> tuple[pd.DataFrame, np.ndarray, str]:
    data = load_wine(as_frame=True)
    return _snake(data.data), (data.target.to_numpy() == 1).astype(int), "binary"


def diabetes() -> tuple[pd.DataFrame, np.ndarray, str]:
    data = load_diabetes(as_frame=True, scaled=False)
    x = _with_missing(_snake(data.data), {"bmi": 0.05, "bp": 0.005}, seed=1)
    return x, data.target.to_numpy(), "regression"


def fair() -> tuple[pd.DataFrame, np.ndarray, str]:
    """statsmodels' Fair affairs survey (6,366 rows): categorical and heavy-tailed columns,
    rare missing values."""
    sm = pytest.importorskip("statsmodels.datasets")
    data = sm.fair.load_pandas().data
    x = data.drop(columns="affairs").assign(
        occupation=data.occupation.astype(int).astype(str),
        religious=data.religious.astype(int).astype(str),
        children=data.children.astype(str),
        affairs_hours=data.affairs,
    )
    x = _with_missing(x, {"educ": 0.03, "age": 0.002}, seed=2)
    return x, (data.affairs > 0).to_numpy().astype(int), "binary"


def anes96() -> tuple[pd.DataFrame, np.ndarray, str]:
    """statsmodels' 1996 election survey: a 24-level income category with rare levels."""
    sm = pytest.importorskip("statsmodels.datasets")
    data = sm.anes96.load_pandas().data
    x = data.drop(columns="vote").assign(
        income=data.income.astype(int).astype(str),
        educ=data.educ.astype(int).astype(str),
        PID=data.PID.astype(int).astype(str),
    )
    return x, data.vote.to_numpy().astype(int), "binary"


DATASETS: dict[str, Callable[[], tuple[pd.DataFrame, np.ndarray, str]]] = {
    "breast_cancer": breast_cancer,
    "wine": wine,
    "diabetes": diabetes,
    "fair": fair,
    "anes96": anes96,
}


def scored(name: str, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """The dataset with a model's ``score`` (fitted on a random third, which is then set
    aside) and ``label``: the rows left to split into reference and traffic."""
    x, y, task = DATASETS[name]()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    train, rest = order[: len(x) // 3], order[len(x) // 3 :]
    numeric = x.select_dtypes("number").fillna(x.select_dtypes("number").median())
    if task == "binary":
        fitted = make_pipeline(StandardScaler(), LogisticRegression())
        fitted.fit(numeric.iloc[train], y[train])
        score = fitted.predict_proba(numeric)[:, 1]
    else:
        score = Ridge().fit(numeric.iloc[train], y[train]).predict(numeric)
    frame = x.assign(score=score, label=y).iloc[rest].reset_index(drop=True)
    return frame, task


def as_traffic(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows logged at random times over one day."""
    rng = np.random.default_rng(seed)
    out = frame.drop(columns="label").reset_index(drop=True)
    out["id"] = [f"t{seed}_{i}" for i in range(len(out))]
    out["timestamp"] = BASE + pd.to_timedelta(rng.uniform(0, 86_399, len(out)), unit="s")
    return out


def split_reports(name: str, splits: int = SPLITS, seed: int = 0):
    """For each random split: (whole-day violations, hourly violations) of the inferred
    rules, as frames of the broken rules."""
    frame, task = scored(name, seed)
    rng = np.random.default_rng(seed + 1)
    pulse = mlpulse.connect(":memory:")
    try:
        for i in range(splits):
            order = rng.permutation(len(frame))
            half = len(frame) // 2
            ref, cur = frame.iloc[order[:half]], frame.iloc[order[half:]]
            model = pulse.model(f"{name}_{i}", task=task, reference=ref, prediction="score")
            model.log_batch(as_traffic(cur, i), id="id", timestamp="timestamp")
            day = model.quality(START, END).violations
            hours = model.quality(START, END, step="1h").violations
            yield day, hours
    finally:
        pulse.close()


def false_alarms(name: str, splits: int = SPLITS) -> tuple[int, int, pd.DataFrame]:
    """(splits with a broken rule in the day, splits with one in some hour, what broke)."""
    day_alarms = hour_alarms = 0
    broken = []
    for day, hours in split_reports(name, splits):
        day_alarms += int(len(day) > 0)
        hour_alarms += int(len(hours) > 0)
        broken += [day.assign(window="day"), hours.assign(window="hour")]
    return day_alarms, hour_alarms, pd.concat(broken, ignore_index=True)


class TestCleanData:
    """A second sample of the reference's distribution breaks no inferred rule."""

    @pytest.mark.parametrize("name", list(DATASETS))
    def test_no_false_alarms(self, name: str) -> None:
        day, hour, broken = false_alarms(name)
        assert (day, hour) == (0, 0), broken[["window", "column", "rule", "violations", "rows"]]


def corrupted(
    name: str, change: Callable[[pd.DataFrame], pd.DataFrame], mode: str = "sketch"
) -> pd.DataFrame:
    """The whole-day quality table after ``change`` is applied to the traffic of one split."""
    frame, task = scored(name)
    order = np.random.default_rng(7).permutation(len(frame))
    ref, cur = frame.iloc[order[: len(frame) // 2]], frame.iloc[order[len(frame) // 2 :]]
    pulse = mlpulse.connect(":memory:")
    model = pulse.model(name, task=task, reference=ref, prediction="score")
    model.log_batch(change(as_traffic(cur, 0)), id="id", timestamp="timestamp")
    out = model.quality(START, END, mode=mode).to_pandas().set_index(["column", "rule"])
    pulse.close()
    return out


def _rows(frame: pd.DataFrame, share: float, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=len(frame)) < share


class TestRealProblems:
    """The same rules still flag data that really changed."""

    def test_unit_bug_leaves_range(self) -> None:
        """A column logged in the wrong unit (x 1000) breaks its range, every row of it."""

        def change(t: pd.DataFrame) -> pd.DataFrame:
            return t.assign(mean_area=t.mean_area * 1000)

        got = corrupted("breast_cancer", change)
        assert got.loc[("mean_area", "range"), "violations"] == got.loc[
            ("mean_area", "range"), "rows"
        ]
        broken = got[got.violations > 0].index.tolist()
        assert broken == [("mean_area", "range")]

    def test_some_rows_far_out(self) -> None:
        """2% of the rows far beyond the reference's range: flagged, and counted."""
        mask: np.ndarray | None = None

        def change(t: pd.DataFrame) -> pd.DataFrame:
            nonlocal mask
            mask = _rows(t, 0.02)
            return t.assign(age=t.age.where(~mask, t.age + 100.0))

        got = corrupted("fair", change, "exact")
        assert mask is not None
        assert got.loc[("age", "range"), "violations"] == int(mask.sum()) > 20

    def test_sign_flip_below_zero(self) -> None:
        """A column that was never negative, logged negated, breaks its range."""

        def change(t: pd.DataFrame) -> pd.DataFrame:
            return t.assign(yrs_married=-t.yrs_married)

        got = corrupted("fair", change)
        row = got.loc[("yrs_married", "range")]
        assert row.violations == row.rows

    @pytest.mark.parametrize("mode", ["sketch", "exact"])
    def test_twenty_percent_nan(self, mode: str) -> None:
        """20% NaN in a column that had none breaks not_null; 20% more NaN in a column
        with 3% missing breaks its null rate; 1% inf breaks finite."""
        planted: dict[str, int] = {}

        def change(t: pd.DataFrame) -> pd.DataFrame:
            out = t.assign(
                yrs_married=t.yrs_married.mask(_rows(t, 0.2, 4)),
                educ=t.educ.mask(_rows(t, 0.2, 5)),
                rate_marriage=t.rate_marriage.where(~_rows(t, 0.01, 6), np.inf),
            )
            planted.update(out.isna().sum().to_dict())
            planted["inf"] = int(np.isinf(out.rate_marriage).sum())
            return out

        got = corrupted("fair", change, mode)["violations"]
        assert got[("yrs_married", "not_null")] == planted["yrs_married"]
        assert got[("educ", "null_rate")] == planted["educ"]
        assert got[("rate_marriage", "finite")] == planted["inf"] > 10

    def test_new_category(self) -> None:
        """A category the reference never had, in 5% of the rows, breaks ``allowed``."""

        def change(t: pd.DataFrame) -> pd.DataFrame:
            return t.assign(occupation=t.occupation.where(~_rows(t, 0.05), "unknown"))

        got = corrupted("fair", change)["violations"]
        assert got[("occupation", "allowed")] > 0


if __name__ == "__main__":
    for dataset in DATASETS:
        d, h, _ = false_alarms(dataset)
        print(f"{dataset}: {d}/{SPLITS} days and {h}/{SPLITS} days with an hour broken")
