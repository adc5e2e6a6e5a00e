"""``mlpulse demo`` detects its own planted trouble: alerts fire after the drift point, none
before, and they form one incident that the report prints."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from mlpulse.demo import DemoConfig, run_demo


def test_demo_alerts_fire_after_the_drift_and_never_before(tmp_path) -> None:
    out = io.StringIO()
    config = DemoConfig(duration="6h", rate=60, quiet=True, db=str(tmp_path / "demo.duckdb"))
    result = run_demo(config, console=Console(file=out, width=200))
    alerts = result.alerts
    assert alerts is not None
    fired = alerts.dropna(subset=["fired_at"])
    drift_at = pd.Timestamp(result.drift_at)
    assert (fired["fired_at"] > drift_at).all(), fired[["rule", "fired_at"]]
    assert (alerts["started_at"] >= drift_at).all()  # not even pending before the shift
    rules = set(fired["rule"])
    assert "churn-monthly_charges-drift" in rules
    assert "churn:accuracy-vs-reference" in rules
    drift_fired = fired.set_index("rule").loc["churn-monthly_charges-drift", "fired_at"]
    assert drift_fired - drift_at <= pd.Timedelta("30min")  # detection within half an hour
    assert result.incidents is not None and len(result.incidents) == 1
    text = out.getvalue()
    assert "alerts (evaluated live" in text and "incident 1 (open)" in text
    assert "drift:monthly_charges" in text
