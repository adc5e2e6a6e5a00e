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

BASE = pd.Timestamp("2026-01-05T00:00:00Z")
START, END = "2026-01-05", "2026-01-06"


@pytest.fixture()
def wine_model():
    """scikit-learn's wine data: reference = classes 0-1, window = class 2 plus broken rows."""
    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns={"target": "label"})
    frame["color"] = np.where(frame.hue > 1.0, "light", "dark")
    frame["score"] = (frame.label == 1).astype(float) * 0.8 + 0.1
    ref = frame[frame.label < 2].drop(columns="label")
    cur = frame[frame.label == 2].drop(columns="label").reset_index(drop=True).copy()
    cur.loc[:4, "alcohol"] = np.nan  # missing
    cur.loc[5, "magnesium"] = np.inf  # non-finite
    cur.loc[6:8, "color"] = "purple"  # unseen category
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
        assert got[("alcohol", "not_null")] == 5
        assert got[("magnesium", "finite")] == 1
        assert got[("color", "allowed")] == 3
        assert (frame.rows[frame.rule != "max_distinct"] == len(cur)).all()
        # range violations equal pandas' count against the reference's range
        for column in ("proline", "flavanoids"):
            lo, hi = ref[column].min(), ref[column].max()
            values = cur[column].dropna()
            values = values[np.isfinite(values)]
            expected = int(((values < lo) | (values > hi)).sum())
            assert got[(column, "range")] == expected

    def test_per_window(self, wine_model) -> None:
        model, _, cur = wine_model
        frame = model.quality(START, END, step="1h").to_pandas()
        assert list(frame.columns[:2]) == ["window_start", "window_end"]
        nulls = frame[(frame.column == "alcohol") & (frame.rule == "not_null")]
        assert nulls.violations.sum() == 5 and nulls.violations.iloc[0] == 5


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
        ref = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"], "score": [0.1, 0.5, 0.9]})
        pulse = mlpulse.connect(":memory:")
        model = pulse.model("schema", task="binary", reference=ref, prediction="score")
        cur = pd.DataFrame(
            {
                "a": [1.0, 2.0],
                "c": [5.0, 6.0],
                "score": [0.2, 0.3],
                "id": ["1", "2"],
                "timestamp": [BASE, BASE],
            }
        )
        model.log_batch(cur, id="id", timestamp="timestamp")
        got = model.quality(START, END).to_pandas().set_index(["column", "rule"])["violations"]
        assert got[("c", "new_column")] == 2
        assert got[("b", "vanished_column")] == 2
        pulse.close()
