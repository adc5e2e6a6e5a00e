"""Real data for the Spark tests: scikit-learn's breast-cancer set scored by a logistic
regression, 369 predictions over six hours (a few malformed), labels for most, some of them
late corrections (the latest by timestamp wins) and one invalid."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import mlpulse

START = pd.Timestamp("2026-03-02T00:00:00Z")
W = {"start": START, "end": START + pd.Timedelta("6h")}
_CACHE: dict[str, tuple] = {}


def _base() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = load_breast_cancer(as_frame=True)
    x = data.data.iloc[:, :6].copy()
    x.columns = [c.replace(" ", "_") for c in x.columns]
    y = data.target.to_numpy()
    rng = np.random.default_rng(5)
    order = rng.permutation(len(x))
    fit, ref, cur = order[:100], order[100:200], order[200:]
    clf = LogisticRegression(max_iter=5000).fit(x.iloc[fit], y[fit])
    frame = x.assign(score=clf.predict_proba(x)[:, 1], y=y.astype(float),
                     plan=np.where(x.mean_texture > 19, "pro", "free"))  # fmt: skip
    current = frame.iloc[cur].reset_index(drop=True)
    current["rid"] = [f"r{i}" for i in range(len(current))]
    current["ts"] = (START + pd.to_timedelta(rng.uniform(0, 6 * 3600, len(current)), unit="s")
                     ).astype("datetime64[us, UTC]")  # what Spark holds (no Arrow fallback)
    current["latency_ms"] = rng.lognormal(2.0, 0.5, len(current))
    current.loc[3, "score"] = 1.7  # not a probability: quarantined on both sides
    return frame.iloc[ref].reset_index(drop=True), current


def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(predictions, labels with a timestamp, predictions with their latest label inline)."""
    if "f" not in _CACHE:
        _ref, current = _base()
        rng = np.random.default_rng(6)
        preds = current.drop(columns="y")
        labeled = current[rng.uniform(size=len(current)) < 0.8]
        labels = labeled[["rid", "y"]].assign(ts=labeled.ts + pd.Timedelta("2h"))
        wrong = labels.head(30).assign(y=1 - labels.head(30).y, ts=labels.head(30).ts - pd.Timedelta("1h"))
        bad = labels.iloc[[40]].assign(y=7.0, ts=labels.iloc[[40]].ts + pd.Timedelta("1h"))
        labels = pd.concat([wrong, labels, bad]).sample(frac=1.0, random_state=1)  # shuffled
        inline = preds.merge(labeled[["rid", "y"]], on="rid", how="left")
        _CACHE["f"] = (preds, labels.reset_index(drop=True), inline)
    return _CACHE["f"]


def register(pulse):
    ref, _current = _base()
    return pulse.model("churn", version="v1", task="binary", prediction="score", label="y",
                       segments=["plan"], reference=ref.drop(columns=[]))  # fmt: skip


def embedded(preds: pd.DataFrame, labels: pd.DataFrame | None):
    """The same rows through the embedded engine (labels in time order: the latest wins)."""
    model = register(mlpulse.connect(":memory:"))
    model.log_batch(preds, id="rid", timestamp="ts")
    if labels is not None:
        model.log_feedback_batch(labels.sort_values("ts"), id="rid", label="y", timestamp="ts")
    return model


def duplicated() -> pd.DataFrame:
    """The predictions with repeated ids, as a lake may hold them: 25 rows delivered again
    (later in the input, other scores, some two hours later: another partition), one of them
    three times, and a valid row for ``r3``, whose first row is quarantined (so the later
    one is that id's first valid row and is kept)."""
    preds, _labels, _inline = frames()
    again = preds.iloc[10:35].assign(score=lambda d: 1.0 - d.score)
    again.loc[again.index[::2], "ts"] += pd.Timedelta("2h")
    again = again[again.ts < W["end"]]
    fixed = preds.iloc[[3]].assign(score=0.25)
    third = preds.iloc[[12]].assign(score=0.5)
    return pd.concat([preds.iloc[:200], again, preds.iloc[200:], fixed, third], ignore_index=True)
