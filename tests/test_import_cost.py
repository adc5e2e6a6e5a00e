"""``import mlpulse`` and the embedded hot path stay light: the service a model runs in
pays for SciPy, scikit-learn, the server or Spark only when it uses them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "sklearn", "fastapi", "uvicorn", "pyspark", "plotly", "statsmodels")

SCRIPT = """
import json, sys
import pandas as pd
import mlpulse
after_import = sorted(m for m in {heavy} if m in sys.modules)
pulse = mlpulse.connect(":memory:")
model = pulse.model("m", task="binary", prediction="score", label="y")
model.log_batch(pd.DataFrame({{"id": ["a", "b"], "x": [1.0, 2.0], "score": [0.2, 0.9],
                              "timestamp": pd.Timestamp("2026-01-01", tz="UTC")}}),
                timestamp="timestamp")
model.log_feedback_batch(pd.DataFrame({{"id": ["a", "b"], "y": [0, 1]}}), label="y")
frame = model.metrics(["count", "accuracy"], start="2026-01-01", end="2026-01-02")
after_use = sorted(m for m in {heavy} if m in sys.modules)
print(json.dumps([after_import, after_use, int(frame.loc[0, "n"])]))
"""


def test_import_and_logging_do_not_load_heavy_dependencies():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    after_import, after_use, n = json.loads(out.splitlines()[-1])
    assert n == 2  # the script really logged and queried
    assert after_import == []
    assert after_use == []
