"""Data quality over time (issue 11): ``model.quality(step=...)`` per window, ``.windows``
and ``first_violations()``: a problem planted from a known hour is first seen at that hour,
and clean data (scikit-learn's wine, random splits, hourly windows) stays silent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

import mlpulse
from mlpulse.errors import ConfigError

BASE = pd.Timestamp("2026-01-05T00:00:00Z")
START, END = "2026-01-05", "2026-01-06"


def wine() -> pd.DataFrame:
    data = load_wine(as_frame=True)
    frame = data.data.rename(columns=lambda c: c.replace("/", "_"))
    return frame.assign(score=(data.target == 1).astype(float) * 0.6 + 0.2)


def split(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = wine()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    ref, cur = frame.iloc[order[:89]], frame.iloc[order[89:]].reset_index(drop=True).copy()
    hour = np.arange(len(cur)) % 24
    rng.shuffle(hour)
    cur["id"] = [f"w{seed}_{i}" for i in range(len(cur))]
    cur["timestamp"] = BASE + pd.to_timedelta(hour * 3600 + rng.integers(0, 3600, len(cur)),
                                              unit="s")
    return ref, cur


@pytest.fixture(scope="module")
def pulse():
    p = mlpulse.connect(":memory:")
    yield p
    p.close()


def test_planted_from_hour(pulse) -> None:
    """alcohol missing and magnesium out of range from hour 9 on."""
    ref, cur = split(0)
    late = cur.timestamp >= BASE + pd.Timedelta(hours=9)
    cur.loc[late, "alcohol"] = np.nan
    cur.loc[late, "magnesium"] = 1000.0
    model = pulse.model("planted", task="binary", reference=ref, prediction="score")
    model.log_batch(cur, id="id", timestamp="timestamp")
    report = model.quality(START, END, step="1h")
    first = report.first_violations().set_index(["column", "rule"])
    nine = BASE + pd.Timedelta(hours=9)
    assert first.loc[("alcohol", "not_null"), "first_violated"] == nine
    assert first.loc[("magnesium", "range"), "first_violated"] == nine
    assert first.loc[("alcohol", "not_null"), "violations"] == int(late.sum())
    assert (first.first_violated >= nine).all()
    windows = report.windows
    assert list(windows.columns) == ["window_start", "window_end", "rows", "violated",
                                     "violations", "ok"]
    assert len(windows) == 24 and windows.rows.sum() == len(cur)
    assert list(windows.ok) == [True] * 9 + [False] * 15
    frame = report.to_pandas()
    per_hour = frame[frame.column.eq("alcohol") & frame.rule.eq("not_null")]
    assert list(per_hour.violations) == list(cur.groupby(cur.timestamp.dt.hour).apply(
        lambda g: int(g.alcohol.isna().sum())))


def test_without_step(pulse) -> None:
    ref, cur = split(1)
    model = pulse.model("nostep", task="binary", reference=ref, prediction="score")
    model.log_batch(cur, id="id", timestamp="timestamp")
    report = model.quality(START, END)
    assert not report.stepped and list(report.windows.columns) == ["rows", "violated",
                                                                   "violations", "ok"]
    with pytest.raises(ConfigError, match="step"):
        report.first_violations()


def test_clean_splits_silent(pulse) -> None:
    """25 random splits of wine, hourly: no rule broken in any window."""
    broken = []
    for seed in range(25):
        ref, cur = split(100 + seed)
        model = pulse.model(f"clean{seed}", task="binary", reference=ref, prediction="score")
        model.log_batch(cur, id="id", timestamp="timestamp")
        report = model.quality(START, END, step="1h")
        broken.append(report.first_violations().assign(seed=seed))
        assert report.windows.ok.all()
    assert pd.concat(broken).empty
