"""``MonitorReport.to_dict`` / ``from_dict``: JSON-safe and exact (a skipped check's NaN
value is null and comes back NaN)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from mlpulse.monitors.checks import Check, MonitorReport


def test_round_trip() -> None:
    original = MonitorReport([
        Check("dependencies", "skipped", math.nan, "no previous version to compare with"),
        Check("computational", "fail", np.float64(0.30000000000000004), "latency_p95 4 -> 6"),
        Check("staleness", "pass", math.inf, "age ∞"),
        Check("numerical_stability", "pass", -0.0, "no NaN or inf in 10 rows"),
    ])
    data = json.loads(json.dumps(original.to_dict(), allow_nan=False))
    assert data["checks"][0]["value"] is None and data["checks"][2]["value"] == "Infinity"
    assert data["ok"] is False and data["failed"] == ["computational"]
    back = MonitorReport.from_dict(data)
    pd.testing.assert_frame_equal(back.to_pandas(), original.to_pandas())
    assert [c.value.hex() if not math.isnan(c.value) else "nan" for c in back.checks] == [
        "nan", (0.30000000000000004).hex(), "inf", (-0.0).hex()
    ]
    assert back.ok is False and back.failed == ["computational"]
    assert back["staleness"].detail == "age ∞"
