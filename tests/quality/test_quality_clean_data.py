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
    """Rows logged at random times of one day."""
    rng = np.random.default_rng(seed)
    out = frame.drop(columns="label").reset_index(drop=True)
    out["id"] = [f"t{seed}_{i}" for i in range(len(out))]
    # every ten minutes of the day (fewer buckets to write than at random seconds)
    out["timestamp"] = BASE + pd.to_timedelta(rng.integers(0, 144, len(out)) * 600, unit="s")
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

    @pytest.mark.parametrize("mode", ["sketch", "exact"])
    def test_some_rows_far_out(self, mode: str) -> None:
        """5% of the rows far beyond the reference's range: flagged, and counted (from the
        KLL sketch's ranks in sketch mode, within its rank error, about 1.3% of the rows;
        the test then takes the fewest rows the sketch allows)."""
        mask: np.ndarray | None = None

        def change(t: pd.DataFrame) -> pd.DataFrame:
            nonlocal mask
            mask = _rows(t, 0.05)
            return t.assign(age=t.age.where(~mask, t.age + 100.0))

        got = corrupted("fair", change, mode).loc[("age", "range")]
        assert mask is not None and mask.sum() > 50
        error = 0 if mode == "exact" else 0.0133 * got.rows
        assert abs(got.violations - int(mask.sum())) <= error

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


class TestCardinality:
    """``max_distinct`` allows for windows larger than the reference."""

    def test_id_like_column(self) -> None:
        """A column of unique values (an order id, say): 2,000 new ids after a reference of
        200 is what the reference implies (the old bound, 1.5 x 200 + 5, broke)."""
        rng = np.random.default_rng(0)
        ref = pd.DataFrame({"order": [f"o{i}" for i in range(200)], "score": rng.uniform(size=200)})
        cur = pd.DataFrame({"order": [f"n{i}" for i in range(2000)], "score": rng.uniform(size=2000)})
        pulse = mlpulse.connect(":memory:")
        model = pulse.model("orders", task="binary", reference=ref, prediction="score")
        model.log_batch(as_traffic(cur.assign(label=0), 0), id="id", timestamp="timestamp")
        got = model.quality(START, END).to_pandas().set_index(["column", "rule"])
        assert got.loc[("order", "max_distinct"), "violations"] == 0
        pulse.close()

    def test_low_cardinality_explodes(self) -> None:
        """A three-valued column that suddenly holds 60 values breaks ``max_distinct``."""
        rng = np.random.default_rng(0)
        ref = pd.DataFrame({"plan": rng.choice(["a", "b", "c"], 300), "score": rng.uniform(size=300)})
        cur = pd.DataFrame({"plan": [f"p{i % 60}" for i in range(300)], "score": 0.5})
        pulse = mlpulse.connect(":memory:")
        model = pulse.model("plans", task="binary", reference=ref, prediction="score")
        model.log_batch(as_traffic(cur.assign(label=0), 0), id="id", timestamp="timestamp")
        got = model.quality(START, END).to_pandas().set_index(["column", "rule"])
        assert got.loc[("plan", "max_distinct"), "violations"] == 60 - (3 * 3 // 2 + 1 + 5)
        assert got.loc[("plan", "allowed"), "violations"] == 300
        pulse.close()


class TestSignificance:
    """The tests behind the inferred rules agree with independent computations."""

    def test_beyond_extremes_is_a_permutation_test(self) -> None:
        """The p-value equals the share of random splits of real values (breast cancer's
        worst area) that put at least k window values beyond the reference's extremes."""
        from mlpulse.quality.significance import beyond_extremes_pvalue

        values = load_breast_cancer().data[:, 23][:120]
        rng = np.random.default_rng(0)
        n, m, trials = 80, 40, 20_000
        outside = np.empty(trials, dtype=np.int64)
        for i in range(trials):
            order = rng.permutation(len(values))
            ref, win = values[order[:m]], values[order[m:]]
            outside[i] = np.count_nonzero((win < ref.min()) | (win > ref.max()))
        for k in (1, 3, 5, 8):
            expected = float(np.mean(outside >= k))
            assert beyond_extremes_pvalue(k, n, m) == pytest.approx(expected, abs=0.01)

    def test_fisher(self) -> None:
        """The null-rate test is SciPy's one-sided Fisher exact test."""
        from scipy.stats import fisher_exact

        from mlpulse.quality.significance import more_often_pvalue

        for k, n, kr, m in [(9, 50, 3, 100), (30, 200, 10, 400), (1, 10, 0, 10)]:
            expected = fisher_exact([[k, n - k], [kr, m - kr]], alternative="greater").pvalue
            assert more_often_pvalue(k, n, kr, m) == pytest.approx(expected, rel=1e-9)

    @pytest.mark.parametrize(("rows", "m"), [(300, 60), (944, 100), (944, 472)])
    def test_unseen_categories(self, rows: int, m: int) -> None:
        """The p-value is the share of random splits of real categories (anes96's income
        levels) that leave at least k window rows in categories the reference lacks."""
        from mlpulse.quality.significance import unseen_categories_pvalue

        sm = pytest.importorskip("statsmodels.datasets")
        income = sm.anes96.load_pandas().data.income.astype(int).to_numpy()[:rows]
        rng = np.random.default_rng(0)
        n, trials = rows - m, 4_000
        new = np.empty(trials, dtype=np.int64)
        for i in range(trials):
            order = rng.permutation(rows)
            ref, win = income[order[:m]], income[order[m:]]
            new[i] = np.count_nonzero(~np.isin(win, ref))
        pooled = np.unique(income, return_counts=True)[1]
        for k in (1, 10, 20, 30, 40):
            observed = float(np.mean(new >= k))
            # the p-value depends on the pooled counts and k only
            p = unseen_categories_pvalue([k], pooled, n, m)
            assert observed - 0.02 <= p <= 1.5 * observed + 0.01, (k, observed, p)
        assert unseen_categories_pvalue([], pooled, n, m) == 1.0


if __name__ == "__main__":
    for dataset in DATASETS:
        d, h, _ = false_alarms(dataset)
        print(f"{dataset}: {d}/{SPLITS} days and {h}/{SPLITS} days with an hour broken")
