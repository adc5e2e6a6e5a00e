"""HTML reports: the verdicts and figures agree with scikit-learn and numpy on the same
data, the charts come from profiles (binned, small), names are escaped, the file needs no
network, and a fresh sample of the reference's own distribution reports no drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlpulse
from mlpulse.display import plotly_js
from mlpulse.errors import ConfigError, SchemaError
from mlpulse.report import Report

HOSTILE = ['<script>alert("x")</script>', '"onerror=alert(1) x="', "a&b</div>"]


def figures(html: str) -> dict:
    """The charts' JSON block of a report."""
    found = re.search(r'<script type="application/json" id="mlpulse-figures">(.*?)</script>',
                      html, re.S)  # fmt: skip
    assert found
    return json.loads(found.group(1))


def cancer_split(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current halves of held-out breast-cancer predictions (same distribution)."""
    data = load_breast_cancer(as_frame=True)
    x, y = data.data.iloc[:, :8], data.target
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.6, random_state=seed)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x_train, y_train)
    frame = x_rest.assign(score=clf.predict_proba(x_rest)[:, 1], label=y_rest.to_numpy())
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    ref, cur = train_test_split(frame, test_size=0.5, random_state=seed + 1)
    return ref.reset_index(drop=True), cur.reset_index(drop=True)


def shifted(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def make(shift: float, m: int) -> pd.DataFrame:
        score = rng.random(m)
        return pd.DataFrame({
            "x": rng.normal(shift, 1.0, m), "z": rng.normal(0, 1, m),
            "plan": rng.choice(["a", "b", "c"], m, p=[0.5, 0.3, 0.2]),
            "score": score, "label": (rng.random(m) < score).astype(int),
        })  # fmt: skip

    return make(0.0, n), make(1.0, n)


class TestCompare:
    """``Report.compare``: two tables or files through the same analyses as a stored model."""

    def test_verdicts_and_metrics_match_references(self) -> None:
        ref, cur = shifted()
        report = Report.compare(ref, cur)
        s = report.summary
        assert s["dataset_drift"] is True and s["drifted_columns"] == ["x"]
        assert s["rows"] == len(cur) and s["labeled"] == len(cur)
        assert s["metrics"]["accuracy"] == pytest.approx(
            accuracy_score(cur["label"], cur["score"] >= 0.5), abs=1e-12)
        assert s["metrics"]["roc_auc"] == pytest.approx(
            roc_auc_score(cur["label"], cur["score"]), abs=1e-4)  # 10,000-bin histograms
        assert s["quality_violations"] == 0
        assert report.data.timeline is None  # no timestamps: one window

    def test_histograms_come_from_sketches_and_match_numpy(self) -> None:
        ref, cur = shifted()
        report = Report.compare(ref, cur)
        dist = report.data.distributions["x"]
        lo, hi = dist["edges"]
        edges = np.linspace(lo, hi, len(dist["x"]) + 1)
        for side, frame in (("reference", ref), ("current", cur)):
            values = np.clip(frame["x"].to_numpy(), lo, np.nextafter(hi, -np.inf))
            expected = np.histogram(values, bins=edges)[0] / len(values)
            # KLL ranks: within its rank error (~1.3%) per cumulative share, so per bin 2x
            assert np.abs(np.asarray(dist[side]) - expected).max() < 0.03
        plan = report.data.distributions["plan"]
        assert plan["x"][:3] == ["a", "b", "c"]
        expected = cur["plan"].value_counts(normalize=True)
        assert plan["current"][:3] == pytest.approx([expected[k] for k in "abc"], abs=1e-12)

    def test_self_contained_and_small(self, tmp_path: Path) -> None:
        ref, cur = shifted()
        path = Report.compare(ref, cur).save(tmp_path / "r.html")
        html = path.read_text(encoding="utf-8")
        assert html.count(plotly_js()[:200]) == 1  # plotly.js inlined once
        own = html.replace(plotly_js(), "")
        assert not re.search(r"<script[^>]+src=", own) and "://" not in own
        assert "default-src 'none'" in html  # the page may not fetch anything
        assert len(html.encode()) - len(plotly_js().encode()) < 100_000
        figs = figures(html)
        assert {"drift", "hist0"} <= set(figs)
        # binned: no chart carries more points than bins/categories
        for fig in figs.values():
            for trace in fig["data"]:
                assert len(trace.get("x") or []) <= 64

    def test_hostile_names_are_escaped(self) -> None:
        rng = np.random.default_rng(1)
        n = 400
        cols = {name: rng.normal(size=n) for name in HOSTILE}
        ref = pd.DataFrame({**cols, "score": rng.random(n), "label": rng.integers(0, 2, n)})
        cur = ref.copy()
        cur[HOSTILE[0]] = cur[HOSTILE[0]] + 3  # drifted: its name is in the summary too
        cur["plan"] = ["<img src=x onerror=alert(1)>"] * n
        html = Report.compare(ref, cur, name=HOSTILE[1]).html
        base = plotly_js()
        for name in [*HOSTILE, "<img src=x onerror=alert(1)>"]:
            assert html.count(name) == base.count(name), name
        # only the report's own three script elements (plus any inside plotly.js's text)
        assert html.count("<script") == base.count("<script") + 3
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
        assert HOSTILE[0] in figures(html)["drift"]["data"][0]["y"]  # JSON round-trips it

    def test_files_csv_and_parquet_and_roles(self, tmp_path: Path) -> None:
        ref, cur = shifted(2000)
        ref = ref.rename(columns={"score": "proba", "label": "target"})
        cur = cur.rename(columns={"score": "proba", "label": "target"})
        ref.to_parquet(tmp_path / "ref.parquet")
        cur.assign(timestamp=pd.date_range("2026-01-01", periods=len(cur), freq="1min",
                                           tz="UTC")).to_csv(tmp_path / "cur.csv", index=False)  # fmt: skip
        report = Report.compare(tmp_path / "ref.parquet", tmp_path / "cur.csv")
        assert report.data.task == "binary" and report.summary["drifted_columns"] == ["x"]
        assert report.data.timeline is not None and report.data.timeline["n"].sum() == len(cur)
        assert report.data.estimate is not None  # CBPE over time, calibrated on the reference
        assert "cur.csv against ref.parquet" in report.html

    def test_clear_errors(self, tmp_path: Path) -> None:
        ref, cur = shifted(100)
        with pytest.raises(ConfigError, match="pass --prediction"):
            Report.compare(ref.drop(columns="score"), cur.drop(columns="score"))
        with pytest.raises(SchemaError, match="no label column 'nope'"):
            Report.compare(ref, cur, label="nope")
        with pytest.raises(ConfigError, match="no file at"):
            Report.compare(tmp_path / "missing.parquet", cur)
        (tmp_path / "x.txt").write_text("a")
        with pytest.raises(ConfigError, match="Parquet"):
            Report.compare(tmp_path / "x.txt", cur)

    def test_regression_and_multiclass(self) -> None:
        rng = np.random.default_rng(2)
        n = 600
        x = rng.normal(size=n)
        reg = pd.DataFrame({"x": x, "prediction": 3 * x, "label": 3 * x + rng.normal(size=n)})
        report = Report.compare(reg, reg.sample(frac=1.0, random_state=1))
        assert report.data.task == "regression" and report.summary["key_metric"] == "mae"
        mc = pd.DataFrame({"x": x, "prediction": rng.choice(["a", "b", "c"], n),
                           "label": rng.choice(["a", "b", "c"], n)})  # fmt: skip
        report = Report.compare(mc, mc)
        assert report.data.task == "multiclass" and "<!DOCTYPE html>" in report.html

    @pytest.mark.parametrize("seed", range(5))
    def test_silent_on_the_references_own_distribution(self, seed: int) -> None:
        ref, cur = cancer_split(seed)
        s = Report.compare(ref, cur).summary
        assert s["dataset_drift"] is False, s["drifted_columns"]
        assert s["quality_violations"] == 0


class TestForModel:
    """``Report.for_model``: a stored model's window, with a timeline and estimates."""

    def test_stored_window(self) -> None:
        ref, cur = shifted(2000)
        pulse = mlpulse.connect(":memory:")
        try:
            model = pulse.model("churn", "v1", task="binary", reference=ref, prediction="score",
                                label="label")  # fmt: skip
            ts = pd.date_range("2026-01-01", periods=len(cur), freq="5s", tz="UTC")
            rows = cur.drop(columns="label").assign(id=[f"r{i}" for i in range(len(cur))],
                                                    timestamp=ts)  # fmt: skip
            model.log_batch(rows)
            model.log_feedback_batch(pd.DataFrame({"id": rows["id"], "label": cur["label"]}),
                                     label="label")  # fmt: skip
            start, end = "2026-01-01", "2026-01-01T03:00:00Z"
            report = Report.for_model(model, start, end)
            expected = model.metrics(["accuracy", "f1", "roc_auc"], start=start, end=end,
                                     step=report.data.step)  # fmt: skip
            pd.testing.assert_frame_equal(report.data.timeline, expected)
            assert report.data.step == "5m" and report.summary["drifted_columns"] == ["x"]
            figs = figures(report.html)
            perf = figs["performance"]["data"]
            assert [t["name"] for t in perf if "upper" not in t["name"] and "lower" not in t["name"]] == [
                "accuracy", "accuracy (estimated)", "f1", "f1 (estimated)", "roc_auc",
                "roc_auc (estimated)"]  # fmt: skip
        finally:
            pulse.close()

    def test_empty_window_says_so(self) -> None:
        pulse = mlpulse.connect(":memory:")
        try:
            model = pulse.model("m", "v1", task="binary", prediction="score", label="y")
            report = Report.for_model(model, "2026-01-01", "2026-01-02")
            assert report.summary["rows"] == 0 and report.summary["dataset_drift"] is None
            assert "no predictions in the window" in report.html
        finally:
            pulse.close()
