"""``DriftReport.to_dict`` / ``from_dict``: JSON-safe (NaN as null, infinities as strings)
and exact: floats come back bit for bit, the window as timezone-aware UTC datetimes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from mlpulse._time import from_micros
from mlpulse.drift.report import ColumnDrift, DriftReport, float_from_json, float_to_json
from mlpulse.service import Service

FLOATS = [0.1, -0.0, 5e-324, 1.7976931348623157e308, 1 / 3, math.nan, math.inf, -math.inf]


def bits(x: float) -> str:
    return "nan" if math.isnan(x) else float(x).hex()


def through_json(data: dict) -> dict:
    return json.loads(json.dumps(data, allow_nan=False))  # fails on any NaN left in


class TestFloats:
    """Each float survives JSON exactly; NaN is null, infinities are strings."""

    @pytest.mark.parametrize("x", FLOATS, ids=repr)
    def test_round_trip(self, x) -> None:
        encoded = json.loads(json.dumps(float_to_json(np.float64(x)), allow_nan=False))
        assert bits(float_from_json(encoded)) == bits(x)

    def test_encoding(self) -> None:
        assert [float_to_json(x) for x in (math.nan, math.inf, -math.inf, None, 2)] == [
            None, "Infinity", "-Infinity", None, 2.0
        ]
        with pytest.raises(ValueError, match="not a number"):
            float_from_json("1.5")


def report() -> DriftReport:
    columns = [
        ColumnDrift("age", "numeric", "ks", np.float64(0.25), np.float64(1e-300), 0.05, True,
                    p_adjusted=np.float64(2e-300), n_reference=np.int64(1000), n_current=7),
        ColumnDrift("plan", "categorical", "psi", math.inf, math.nan, 0.1, True, is_test=False,
                    mode="exact-fallback", note="recomputed"),
        ColumnDrift("score", "numeric", "wasserstein", math.nan, math.nan, -0.0, False,
                    is_test=False, n_reference=0, n_current=0),
    ]
    return DriftReport(
        columns,
        correction=None,
        drift_share=0.3,
        window=(from_micros(1_767_225_600_123_456), from_micros(1_767_312_000_000_000)),
        against={"start": datetime(2026, 1, 1, tzinfo=UTC), "end": "2026-01-02"},
        mode="exact",
        multivariate={
            "domain_classifier": {"statistic": np.float64(0.71), "p_value": math.nan,
                                  "threshold": 0.55, "drifted": np.bool_(True),
                                  "n_reference": np.int64(400), "n_current": 300},
            "pca": {"statistic": -math.inf, "p_value": 1.0, "components": 3, "drifted": False},
        },
    )


class TestDriftReport:
    """A report rebuilt from its JSON equals the original."""

    def test_round_trip_is_exact(self) -> None:
        original = report()
        back = DriftReport.from_dict(through_json(original.to_dict()))
        pd.testing.assert_frame_equal(back.to_pandas(details=True), original.to_pandas(details=True))
        for a, b in zip(back.columns, original.columns, strict=True):
            for name in ("statistic", "p_value", "threshold", "p_adjusted"):
                assert bits(getattr(a, name)) == bits(getattr(b, name)), (a.column, name)
            assert (a.column, a.kind, a.method, a.drifted, a.is_test, a.n_reference,
                    a.n_current, a.mode, a.note) == (b.column, b.kind, b.method, b.drifted,
                                                     b.is_test, b.n_reference, b.n_current,
                                                     b.mode, b.note)
        assert back.window == original.window
        assert all(t.utcoffset().total_seconds() == 0 for t in back.window)
        assert back.window[0].microsecond == 123_456
        assert back.correction is None and back.drift_share == 0.3 and back.mode == "exact"
        # times in `against` travel as ISO 8601 text
        assert back.against == {"start": "2026-01-01T00:00:00+00:00", "end": "2026-01-02"}
        mv = back.multivariate
        assert mv["domain_classifier"]["statistic"] == 0.71
        assert math.isnan(mv["domain_classifier"]["p_value"])
        assert mv["domain_classifier"]["drifted"] is True and mv["pca"]["components"] == 3
        assert mv["pca"]["statistic"] == -math.inf
        assert back.dataset_drift == original.dataset_drift
        assert back.drifted_columns == original.drifted_columns == ["age", "plan"]

    def test_json_for_readers(self) -> None:
        data = through_json(report().to_dict())
        assert data["columns"][1]["statistic"] == "Infinity"
        assert data["columns"][1]["p_value"] is None
        assert data["window"] == ["2026-01-01T00:00:00.123456+00:00", "2026-01-02T00:00:00+00:00"]
        assert data["dataset_drift"] is True and data["drifted_columns"] == ["age", "plan"]

    def test_real_report(self) -> None:
        """A report the engine computed (multivariate included) survives JSON."""
        rng = np.random.default_rng(3)
        ref = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "b"], 400),
                            "score": rng.uniform(size=400)})
        cur = pd.DataFrame({"id": [f"r{i}" for i in range(300)], "x": rng.normal(1, 1, 300),
                            "c": rng.choice(["a", "b", "c"], 300), "score": rng.uniform(size=300),
                            "timestamp": pd.Timestamp("2026-01-05T01:00:00Z")})
        cur.loc[:9, "x"] = np.nan
        service = Service.open(":memory:")
        try:
            service.register("m", "v1", task="binary", reference=ref, prediction="score")
            service.log_batch("m", "v1", cur)
            original = service.drift("m", "v1", start="2026-01-05", end="2026-01-06",
                                     multivariate=True, sample_size=300)
        finally:
            service.close()
        back = DriftReport.from_dict(through_json(original.to_dict()))
        pd.testing.assert_frame_equal(back.to_pandas(details=True), original.to_pandas(details=True))
        assert back.window == original.window and back.against == original.against
        assert back.to_dict() == original.to_dict()
        assert set(back.multivariate) == {"domain_classifier", "pca"}
