"""Notebook display: drift, quality, metrics and estimate results render as HTML with small
inline charts, ``.plot()`` returns a plotly figure, names are escaped, and metrics frames
stay plain DataFrames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import mlpulse
from mlpulse.display import register_ipython
from mlpulse.display.notebook import frame_html

HOSTILE = '<script>alert(1)</script>"onerror=x'


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    n = 1500
    ref = pd.DataFrame({HOSTILE: rng.normal(size=n), "plan": rng.choice(["a", "b"], n),
                        "score": rng.random(n), "y": rng.integers(0, 2, n)})  # fmt: skip
    pulse = mlpulse.connect(":memory:")
    m = pulse.model("m", "v1", task="binary", reference=ref, prediction="score", label="y")
    ts = pd.date_range("2026-01-01", periods=n, freq="10s", tz="UTC")
    cur = ref.drop(columns="y").assign(id=[str(i) for i in range(n)], timestamp=ts)
    cur[HOSTILE] = cur[HOSTILE] + np.linspace(0, 3, n)
    m.log_batch(cur)
    m.log_feedback_batch(pd.DataFrame({"id": cur["id"], "y": ref["y"]}), label="y")
    yield m
    pulse.close()


W = {"start": "2026-01-01", "end": "2026-01-01T04:10:00Z"}


class TestDrift:
    def test_html_escapes_and_marks_drift(self, model) -> None:
        report = model.drift(**W)
        html = report._repr_html_()
        assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&#34;onerror=x" in html
        assert "dataset drift" in html and html.count("<svg") == len(report.columns)

    def test_plot(self, model) -> None:
        fig = model.drift(**W).plot()
        assert isinstance(fig, go.Figure)
        [bar] = fig.data
        assert list(bar.y) == [c.column for c in model.drift(**W).columns]
        heat = model.drift(**W, step="1h").plot()
        assert heat.data[0].type == "heatmap" and len(heat.data[0].x) == 5


class TestQuality:
    def test_html_and_plot(self, model) -> None:
        report = model.quality(**W, constraints=[{"column": "plan", "rule": "allowed",
                                                 "values": ["a"]}])  # fmt: skip
        html = report._repr_html_()
        assert "violation" in html and "plan" in html and "<svg" in html
        fig = report.plot()
        assert isinstance(fig, go.Figure) and list(fig.data[0].y) == ["plan: allowed"]
        stacked = model.quality(**W, step="1h", constraints=[
            {"column": "plan", "rule": "allowed", "values": ["a"]}]).plot()  # fmt: skip
        assert stacked.layout.barmode == "stack" and len(stacked.data[0].x) == 5


class TestFrames:
    def test_metrics_frame_stays_a_plain_dataframe(self, model) -> None:
        frame = model.metrics(["accuracy", "f1"], step="1h", **W)
        assert type(frame) is pd.DataFrame
        fig = frame.mlpulse.plot()
        assert [t.name for t in fig.data] == ["accuracy", "f1"] and len(fig.data[0].x) == 5
        html = frame.mlpulse._repr_html_()
        assert html.count("<svg") == 3 and "accuracy" in html  # n, accuracy, f1

    def test_estimate_band_and_realised(self, model) -> None:
        realised = model.metrics(["accuracy"], step="1h", **W)
        est = model.estimate(["accuracy"], step="1h", band=True, **W)
        fig = realised.mlpulse.plot(estimate=est)
        names = [t.name for t in fig.data]
        assert "accuracy" in names and "accuracy (estimated)" in names
        assert any(t.fill == "tonexty" for t in fig.data)  # the band
        assert "polygon" in frame_html(est)  # shaded band in the sparkline

    def test_ipython_formatter(self) -> None:
        """In IPython, metrics-shaped frames get sparklines; other frames pandas' HTML."""

        class Formatter:
            def __init__(self) -> None:
                self.printers: dict = {}

            def for_type(self, typ, fn):
                self.printers[typ] = fn

        class Shell:
            display_formatter = type("F", (), {"formatters": {"text/html": Formatter()}})()

        shell = Shell()
        assert register_ipython(shell)
        printer = shell.display_formatter.formatters["text/html"].printers[pd.DataFrame]
        frame = pd.DataFrame({"window_start": pd.date_range("2026-01-01", periods=3, tz="UTC"),
                              "window_end": pd.date_range("2026-01-02", periods=3, tz="UTC"),
                              "n": [1, 2, 3], "n_labeled": [1, 1, 1], "f1": [0.1, 0.5, 0.2]})  # fmt: skip
        assert "<svg" in printer(frame)
        other = pd.DataFrame({"a": [1]})
        assert printer(other) == other._repr_html_()
        assert not register_ipython(object())
