"""Bad rows are quarantined with a reason naming the model and column; nothing is lost."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlpulse.errors import SchemaError


def good_rows(n: int = 6) -> dict[str, list]:
    return {
        "id": [f"ok{i}" for i in range(n)],
        "ts": [f"2026-01-05T10:{i:02d}:00Z" for i in range(n)],
        "score": [0.1 * (i + 1) for i in range(n)],
        "age": [30.0 + i for i in range(n)],
        "plan": ["pro", "free"] * (n // 2),
    }


def with_bad(column: str, value) -> pd.DataFrame:
    rows = good_rows()
    frame = pd.DataFrame(rows).astype(object)
    frame.loc[len(frame)] = {
        "id": "bad",
        "ts": "2026-01-05T10:30:00Z",
        "score": 0.5,
        "age": 1.0,
        "plan": "pro",
    }
    frame.loc[len(frame) - 1, column] = value
    return frame


def check_report(report, received, stored, quarantined):
    assert report.received == report.stored + report.quarantined
    assert (report.received, report.stored, report.quarantined) == (received, stored, quarantined)


class TestQuarantinedPredictions:
    """Rows with a missing or malformed id, timestamp or prediction are quarantined with a reason."""

    @pytest.mark.parametrize(
        ("column", "value", "words"),
        [
            ("id", None, "id"),
            ("id", "", "id"),
            ("id", "   ", "id"),
            ("ts", None, "timestamp"),
            ("ts", "abc", "timestamp"),
            ("ts", "2026-13-45", "timestamp"),
            ("score", None, "prediction"),
            ("score", "abc", "prediction"),
            ("score", float("nan"), "prediction"),
            ("score", float("inf"), "prediction"),
            ("score", 1.5, "prediction"),
            ("score", -0.01, "prediction"),
        ],
    )
    def test_bad_value_is_quarantined(self, binary_model, column, value, words):
        frame = with_bad(column, value)
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        check_report(report, 7, 6, 1)
        q = binary_model.quarantined()
        assert len(q) == 1
        reason = q["reason"].iloc[0]
        assert "churn" in reason
        assert repr(column) in reason or column in reason
        assert words in reason.lower()
        payload = json.loads(q["payload"].iloc[0])
        assert payload["plan"] == "pro" and payload["age"] == 1.0
        frame_metrics = binary_model.metrics(["count"], start="2026-01-05", end="2026-01-06")
        assert frame_metrics["n"].iloc[0] == 6

    def test_quarantine_keeps_original_payload(self, binary_model):
        frame = pd.DataFrame(
            {
                "id": ["a", "b", "c"],
                "ts": ["2026-01-05T00:00:00Z"] * 3,
                "score": ["0.3", "high", None],
                "note": ["x", "keep me", "z"],
            }
        )
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        check_report(report, 3, 1, 2)
        q = binary_model.quarantined()
        assert {"reason", "payload"} <= set(q.columns)
        payloads = {row["id"]: json.loads(row["payload"]) for _, row in q.iterrows()}
        assert payloads["b"] == {
            "id": "b",
            "ts": "2026-01-05T00:00:00Z",
            "score": "high",
            "note": "keep me",
        }
        assert payloads["c"]["score"] is None

    def test_every_report_balances(self, binary_model):
        rng = np.random.default_rng(0)
        n = 200
        scores = rng.uniform(-0.5, 1.5, size=n).astype(object)
        scores[rng.choice(n, 20, replace=False)] = None
        ids = np.array([f"i{i}" for i in range(n)], dtype=object)
        ids[rng.choice(n, 10, replace=False)] = None
        ids[5] = ids[6] = "same"
        frame = pd.DataFrame({"id": ids, "ts": "2026-01-05T01:00:00Z", "score": scores})
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        assert report.received == n == report.stored + report.quarantined
        assert report.quarantined == len(binary_model.quarantined())
        stored = binary_model.metrics(["count"], start="2026-01-05", end="2026-01-06")["n"].iloc[0]
        assert stored == report.stored

    def test_duplicate_ids_within_a_batch(self, binary_model):
        frame = pd.DataFrame(
            {
                "id": ["a", "b", "a", "a"],
                "ts": ["2026-01-05T00:00:00Z"] * 4,
                "score": [0.1, 0.2, 0.3, 0.4],
            }
        )
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        check_report(report, 4, 2, 2)
        q = binary_model.quarantined()
        assert q["id"].tolist() == ["a", "a"]
        assert all("duplicate" in r and "churn" in r for r in q["reason"])
        frame = binary_model.metrics(["prediction_mean"], start="2026-01-05", end="2026-01-06")
        assert frame["prediction_mean"].iloc[0] == pytest.approx(0.15)  # first 'a' kept

    def test_duplicate_ids_already_stored(self, binary_model):
        first = binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        check_report(first, 6, 6, 0)
        again = pd.DataFrame(good_rows()).iloc[:3]
        again = pd.concat(
            [
                again,
                pd.DataFrame(
                    {
                        "id": ["new"],
                        "ts": ["2026-01-05T11:00:00Z"],
                        "score": [0.9],
                        "age": [50.0],
                        "plan": ["pro"],
                    }
                ),
            ]
        )
        report = binary_model.log_batch(again, id="id", timestamp="ts")
        check_report(report, 4, 1, 3)
        q = binary_model.quarantined()
        assert sorted(q["id"]) == ["ok0", "ok1", "ok2"]
        assert all("duplicate" in r and "churn" in r for r in q["reason"])
        assert (
            binary_model.metrics(["count"], start="2026-01-05", end="2026-01-06")["n"].iloc[0] == 7
        )

    def test_duplicate_ids_stored_and_repeated_in_one_batch(self, binary_model):
        """Both duplicate checks in one batch (the within-batch one runs only when Arrow
        finds a repeat): each row gets its own reason, in batch order."""
        binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        rows = good_rows(6)
        rows["id"] = ["ok0", "x", "x", "ok1", "y", "ok1"]
        report = binary_model.log_batch(pd.DataFrame(rows), id="id", timestamp="ts")
        check_report(report, 6, 2, 4)
        q = binary_model.quarantined().sort_values("batch_row")
        assert q["batch_row"].tolist() == [0, 2, 3, 5]
        assert q["id"].tolist() == ["ok0", "x", "ok1", "ok1"]
        stored = ["already stored" in r for r in q["reason"]]
        assert stored == [True, False, True, True]
        assert "within the batch" in q["reason"].iloc[1]
        unique = binary_model.log_batch(
            pd.DataFrame({**good_rows(2), "id": ["z1", "z2"]}), id="id", timestamp="ts"
        )
        check_report(unique, 2, 2, 0)

    def test_batch_whose_segment_column_is_all_null(self, binary_model):
        binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        frame = pa.table(
            {
                "id": ["n1", "n2"],
                "ts": ["2026-01-05T11:00:00Z"] * 2,
                "score": [0.9, 0.1],
                "plan": pa.array([None, None], pa.string()),
            }
        )
        check_report(binary_model.log_batch(frame, id="id", timestamp="ts"), 2, 2, 0)
        out = binary_model.metrics(["count"], start="2026-01-05", end="2026-01-06")
        assert out["n"].iloc[0] == 8
        pro = binary_model.metrics(
            ["count"], start="2026-01-05", end="2026-01-06", segment="plan=pro"
        )
        assert pro["n"].iloc[0] == 3

    def test_text_prediction_in_arrow_string_column(self, binary_model):
        frame = pa.table(
            {
                "id": ["a", "b", "c"],
                "ts": ["2026-01-05T00:00:00Z"] * 3,
                "score": ["0.25", "abc", "0.75"],
            }
        )
        check_report(binary_model.log_batch(frame, id="id", timestamp="ts"), 3, 2, 1)
        reason = binary_model.quarantined()["reason"].iloc[0]
        assert "churn" in reason and "'score'" in reason
        out = binary_model.metrics(["prediction_mean"], start="2026-01-05", end="2026-01-06")
        assert out["prediction_mean"].iloc[0] == pytest.approx(0.5)

    def test_integer_ids(self, binary_model):
        frame = pd.DataFrame(
            {"id": [1, 2, 3], "ts": ["2026-01-05T00:00:00Z"] * 3, "score": [0.1, 0.2, 0.9]}
        )
        check_report(binary_model.log_batch(frame, id="id", timestamp="ts"), 3, 3, 0)
        fb = binary_model.log_feedback_batch(
            pd.DataFrame({"id": [3, 1], "churned": [1, 0]}), id="id", label="churned"
        )
        assert fb.matched == 2
        frame = binary_model.metrics(["accuracy"], start="2026-01-05", end="2026-01-06")
        assert frame["n_labeled"].iloc[0] == 2 and frame["accuracy"].iloc[0] == 1.0

    def test_quarantined_time_filter(self, binary_model):
        binary_model.log_batch(with_bad("score", None), id="id", timestamp="ts")
        assert len(binary_model.quarantined(start="-1h", end="+1h")) == 1
        assert len(binary_model.quarantined(start="2020-01-01", end="2020-01-02")) == 0

    def test_multiclass_missing_prediction(self, pulse):
        model = pulse.model("zoo", task="multiclass", prediction="pred", label="animal")
        frame = pd.DataFrame(
            {"id": ["a", "b", "c"], "ts": ["2026-01-05T00:00:00Z"] * 3, "pred": ["cat", None, ""]}
        )
        check_report(model.log_batch(frame, id="id", timestamp="ts"), 3, 1, 2)
        assert all("'pred'" in r and "zoo" in r for r in model.quarantined()["reason"])

    def test_regression_accepts_any_finite_number(self, pulse):
        model = pulse.model("price", task="regression", prediction="yhat", label="y")
        frame = pd.DataFrame(
            {
                "id": list("abcde"),
                "ts": ["2026-01-05T00:00:00Z"] * 5,
                "yhat": [-1e300, 5.0, 1e-300, float("nan"), float("-inf")],
            }
        )
        check_report(model.log_batch(frame, id="id", timestamp="ts"), 5, 3, 2)


class TestWrongTypes:
    """A malformed feature value is stored as null; the row itself is kept."""

    def test_text_in_numeric_feature_is_nulled(self, binary_model):
        binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        assert binary_model.spec.features["age"] == "numeric"
        frame = pd.DataFrame(
            {
                "id": ["x", "y", "z"],
                "ts": ["2026-01-05T10:40:00Z"] * 3,
                "score": [0.2, 0.4, 0.6],
                "age": ["abc", "41", None],
                "plan": ["pro"] * 3,
            }
        )
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        check_report(report, 3, 3, 0)
        summary = binary_model.summary(start="2026-01-05", end="2026-01-06")
        age = summary[summary["column"] == "age"].iloc[0]
        assert age["count"] == 7  # 6 good rows + "41"
        assert age["missing"] == 2  # "abc" stored as null, and the real null
        assert age["mean"] == pytest.approx(np.mean([30, 31, 32, 33, 34, 35, 41]))
        assert binary_model.spec.features["age"] == "numeric"

    def test_new_column_is_added_to_the_schema(self, binary_model):
        binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        assert set(binary_model.spec.features) == {"age", "plan"}
        frame = pd.DataFrame(good_rows()).assign(
            id=[f"n{i}" for i in range(6)], region=["eu"] * 6, income=np.arange(6.0)
        )
        check_report(binary_model.log_batch(frame, id="id", timestamp="ts"), 6, 6, 0)
        features = binary_model.spec.features
        assert features["region"] == "categorical" and features["income"] == "numeric"
        assert "id" not in features and "ts" not in features and "score" not in features
        # a later batch without the new columns is still fine
        check_report(
            binary_model.log_batch(
                pd.DataFrame(good_rows()).assign(id=[f"m{i}" for i in range(6)]),
                id="id",
                timestamp="ts",
            ),
            6,
            6,
            0,
        )
        summary = binary_model.summary(start="2026-01-05", end="2026-01-06")
        income = summary[summary["column"] == "income"].iloc[0]
        assert income["count"] == 6 and income["missing"] == 6

    def test_mixed_pandas_column_in_numeric_feature(self, binary_model):
        binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        frame = pd.DataFrame(
            {
                "id": ["x", "y", "z"],
                "ts": ["2026-01-05T10:40:00Z"] * 3,
                "score": [0.2, 0.4, 0.6],
                "age": [31, "abc", 40.5],
                "plan": ["pro"] * 3,
            }
        )
        check_report(binary_model.log_batch(frame, id="id", timestamp="ts"), 3, 3, 0)
        summary = binary_model.summary(start="2026-01-05", end="2026-01-06")
        age = summary[summary["column"] == "age"].iloc[0]
        assert age["count"] == 8 and age["missing"] == 1

    def test_latency_and_trace_columns_are_not_features(self, binary_model):
        frame = pd.DataFrame(good_rows()).assign(latency_ms=1.0, trace_id="t")
        binary_model.log_batch(frame, id="id", timestamp="ts")
        assert "latency_ms" not in binary_model.spec.features
        assert "trace_id" not in binary_model.spec.features

    def test_bad_latency_does_not_drop_the_row(self, binary_model):
        frame = pd.DataFrame(good_rows()).astype({"age": object})
        frame["latency_ms"] = [1.0, -5.0, float("nan"), "slow", 2.0, 3.0]
        check_report(binary_model.log_batch(frame, id="id", timestamp="ts"), 6, 6, 0)
        out = binary_model.metrics(["latency_p50", "count"], start="2026-01-05", end="2026-01-06")
        assert out["n"].iloc[0] == 6
        assert 1.0 <= out["latency_p50"].iloc[0] <= 3.0


class TestSchemaErrors:
    """A batch without a required column raises SchemaError naming it; nothing is stored."""

    @pytest.mark.parametrize(
        ("missing", "kwargs"),
        [("request_id", {"id": "request_id"}), ("when", {"timestamp": "when"})],
    )
    def test_missing_column(self, binary_model, missing, kwargs):
        kwargs = {"id": "id", "timestamp": "ts", **kwargs}
        with pytest.raises(SchemaError) as info:
            binary_model.log_batch(pd.DataFrame(good_rows()), **kwargs)
        assert repr(missing) in str(info.value) and "churn" in str(info.value)
        assert (
            binary_model.metrics(["count"], start="2026-01-05", end="2026-01-06")["n"].iloc[0] == 0
        )

    def test_missing_prediction_column(self, binary_model):
        with pytest.raises(SchemaError, match="'score'"):
            binary_model.log_batch(
                pd.DataFrame(good_rows()).drop(columns=["score"]), id="id", timestamp="ts"
            )

    def test_missing_feedback_columns(self, binary_model):
        with pytest.raises(SchemaError, match="'churned'"):
            binary_model.log_feedback_batch(pd.DataFrame({"id": ["a"], "label": [1]}), id="id")
        with pytest.raises(SchemaError, match="'rid'"):
            binary_model.log_feedback_batch(pd.DataFrame({"id": ["a"], "churned": [1]}), id="rid")

    def test_not_a_table(self, binary_model):
        with pytest.raises(SchemaError):
            binary_model.log_batch(42)


class TestQuarantinedFeedback:
    """Bad feedback rows are quarantined too, and received == stored + quarantined."""

    @pytest.mark.parametrize("label", [None, "abc", 2, -1, 0.5, float("nan"), float("inf")])
    def test_bad_binary_label(self, binary_model, label):
        binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        fb = pd.DataFrame({"id": ["ok0", "ok1"], "churned": pd.Series([1, label], dtype=object)})
        report = binary_model.log_feedback_batch(fb, id="id", label="churned")
        check_report(report, 2, 1, 1)
        q = binary_model.quarantined()
        assert len(q) == 1 and q["id"].iloc[0] == "ok1"
        assert "churn" in q["reason"].iloc[0] and "'churned'" in q["reason"].iloc[0]
        out = binary_model.metrics(["accuracy"], start="2026-01-05", end="2026-01-06")
        assert out["n_labeled"].iloc[0] == 1

    def test_text_label_in_arrow_string_column(self, binary_model):
        binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        fb = pa.table({"id": ["ok0", "ok1", "ok2"], "churned": ["1", "abc", "0"]})
        check_report(binary_model.log_feedback_batch(fb, id="id", label="churned"), 3, 2, 1)
        assert "'churned'" in binary_model.quarantined()["reason"].iloc[0]

    def test_feedback_with_missing_id(self, binary_model):
        report = binary_model.log_feedback_batch(
            pd.DataFrame({"id": [None, "a"], "churned": [1, 0]}), id="id", label="churned"
        )
        check_report(report, 2, 1, 1)
        assert "'id'" in binary_model.quarantined()["reason"].iloc[0]

    def test_bad_regression_label(self, pulse):
        model = pulse.model("price", task="regression", prediction="yhat", label="y")
        report = model.log_feedback_batch(
            pd.DataFrame({"id": ["a", "b", "c"], "y": [1.0, float("nan"), "x"]}), id="id", label="y"
        )
        check_report(report, 3, 1, 2)

    def test_bad_feedback_timestamp(self, binary_model):
        fb = pa.table({"id": ["a", "b"], "churned": [1, 0], "t": ["2026-01-05T00:00:00Z", "nope"]})
        report = binary_model.log_feedback_batch(fb, id="id", label="churned", timestamp="t")
        check_report(report, 2, 1, 1)
        assert "'t'" in binary_model.quarantined()["reason"].iloc[0]

    def test_reason_survives_for_each_row(self, binary_model):
        binary_model.log_batch(pd.DataFrame(good_rows()), id="id", timestamp="ts")
        fb = pd.DataFrame(
            {
                "id": ["ok0", None, "ok2", "ok3"],
                "churned": pd.Series([1, 1, "maybe", 7], dtype=object),
            }
        )
        report = binary_model.log_feedback_batch(fb, id="id", label="churned")
        check_report(report, 4, 1, 3)
        q = binary_model.quarantined()
        assert len(q) == 3 and q["reason"].notna().all()
        assert not math.isnan(
            binary_model.metrics(["accuracy"], start="2026-01-05", end="2026-01-06")[
                "accuracy"
            ].iloc[0]
        )


def raw_rows(model) -> pd.DataFrame:
    """The model's stored raw rows, by id (what a query would read)."""
    table = model._pulse.store.fetch_arrow(f"SELECT * FROM raw_{model.spec.model_id} ORDER BY __id")
    return table.to_pandas().set_index("__id")


class TestRowsWithDifferentKeys:
    """A list of row dicts keeps every key of every row, not only the first row's."""

    ROWS = [
        {"id": "a", "score": 0.1, "ts": "2026-01-05T10:00:00Z"},
        {
            "id": "b",
            "score": 0.2,
            "ts": "2026-01-05T11:00:00Z",
            "age": 41,
            "latency_ms": 7.5,
            "trace_id": "t-b",
        },
        {"id": "c", "score": 0.3, "ts": "2026-01-05T12:00:00Z", "plan": "pro"},
    ]

    def test_log_batch_list_of_dicts_keeps_later_keys(self, binary_model):
        report = binary_model.log_batch(self.ROWS, id="id", timestamp="ts")
        check_report(report, 3, 3, 0)
        rows = raw_rows(binary_model)
        assert rows.loc["b", "age"] == 41 and np.isnan(rows.loc["a", "age"])
        assert rows.loc["b", "__latency_ms"] == 7.5
        assert rows.loc["b", "__trace_id"] == "t-b"
        assert rows.loc["c", "plan"] == "pro"
        assert {"age", "plan"} <= set(binary_model.spec.features)
        summary = binary_model.summary(start="2026-01-05", end="2026-01-06")
        counts = dict(zip(summary["column"], summary["count"], strict=True))
        assert counts["age"] == 1 and counts["plan"] == 1
        latency = binary_model.metrics(["latency_p50"], start="2026-01-05", end="2026-01-06")
        assert latency["latency_p50"].iloc[0] == pytest.approx(7.5)

    def test_timestamp_missing_from_the_first_row_is_honoured(self, binary_model):
        rows = [{"id": "x", "score": 0.5}] + self.ROWS[1:]
        report = binary_model.log_batch(rows, id="id", timestamp="ts")
        # the first row has no time in a batch that has a timestamp column: quarantined,
        # the others stored at their own times, not at arrival time
        check_report(report, 3, 2, 1)
        assert "missing timestamp" in binary_model.quarantined()["reason"].iloc[0]
        stored = raw_rows(binary_model)["__ts"]
        assert list(stored.astype(str)) == ["2026-01-05 11:00:00", "2026-01-05 12:00:00"]
        frame = binary_model.metrics(
            ["count"], start="2026-01-05T10:30:00Z", step="1h", end="2026-01-05T12:30:00Z"
        )
        assert frame["n"].tolist() == [1, 1]

    def test_mixed_types_in_a_later_key(self, binary_model):
        rows = [
            {"id": "a", "score": 0.1, "ts": "2026-01-05T10:00:00Z"},
            {"id": "b", "score": 0.2, "ts": "2026-01-05T10:00:00Z", "age": 3},
            {"id": "c", "score": 0.3, "ts": "2026-01-05T10:00:00Z", "age": "old"},
        ]
        report = binary_model.log_batch(rows, id="id", timestamp="ts")
        check_report(report, 3, 3, 0)
        rows = raw_rows(binary_model)  # a new column of mixed values is kept as text
        assert rows.loc["b", "age"] == "3" and rows.loc["c", "age"] == "old"

    def test_log_calls_with_different_feature_keys(self, pulse):
        model = pulse.model("keys", task="binary", prediction="score", label="y")
        model.log("r1", features={"age": 30}, prediction=0.1, timestamp="2026-01-05T00:00:00Z")
        model.log(
            "r2",
            features={"plan": "pro"},
            prediction=0.2,
            latency_ms=3.0,
            timestamp="2026-01-05T00:01:00Z",
        )
        model.log(
            "r3",
            features={"age": 50, "city": "Lyon"},
            prediction=0.3,
            trace_id="t3",
            timestamp="2026-01-05T00:02:00Z",
        )
        pulse.flush()
        rows = raw_rows(model)
        assert rows.loc["r1", "age"] == 30 and rows.loc["r3", "age"] == 50
        assert rows.loc["r2", "plan"] == "pro" and rows.loc["r3", "city"] == "Lyon"
        assert rows.loc["r2", "__latency_ms"] == 3.0 and rows.loc["r3", "__trace_id"] == "t3"
        assert list(rows["__ts"].astype(str)) == [
            "2026-01-05 00:00:00",
            "2026-01-05 00:01:00",
            "2026-01-05 00:02:00",
        ]


def numeric_times(value, dtype=None) -> pa.Table:
    """Three good rows with epoch-second times, and a row ``bad`` with ``value``."""
    base = 1_767_607_200.0  # 2026-01-05T10:00:00Z
    dtype = dtype or pa.float64()
    values = [base, base + 60, base + 120, value]
    ts = pa.array([float(v) if dtype == pa.float64() else int(v) for v in values], type=dtype)
    return pa.table({"id": ["a", "b", "c", "bad"], "ts": ts, "score": [0.1, 0.2, 0.3, 0.4]})


class TestTimestampRange:
    """Times outside the accepted range (a unit mistake, mostly) are quarantined, not stored."""

    @pytest.mark.parametrize(
        ("value", "words"),
        [
            (1_767_607_200_000, "looks like milliseconds"),
            (1_767_607_200_000_000, "looks like microseconds"),
            (1_767_607_200_000_000_000, "looks like nanoseconds"),
            (1e13, "outside the accepted range [1970-01-01, 2200-01-01)"),
            (9.3e12, "outside the accepted range"),  # past int64 microseconds
            (-1e13, "outside the accepted range"),
            (-1.0, "outside the accepted range"),
            (1e300, "outside the accepted range"),
            (float("inf"), "nan or infinite"),
            (float("-inf"), "nan or infinite"),
            (float("nan"), "nan or infinite"),
        ],
    )
    def test_numeric_time_out_of_range(self, binary_model, value, words):
        report = binary_model.log_batch(numeric_times(value), id="id", timestamp="ts")
        check_report(report, 4, 3, 1)
        q = binary_model.quarantined()
        assert q["id"].tolist() == ["bad"]
        assert words in q["reason"].iloc[0].lower()
        assert "'ts'" in q["reason"].iloc[0] and "churn" in q["reason"].iloc[0]
        assert raw_rows(binary_model)["__ts"].min() >= pd.Timestamp("2026-01-05")

    def test_integer_epoch_milliseconds(self, binary_model):
        report = binary_model.log_batch(
            numeric_times(1_767_607_200_000, pa.int64()), id="id", timestamp="ts"
        )
        check_report(report, 4, 3, 1)
        assert "divide by 1,000" in binary_model.quarantined()["reason"].iloc[0]

    @pytest.mark.parametrize(
        "value", ["9999-12-31T00:00:00Z", "1900-01-01T00:00:00Z", "0001-01-01", "1767607200000"]
    )
    def test_text_time_out_of_range(self, binary_model, value):
        frame = pa.table(
            {"id": ["a", "bad"], "ts": ["2026-01-05T10:00:00Z", value], "score": [0.1, 0.2]}
        )
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        check_report(report, 2, 1, 1)
        reason = binary_model.quarantined()["reason"].iloc[0]
        assert "outside the accepted range" in reason
        assert ("milliseconds" in reason) == value.isdigit()

    @pytest.mark.parametrize(
        "value", [pd.Timestamp("1969-12-31T23:59:59Z").to_pydatetime(), "9999-01-01", "0001-01-01"]
    )
    def test_datetime_out_of_range(self, binary_model, value):
        import datetime as dt

        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        frame = pa.table(
            {
                "id": ["a", "bad"],
                "ts": pa.array([dt.datetime(2026, 1, 5), moment], pa.timestamp("us", tz="UTC")),
                "score": [0.1, 0.2],
            }
        )
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        check_report(report, 2, 1, 1)
        reason = binary_model.quarantined()["reason"].iloc[0]
        assert "outside the accepted range" in reason and "looks like" not in reason

    def test_seconds_timestamp_typed_column_past_int64_micros(self, binary_model):
        # 1e15 s is representable as timestamp[s] but overflows microseconds
        frame = pa.table(
            {
                "id": ["a", "bad"],
                "ts": pa.array([1_767_607_200, 10**15], pa.timestamp("s")),
                "score": [0.1, 0.2],
            }
        )
        check_report(binary_model.log_batch(frame, id="id", timestamp="ts"), 2, 1, 1)

    def test_feedback_time_out_of_range(self, binary_model):
        fb = pa.table(
            {"id": ["a", "b"], "churned": [1, 0], "t": [1_767_607_200, 1_767_607_200_000]}
        )
        report = binary_model.log_feedback_batch(fb, id="id", label="churned", timestamp="t")
        check_report(report, 2, 1, 1)
        assert "milliseconds" in binary_model.quarantined()["reason"].iloc[0]

    def test_range_is_configurable(self, binary_model, monkeypatch):
        monkeypatch.setenv("MLPULSE_MIN_TIMESTAMP", "1900-01-01")
        monkeypatch.setenv("MLPULSE_MAX_TIMESTAMP", "2030-01-01T00:00:00+00:00")
        frame = pa.table(
            {
                "id": ["old", "now", "later"],
                "ts": ["1950-06-01T00:00:00Z", "2026-01-05T00:00:00Z", "2031-01-01T00:00:00Z"],
                "score": [0.1, 0.2, 0.3],
            }
        )
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        check_report(report, 3, 2, 1)
        reason = binary_model.quarantined()["reason"].iloc[0]
        assert "[1900-01-01, 2030-01-01)" in reason

    @pytest.mark.parametrize(
        ("lo", "hi"), [("yesterday", "2200-01-01"), ("2200-01-01", "1970-01-01")]
    )
    def test_bad_range_setting_is_a_config_error(self, binary_model, monkeypatch, lo, hi):
        from mlpulse.errors import ConfigError

        monkeypatch.setenv("MLPULSE_MIN_TIMESTAMP", lo)
        monkeypatch.setenv("MLPULSE_MAX_TIMESTAMP", hi)
        with pytest.raises(ConfigError, match="MLPULSE_M"):
            binary_model.log_batch(numeric_times(1.0), id="id", timestamp="ts")


class TestNoWarnings:
    """Ordinary ingest of valid data raises no warning (NaN and inf never reach an int cast)."""

    def test_float_categorical_column_with_nan_and_inf(self, pulse):
        import warnings

        reference = pd.DataFrame(
            {"plan": ["a", "b"], "x": [1.0, 2.0], "score": [0.1, 0.9], "y": [0, 1]}
        )
        model = pulse.model(
            "w",
            task="binary",
            prediction="score",
            label="y",
            reference=reference,
            segments=["plan"],
        )
        batch = pa.table(
            {
                "id": ["a", "b", "c", "d"],
                "ts": ["2026-01-05T10:00:00Z"] * 4,
                "score": [0.1, 0.2, 0.3, 0.4],
                "x": [1.0, float("nan"), float("inf"), None],
                "plan": [1.0, float("nan"), float("inf"), None],  # categorical, sent as floats
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            report = model.log_batch(batch, id="id", timestamp="ts")
        check_report(report, 4, 4, 0)
        assert raw_rows(model)["plan"].tolist()[0] == "1"
