"""Late, out-of-order, duplicated, corrected and early feedback gives scikit-learn's metrics
with the final labels, each label counted once, in the prediction's event-time bucket."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

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
MULTICLASS = ["accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro", "f1_weighted"]
REGRESSION = ["mae", "mse", "rmse", "mape", "r2", "mean_error"]

WINDOWS = [
    ("2026-01-05T00:00:00Z", "2026-01-08T00:00:00Z", None),
    ("2026-01-05T04:33:21Z", "2026-01-07T02:07:09Z", "11h"),
    ("2026-01-05T23:41:07.5Z", "2026-01-06T00:19:53Z", "7m"),
]


def check_all(model, df, ref, task="binary", pred="score", label="churned", names=BINARY):
    """Every window of WINDOWS equals the reference computed from ``df`` (the final labels)."""
    for start, end, step in WINDOWS:
        frame = model.metrics(names, start=start, end=end, step=step)
        for _, row in frame.iterrows():
            rows = ref.window(df, row["window_start"], row["window_end"])
            ref.check(
                row,
                ref.expected(task, rows, pred=pred, label=label),
                where=f"[{row['window_start']}, {row['window_end']})",
            )


class TestLateFeedback:
    """Labels arriving after their predictions, in any order and batching, are joined by id."""

    def test_shuffled_batches(self, binary_model, ref):
        df = ref.binary_rows(n=600, seed=31)
        ref.log_binary(binary_model, df, labels=False)
        labels = df[["id", "churned"]].sample(frac=1.0, random_state=1)
        for idx in np.array_split(np.arange(len(labels)), 7):
            chunk = labels.iloc[idx]
            report = binary_model.log_feedback_batch(chunk, id="id", label="churned")
            assert report.received == report.stored == len(chunk)
            assert report.matched == len(chunk)
        check_all(binary_model, df, ref)

    def test_partial_labels_give_exact_coverage(self, binary_model, ref):
        df = ref.binary_rows(n=400, seed=32)
        ref.log_binary(binary_model, df, labels=False)
        some = df.sample(n=137, random_state=2)
        binary_model.log_feedback_batch(some[["id", "churned"]], id="id", label="churned")
        final = df.assign(churned=df["churned"].where(df["id"].isin(some["id"])))
        check_all(binary_model, final, ref)

    def test_late_label_lands_in_the_prediction_bucket(self, binary_model, ref):
        df = ref.binary_rows(n=200, seed=33, span=timedelta(hours=6))  # 2026-01-05 00:00-06:00
        ref.log_binary(binary_model, df, labels=False)
        fb = df[["id", "churned"]].assign(label_ts=pd.Timestamp("2026-01-07T12:00:00Z"))
        binary_model.log_feedback_batch(fb, id="id", label="churned", timestamp="label_ts")
        day1 = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-06")
        ref.check(day1.iloc[0], ref.expected("binary", df, pred="score", label="churned"))
        assert day1["n_labeled"].iloc[0] == 200
        later = binary_model.metrics(["count", "accuracy"], start="2026-01-06", end="2026-01-08")
        assert later["n"].iloc[0] == 0 and later["n_labeled"].iloc[0] == 0
        # arrival time (now) holds nothing either
        assert binary_model.metrics(["count"], start="-1h", end="+1h")["n_labeled"].iloc[0] == 0

    def test_one_batch_labels_predictions_of_every_age(self, binary_model, ref):
        """Labels are joined over the newest day first, then further back: one batch whose
        labels are minutes, days and weeks late, mixed with unknown ids, is applied whole."""
        df = ref.binary_rows(n=900, seed=34, span=timedelta(days=40))
        ref.log_binary(binary_model, df, labels=False)
        ages = df["ts"].max() - df["ts"]
        picked = pd.concat(
            [
                df[ages < pd.Timedelta(days=1)].head(50),
                df[(ages > pd.Timedelta(days=3)) & (ages < pd.Timedelta(days=6))].head(50),
                df[ages > pd.Timedelta(days=30)].head(50),
            ]
        )
        unknown = pd.DataFrame({"id": ["x1", "x2"], "churned": [0, 1]})
        batch = pd.concat([picked[["id", "churned"]], unknown]).sample(frac=1.0, random_state=3)
        report = binary_model.log_feedback_batch(batch, id="id", label="churned")
        assert len(picked) > 100 and (report.matched, report.held) == (len(picked), 2)
        final = df.assign(churned=df["churned"].where(df["id"].isin(picked["id"])))
        frame = binary_model.metrics(
            BINARY, start=df["ts"].min(), end=df["ts"].max() + pd.Timedelta("1s")
        )
        assert frame["n_labeled"].iloc[0] == len(picked)
        ref.check(frame.iloc[0], ref.expected("binary", final, pred="score", label="churned"))


class TestDuplicateAndCorrectedLabels:
    """The same label twice counts once; a corrected label replaces the first."""

    def test_same_label_twice_is_counted_once(self, binary_model, ref):
        df = ref.binary_rows(n=300, seed=34)
        ref.log_binary(binary_model, df)
        again = binary_model.log_feedback_batch(
            df[["id", "churned"]].iloc[::2], id="id", label="churned"
        )
        assert again.received == again.stored + again.quarantined
        frame = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        assert frame["n_labeled"].iloc[0] == 300
        check_all(binary_model, df, ref)

    def test_duplicate_within_one_feedback_batch(self, binary_model, ref):
        df = ref.binary_rows(n=200, seed=35)
        ref.log_binary(binary_model, df, labels=False)
        doubled = pd.concat([df[["id", "churned"]], df[["id", "churned"]].iloc[:50]])
        report = binary_model.log_feedback_batch(doubled, id="id", label="churned")
        assert report.received == 250 == report.stored + report.quarantined
        frame = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        assert frame["n_labeled"].iloc[0] == 200
        check_all(binary_model, df, ref)

    def test_correction_replaces_first_label(self, binary_model, ref):
        df = ref.binary_rows(n=500, seed=36)
        ref.log_binary(binary_model, df)
        flip = df.sample(frac=0.3, random_state=3)
        corrected = flip.assign(churned=1 - flip["churned"])[["id", "churned"]]
        binary_model.log_feedback_batch(corrected, id="id", label="churned")
        final = df.copy()
        final.loc[flip.index, "churned"] = 1 - final.loc[flip.index, "churned"]
        frame = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        assert frame["n_labeled"].iloc[0] == 500
        check_all(binary_model, final, ref)

    def test_correction_back_and_forth(self, binary_model, ref):
        df = ref.binary_rows(n=200, seed=37)
        ref.log_binary(binary_model, df)
        flipped = df.assign(churned=1 - df["churned"])
        binary_model.log_feedback_batch(flipped[["id", "churned"]], id="id", label="churned")
        check_all(binary_model, flipped, ref)
        binary_model.log_feedback_batch(df[["id", "churned"]], id="id", label="churned")
        check_all(binary_model, df, ref)

    def test_later_row_wins_within_a_batch(self, binary_model, ref):
        df = ref.binary_rows(n=200, seed=38)
        ref.log_binary(binary_model, df, labels=False)
        wrong = df.assign(churned=1 - df["churned"])[["id", "churned"]]
        batch = pd.concat([wrong, df[["id", "churned"]]]).reset_index(drop=True)
        binary_model.log_feedback_batch(batch, id="id", label="churned")
        check_all(binary_model, df, ref)

    def test_multiclass_correction(self, pulse, ref):
        model = pulse.model("zoo", task="multiclass", prediction="pred", label="animal")
        df = ref.multiclass_rows(n=300, seed=39)
        model.log_batch(df.drop(columns=["animal"]), id="id", timestamp="ts")
        wrong = df.assign(animal="cat")
        model.log_feedback_batch(wrong[["id", "animal"]], id="id", label="animal")
        model.log_feedback_batch(
            df[["id", "animal"]].sample(frac=1, random_state=4), id="id", label="animal"
        )
        frame = model.metrics(MULTICLASS + ["count"], start="2026-01-05", end="2026-01-08")
        assert frame["n_labeled"].iloc[0] == 300
        ref.check(frame.iloc[0], ref.expected("multiclass", df, pred="pred", label="animal"))

    def test_regression_correction(self, pulse, ref):
        model = pulse.model("price", task="regression", prediction="yhat", label="y")
        df = ref.regression_rows(n=300, seed=40)
        model.log_batch(df.drop(columns=["y"]), id="id", timestamp="ts")
        model.log_feedback_batch(df[["id", "y"]].assign(y=df["y"] * 3), id="id", label="y")
        model.log_feedback_batch(df[["id", "y"]], id="id", label="y")
        for start, end in (
            ("2026-01-05", "2026-01-08"),
            ("2026-01-05T02:02:02Z", "2026-01-05T23:23:23Z"),
        ):
            frame = model.metrics(REGRESSION, start=start, end=end)
            ref.check(
                frame.iloc[0],
                ref.expected("regression", ref.window(df, start, end), pred="yhat", label="y"),
            )


class TestEarlyFeedback:
    """Feedback before its prediction is held, then applied when the prediction arrives."""

    def test_feedback_before_prediction(self, binary_model, ref):
        df = ref.binary_rows(n=300, seed=41)
        held = binary_model.log_feedback_batch(df[["id", "churned"]], id="id", label="churned")
        assert held.received == held.stored == 300
        assert held.held == 300 and held.matched == 0
        before = binary_model.metrics(["count"], start="2026-01-05", end="2026-01-08")
        assert before["n"].iloc[0] == 0 and before["n_labeled"].iloc[0] == 0
        binary_model.log_batch(df.drop(columns=["churned"]), id="id", timestamp="ts")
        check_all(binary_model, df, ref)

    def test_early_feedback_in_pieces_and_mixed(self, binary_model, ref):
        df = ref.binary_rows(n=400, seed=42)
        order = df.sample(frac=1, random_state=5)
        early, late = order.iloc[:250], order.iloc[250:]
        binary_model.log_feedback_batch(
            early[["id", "churned"]].iloc[:100], id="id", label="churned"
        )
        binary_model.log_batch(df.drop(columns=["churned"]).iloc[:200], id="id", timestamp="ts")
        binary_model.log_feedback_batch(
            early[["id", "churned"]].iloc[100:], id="id", label="churned"
        )
        binary_model.log_batch(df.drop(columns=["churned"]).iloc[200:], id="id", timestamp="ts")
        binary_model.log_feedback_batch(late[["id", "churned"]], id="id", label="churned")
        check_all(binary_model, df, ref)

    def test_early_correction_last_one_wins(self, binary_model, ref):
        df = ref.binary_rows(n=150, seed=43)
        binary_model.log_feedback_batch(
            df.assign(churned=1 - df["churned"])[["id", "churned"]], id="id", label="churned"
        )
        binary_model.log_feedback_batch(df[["id", "churned"]], id="id", label="churned")
        binary_model.log_batch(df.drop(columns=["churned"]), id="id", timestamp="ts")
        frame = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        assert frame["n_labeled"].iloc[0] == 150
        check_all(binary_model, df, ref)

    def test_feedback_for_unknown_ids_does_not_count(self, binary_model, ref):
        df = ref.binary_rows(n=100, seed=44)
        ref.log_binary(binary_model, df)
        ghost = pd.DataFrame({"id": [f"ghost{i}" for i in range(20)], "churned": [1] * 20})
        report = binary_model.log_feedback_batch(ghost, id="id", label="churned")
        assert report.held == 20
        frame = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        assert frame["n_labeled"].iloc[0] == 100
        ref.check(frame.iloc[0], ref.expected("binary", df, pred="score", label="churned"))

    def test_segment_metrics_after_early_feedback(self, binary_model, ref):
        df = ref.binary_rows(n=300, seed=45)
        binary_model.log_feedback_batch(df[["id", "churned"]], id="id", label="churned")
        binary_model.log_batch(df.drop(columns=["churned"]), id="id", timestamp="ts")
        for plan in ("pro", "free"):
            frame = binary_model.metrics(
                BINARY,
                start="2026-01-05T04:33:21Z",
                end="2026-01-07T02:07:09Z",
                segment=f"plan={plan}",
            )
            rows = ref.window(
                df[df["plan"] == plan], "2026-01-05T04:33:21Z", "2026-01-07T02:07:09Z"
            )
            ref.check(
                frame.iloc[0],
                ref.expected("binary", rows, pred="score", label="churned"),
                where=plan,
            )

    def test_late_correction_keeps_segments_right(self, binary_model, ref):
        df = ref.binary_rows(n=300, seed=46)
        ref.log_binary(binary_model, df)
        flip = df[df["plan"] == "pro"].sample(frac=0.5, random_state=6)
        binary_model.log_feedback_batch(
            flip.assign(churned=1 - flip["churned"])[["id", "churned"]], id="id", label="churned"
        )
        final = df.copy()
        final.loc[flip.index, "churned"] = 1 - final.loc[flip.index, "churned"]
        for plan in ("pro", "team"):
            frame = binary_model.metrics(
                BINARY, start="2026-01-05", end="2026-01-08", segment=f"plan={plan}"
            )
            ref.check(
                frame.iloc[0],
                ref.expected("binary", final[final["plan"] == plan], pred="score", label="churned"),
                where=plan,
            )
        assert not math.isnan(
            binary_model.metrics(["f1"], start="2026-01-05", end="2026-01-08")["f1"].iloc[0]
        )


class TestFeedbackLabelFormats:
    """Binary labels given as booleans or 'true'/'false' text are accepted as 1/0."""

    @pytest.mark.parametrize("kind", ["bool", "text", "float"])
    def test_label_formats(self, binary_model, ref, kind):
        df = ref.binary_rows(n=120, seed=47)
        ref.log_binary(binary_model, df, labels=False)
        labels = df["churned"].astype(bool)
        if kind == "text":
            labels = labels.map({True: "true", False: "False"})
        elif kind == "float":
            labels = labels.astype(float)
        report = binary_model.log_feedback_batch(
            pd.DataFrame({"id": df["id"], "churned": labels}), id="id", label="churned"
        )
        assert report.stored == 120
        frame = binary_model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        ref.check(frame.iloc[0], ref.expected("binary", df, pred="score", label="churned"))


def labels(ids, value=1) -> pd.DataFrame:
    return pd.DataFrame({"id": list(ids), "churned": [value] * len(ids)})


def predictions(ids) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": list(ids), "ts": "2026-01-05T10:00:00Z", "score": 0.9, "plan": "pro"}
    )


def held_ids(model) -> list[str]:
    table = model._pulse.store.fetch_arrow(
        f"SELECT __id FROM pending_{model.spec.model_id} ORDER BY __id"
    )
    return table.column("__id").to_pylist()


class TestHeldLabelLimits:
    """Labels for unknown ids are held up to a cap and for a limited time; the rest go to the
    quarantine with a reason, so nothing is lost silently and the store stays bounded."""

    def test_cap_quarantines_new_unknown_ids(self, binary_model):
        binary_model._pulse.engine.max_held = 3
        report = binary_model.log_feedback_batch(
            labels(["u1", "u2", "u3", "u4", "u5"]), id="id", label="churned"
        )
        assert (report.received, report.stored, report.quarantined) == (5, 3, 2)
        assert report.held == 3
        q = binary_model.quarantined()
        assert sorted(q["id"]) == ["u4", "u5"]
        assert (
            q["reason"]
            .str.contains("too many held labels for unknown ids (cap 3", regex=False)
            .all()
        )
        assert q["kind"].eq("feedback").all()
        assert held_ids(binary_model) == ["u1", "u2", "u3"]
        # a correction of a held label does not grow the table; more new ids are refused
        again = binary_model.log_feedback_batch(labels(["u1", "u6"], 0), id="id", label="churned")
        assert (again.stored, again.quarantined, again.held) == (1, 1, 1)
        assert held_ids(binary_model) == ["u1", "u2", "u3"]
        # labels for stored predictions are never refused, whatever the cap
        binary_model.log_batch(predictions(["p1", "p2", "u1"]), id="id", timestamp="ts")
        matched = binary_model.log_feedback_batch(labels(["p1", "p2"]), id="id", label="churned")
        assert (matched.stored, matched.quarantined, matched.matched) == (2, 0, 2)
        frame = binary_model.metrics(["accuracy"], start="2026-01-05", end="2026-01-06")
        # u1 took its corrected held label (0, against a score of 0.9); p1 and p2 are right
        assert frame["n_labeled"].iloc[0] == 3
        assert frame["accuracy"].iloc[0] == pytest.approx(2 / 3)
        assert held_ids(binary_model) == ["u2", "u3"]

    def test_refused_rows_are_not_in_the_audit_log(self, binary_model):
        binary_model._pulse.engine.max_held = 1
        binary_model.log_feedback_batch(labels(["a", "b", "b"]), id="id", label="churned")
        audit = binary_model._pulse.store.fetch_arrow(
            f"SELECT __id FROM feedback_{binary_model.spec.model_id}"
        )
        assert audit.column("__id").to_pylist() == ["a"]
        # both rows for "b" are quarantined: received == stored + quarantined
        assert sorted(binary_model.quarantined()["batch_row"]) == [1, 2]

    def test_expired_held_labels_move_to_the_quarantine(self, binary_model, monkeypatch):
        from mlpulse.engine import ingest

        report = binary_model.log_feedback_batch(
            labels(["late1", "late2"]), id="id", label="churned"
        )
        assert report.held == 2
        start = ingest._naive_now()
        monkeypatch.setattr(ingest, "_naive_now", lambda: start + timedelta(days=31))
        fresh = binary_model.log_feedback_batch(labels(["new1"]), id="id", label="churned")
        assert (fresh.received, fresh.stored, fresh.quarantined, fresh.held) == (1, 1, 0, 1)
        assert held_ids(binary_model) == ["new1"]
        q = binary_model.quarantined()
        assert sorted(q["id"]) == ["late1", "late2"]
        assert q["reason"].str.contains("no prediction with this id arrived within 30d").all()
        payload = json.loads(q["payload"].iloc[0])
        assert payload["label"] == 1 and payload["id"] in ("late1", "late2")
        assert (q["batch_row"] == -1).all()
        # the prediction that comes after the expiry is not labeled by the expired label
        binary_model.log_batch(predictions(["late1", "new1"]), id="id", timestamp="ts")
        frame = binary_model.metrics(["count"], start="2026-01-05", end="2026-01-06")
        assert (frame["n"].iloc[0], frame["n_labeled"].iloc[0]) == (2, 1)

    def test_expiry_can_be_turned_off_and_cap_set_by_environment(self, monkeypatch):
        import mlpulse
        from mlpulse.errors import ConfigError

        monkeypatch.setenv("MLPULSE_MAX_HELD_LABELS", "2")
        monkeypatch.setenv("MLPULSE_HELD_LABEL_EXPIRY", "never")
        with mlpulse.connect(":memory:") as pulse:
            assert (pulse.engine.max_held, pulse.engine.held_expiry) == (2, None)
        monkeypatch.setenv("MLPULSE_HELD_LABEL_EXPIRY", "2h")
        with mlpulse.connect(":memory:") as pulse:
            assert pulse.engine.held_expiry == 2 * 3600 * 10**6
        monkeypatch.setenv("MLPULSE_MAX_HELD_LABELS", "lots")
        with pytest.raises(ConfigError, match="MLPULSE_MAX_HELD_LABELS"):
            mlpulse.connect(":memory:")

    def test_pending_table_without_arrival_time(self, binary_model, monkeypatch):
        """A pending table from before held labels expired gets the column; its rows' clock
        starts when it is added."""
        from mlpulse.engine import ingest

        binary_model.log_feedback_batch(labels(["old"]), id="id", label="churned")
        store = binary_model._pulse.store
        with store.write() as conn:
            conn.execute(
                f"ALTER TABLE pending_{binary_model.spec.model_id} DROP COLUMN __received_at"
            )
        binary_model.log_feedback_batch(labels(["other"]), id="id", label="churned")
        assert held_ids(binary_model) == ["old", "other"]
        start = ingest._naive_now()
        monkeypatch.setattr(ingest, "_naive_now", lambda: start + timedelta(days=30, hours=1))
        binary_model.log_feedback_batch(labels(["x"]), id="id", label="churned")
        assert held_ids(binary_model) == ["x"]
        assert sorted(binary_model.quarantined()["id"]) == ["old", "other"]
