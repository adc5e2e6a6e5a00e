"""``model.quality``: inferred and user constraints, violations counted per window and column,
new/vanished columns, NaN and inf; sketch and exact modes agree with pandas on the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

import mlpulse
from mlpulse.errors import ConfigError
from mlpulse.quality import Constraint, parse_constraints
from mlpulse.quality.significance import ALPHA, beyond_extremes_pvalue

BASE = pd.Timestamp("2026-01-05T00:00:00Z")
START, END = "2026-01-05", "2026-01-06"


@pytest.fixture()
def wine_model():
    """scikit-learn's wine data: reference = classes 0-1 (130 rows), window = class 2 (48
    rows) with a quarter of its rows broken in each of four ways: few enough broken rows
    could be chance against a reference of 130 rows, and inferred rules ignore those."""
    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns={"target": "label"})
    frame["color"] = np.where(frame.hue > 1.0, "light", "dark")
    frame["score"] = (frame.label == 1).astype(float) * 0.8 + 0.1
    ref = frame[frame.label < 2].drop(columns="label")
    cur = frame[frame.label == 2].drop(columns="label").reset_index(drop=True).copy()
    cur.loc[:11, "alcohol"] = np.nan  # missing
    cur.loc[12:23, "magnesium"] = np.inf  # non-finite
    cur.loc[24:35, "color"] = "purple"  # unseen category
    cur.loc[36:47, "proline"] *= 10.0  # a unit bug: far beyond the reference's range
    cur["id"] = [f"w{i}" for i in range(len(cur))]
    cur["timestamp"] = BASE + pd.to_timedelta(np.arange(len(cur)) * 300, unit="s")
    pulse = mlpulse.connect(":memory:")
    model = pulse.model("wine", task="binary", reference=ref, prediction="score")
    model.log_batch(cur, id="id", timestamp="timestamp")
    yield model, ref, cur
    pulse.close()


class TestInferred:
    """Constraints inferred from the reference catch the planted problems."""

    @pytest.mark.parametrize("mode", ["sketch", "exact"])
    def test_planted_violations(self, wine_model, mode) -> None:
        model, ref, cur = wine_model
        frame = model.quality(START, END, mode=mode).to_pandas()
        assert list(frame.columns) == ["column", "rule", "violations", "rows", "rate"]
        got = frame.set_index(["column", "rule"])["violations"]
        assert got[("alcohol", "not_null")] == 12
        assert got[("magnesium", "finite")] == 12
        assert got[("color", "allowed")] == 12
        assert (frame.rows[frame.rule != "max_distinct"] == len(cur)).all()
        # range: pandas' count outside the reference's range widened by a quarter of its
        # width each side (not below zero), kept when chance cannot explain it
        assert got[("proline", "range")] >= 12
        for column in ref.columns.drop(["color"]):
            lo, hi = ref[column].min(), ref[column].max()
            low, high = max(lo - (hi - lo) / 4, 0.0), hi + (hi - lo) / 4
            values = cur[column].dropna()
            values = values[np.isfinite(values)]
            outside = int(((values < low) | (values > high)).sum())
            chance = beyond_extremes_pvalue(outside, len(values), len(ref)) >= ALPHA
            assert got[(column, "range")] == (0 if chance else outside), column

    def test_per_window(self, wine_model) -> None:
        model, _, cur = wine_model
        frame = model.quality(START, END, step="1h").to_pandas()
        assert list(frame.columns[:2]) == ["window_start", "window_end"]
        nulls = frame[(frame.column == "alcohol") & (frame.rule == "not_null")]
        assert nulls.violations.sum() == 12 and nulls.violations.iloc[0] == 12


class TestUserConstraints:
    """Constraints from YAML or the API replace or add to the inferred ones."""

    def test_yaml_and_api(self, wine_model, tmp_path) -> None:
        model, _, cur = wine_model
        path = tmp_path / "rules.yaml"
        path.write_text(
            "constraints:\n"
            "  - {column: ash, rule: range, min: 2.3, max: 3.0}\n"
            "  - {column: color, rule: allowed, values: [light, dark, purple]}\n"
        )
        frame = model.quality(START, END, constraints=str(path), mode="exact").to_pandas()
        got = frame.set_index(["column", "rule"])["violations"]
        assert got[("ash", "range")] == int(((cur.ash < 2.3) | (cur.ash > 3.0)).sum())
        assert got[("color", "allowed")] == 0
        model.set_constraints([{"column": "hue", "rule": "range", "max": 0.6}])
        assert [c.column for c in model.constraints()] == ["hue"]
        got = model.quality(START, END, mode="exact").to_pandas().set_index(["column", "rule"])
        assert got.loc[("hue", "range"), "violations"] == int((cur.hue > 0.6).sum())

    def test_bad_constraints(self) -> None:
        with pytest.raises(ConfigError, match="unknown rule"):
            Constraint("x", "between")
        with pytest.raises(ConfigError, match="needs 'values'"):
            parse_constraints([{"column": "x", "rule": "allowed"}])


class TestSchemaChanges:
    """New and vanished columns are reported."""

    def test_new_and_vanished(self) -> None:
        # 30 reference rows with b always present, 10 rows without it: not chance
        ref = pd.DataFrame(
            {"a": np.arange(30.0), "b": ["x", "y", "x"] * 10, "score": np.linspace(0, 1, 30)}
        )
        pulse = mlpulse.connect(":memory:")
        model = pulse.model("schema", task="binary", reference=ref, prediction="score")
        cur = pd.DataFrame(
            {
                "a": np.arange(10.0),
                "c": np.arange(10.0),
                "score": np.linspace(0.2, 0.3, 10),
                "id": [str(i) for i in range(10)],
                "timestamp": BASE,
            }
        )
        model.log_batch(cur, id="id", timestamp="timestamp")
        got = model.quality(START, END).to_pandas().set_index(["column", "rule"])["violations"]
        assert got[("c", "new_column")] == 10
        assert got[("b", "vanished_column")] == 10
        pulse.close()
