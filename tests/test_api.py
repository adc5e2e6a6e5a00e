"""API-level properties: however rows and labels are batched and ordered, the metrics are the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlpulse
from mlpulse.metrics.custom import unregister

BINARY = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "positive_rate",
    "count",
    "label_coverage",
    "prediction_mean",
]
REGRESSION = [
    "mae",
    "mse",
    "rmse",
    "mape",
    "r2",
    "mean_error",
    "count",
    "label_coverage",
    "prediction_mean",
]
BASE = pd.Timestamp("2026-01-05T00:00:00Z")
QUERIES = [
    ("2026-01-05T00:00:00Z", "2026-01-07T00:00:00Z", None),
    ("2026-01-05T03:17:42.5Z", "2026-01-06T21:05:09Z", "7h"),
    ("2026-01-05T23:30:30Z", "2026-01-06T00:30:00Z", "13m"),
]


@st.composite
def scenarios(draw, task="binary"):
    n = draw(st.integers(min_value=1, max_value=60))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    # clustered event times so that several rows share minutes, hours and edges
    offsets = rng.choice(
        [0, 59_999_999, 60_000_000, 3_599_999_999, 86_399_999_999], size=n
    ) + rng.integers(0, 2 * 86_400_000_000, size=n) * rng.integers(0, 2, size=n)
    frame = pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(n)],
            "ts": BASE + pd.to_timedelta(offsets, unit="us"),
            "plan": rng.choice(["a", "b", "c"], size=n),
        }
    )
    if task == "binary":
        # a grid of exact binary fractions: ties (incl. the 0.5 threshold) are real ties for
        # scikit-learn as well, so the histogram AUC must match it closely
        frame["score"] = rng.integers(0, 65, size=n) / 64
        truth = rng.integers(0, 2, size=n).astype(float)
    else:
        frame["score"] = rng.normal(0, 100, size=n)
        truth = frame["score"].to_numpy() + rng.normal(0, 10, size=n)
    labeled = rng.uniform(size=n) < draw(st.floats(min_value=0.0, max_value=1.0))
    frame["label"] = np.where(labeled, truth, np.nan)
    # how the rows are split and ordered
    pred_chunks = np.array_split(rng.permutation(n), draw(st.integers(min_value=1, max_value=5)))
    fb_ids = np.flatnonzero(labeled)
    fb_chunks = np.array_split(rng.permutation(fb_ids), draw(st.integers(min_value=1, max_value=4)))
    ops = [("p", c) for c in pred_chunks if len(c)] + [("f", c) for c in fb_chunks if len(c)]
    ops = [ops[i] for i in draw(st.permutations(range(len(ops))))]
    # wrong labels sent before the final ones (corrections); a few repeats after (duplicates)
    first_final = next((i for i, (k, _) in enumerate(ops) if k == "f"), len(ops))
    decoys = rng.permutation(fb_ids)[: len(fb_ids) // 2]
    if len(decoys):
        ops.insert(draw(st.integers(min_value=0, max_value=first_final)), ("d", decoys))
    repeats = rng.permutation(fb_ids)[: len(fb_ids) // 3]
    if len(repeats):
        ops.append(("f", repeats))
    return frame, ops


def run(frame, ops, task, name):
    with mlpulse.connect(":memory:") as pulse:
        split = pulse.model(name, task=task, prediction="score", label="label", segments=["plan"])
        whole = pulse.model(
            name + "_whole", task=task, prediction="score", label="label", segments=["plan"]
        )
        r = whole.log_batch(frame.drop(columns=["label"]), id="id", timestamp="ts")
        assert r.stored == len(frame)
        labels = frame[frame["label"].notna()][["id", "label"]]
        whole.log_feedback_batch(labels, id="id", label="label")
        for kind, rows in ops:
            part = frame.iloc[rows]
            if kind == "p":
                rep = split.log_batch(part.drop(columns=["label"]), id="id", timestamp="ts")
                assert rep.received == rep.stored + rep.quarantined == len(part)
            elif kind == "f":
                split.log_feedback_batch(part[["id", "label"]], id="id", label="label")
            else:
                wrong = part[["id", "label"]].copy()
                wrong["label"] = 1 - wrong["label"] if task == "binary" else wrong["label"] * -3 + 7
                split.log_feedback_batch(wrong, id="id", label="label")
        names = BINARY if task == "binary" else REGRESSION
        results = []
        for start, end, step in QUERIES:
            for segment in (None, "plan=b"):
                a = split.metrics(names, start=start, end=end, step=step, segment=segment)
                b = whole.metrics(names, start=start, end=end, step=step, segment=segment)
                results.append((a, b, segment, step is None or step == "13m"))
        return results


class TestBatchingInvariance:
    """Random batches and feedback in random order give the metrics of one batch, and sklearn's."""

    @settings(max_examples=7, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios("binary"))
    def test_binary(self, ref, scenario):
        frame, ops = scenario
        for a, b, segment, against_sklearn in run(frame, ops, "binary", "prop"):
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)
            if not against_sklearn:  # the 7h windows: split == whole is checked above
                continue
            rows = frame if segment is None else frame[frame["plan"] == "b"]
            for _, row in a.iterrows():
                window = ref.window(rows, row["window_start"], row["window_end"])
                ref.check(row, ref.expected("binary", window, pred="score", label="label"))

    @settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios("regression"))
    def test_regression(self, ref, scenario):
        frame, ops = scenario
        for a, b, segment, against_sklearn in run(frame, ops, "regression", "propreg"):
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)
            if not against_sklearn:  # the 7h windows: split == whole is checked above
                continue
            rows = frame if segment is None else frame[frame["plan"] == "b"]
            for _, row in a.iterrows():
                window = ref.window(rows, row["window_start"], row["window_end"])
                ref.check(row, ref.expected("regression", window, pred="score", label="label"))


class TestContractExample:
    """The usage shown in the design's API contract works end to end."""

    def test_contract_walkthrough(self, ref):
        df = ref.binary_rows(n=200, seed=81).rename(columns={"id": "request_id"})
        with mlpulse.connect(":memory:") as pulse:
            model = pulse.model(
                "churn",
                version="v1",
                task="binary",
                reference=df.drop(columns=["request_id", "ts", "latency_ms"]),
                prediction="score",
                label="churned",
                threshold=0.5,
                segments=["plan"],
            )
            report = model.log_batch(df.drop(columns=["churned"]), id="request_id", timestamp="ts")
            assert (report.received, report.stored, report.quarantined) == (200, 200, 0)
            model.log_feedback_batch(df, id="request_id", label="churned")
            model.log(
                id="late1",
                features={"age": 31, "plan": "pro"},
                prediction=0.83,
                timestamp="2026-01-05T12:00:00Z",
                latency_ms=4.1,
            )
            model.log_feedback(id="late1", label=1)
            pulse.flush()

            @mlpulse.metric("test_api_top_decile_precision")
            def top_decile_precision(y_true, y_pred):
                k = max(1, len(y_true) // 10)
                return float(np.mean(y_true[np.argsort(-y_pred, kind="stable")[:k]]))

            try:
                frame = model.metrics(
                    ["accuracy", "f1", "roc_auc", "test_api_top_decile_precision"],
                    start="2026-01-05",
                    end="2026-01-06",
                    step="1h",
                )
            finally:
                unregister("test_api_top_decile_precision")
            assert len(frame) == 24
            assert list(frame.columns[:4]) == ["window_start", "window_end", "n", "n_labeled"]
            full = pd.concat(
                [
                    df.rename(columns={"request_id": "id"}),
                    pd.DataFrame(
                        {
                            "id": ["late1"],
                            "ts": [pd.Timestamp("2026-01-05T12:00:00Z")],
                            "score": [0.83],
                            "churned": [1],
                        }
                    ),
                ]
            )
            for _, row in frame.iterrows():
                window = ref.window(full, row["window_start"], row["window_end"])
                ref.check(
                    row,
                    ref.expected("binary", window, pred="score", label="churned"),
                    names=["n", "n_labeled", "accuracy", "f1", "roc_auc"],
                )
                if len(window):
                    want = top_decile_precision(
                        window["churned"].to_numpy(), window["score"].to_numpy()
                    )
                    assert row["test_api_top_decile_precision"] == pytest.approx(want)
