"""Batch ingest accepts pandas, polars and pyarrow tables and any common timestamp encoding."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import mlpulse

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


def convert(frame: pd.DataFrame, kind: str):
    if kind == "pandas":
        return frame
    if kind == "polars":
        return pl.from_pandas(frame)
    if kind == "pyarrow":
        return pa.Table.from_pandas(frame, preserve_index=False)
    if kind == "recordbatch":
        return pa.RecordBatch.from_pandas(frame, preserve_index=False)
    if kind == "dict":
        return {c: frame[c].tolist() for c in frame.columns}
    if kind == "rows":
        return frame.to_dict(orient="records")
    raise AssertionError(kind)


class TestInputTables:
    """pandas, polars and pyarrow inputs give the same stored rows and metrics."""

    @pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow", "recordbatch", "dict", "rows"])
    def test_table_kinds(self, binary_model, ref, kind):
        df = ref.binary_rows(n=300, seed=51)
        report = binary_model.log_batch(
            convert(df.drop(columns=["churned"]), kind), id="id", timestamp="ts"
        )
        assert (report.received, report.stored, report.quarantined) == (300, 300, 0)
        fb = binary_model.log_feedback_batch(
            convert(df[["id", "churned"]], kind), id="id", label="churned"
        )
        assert fb.stored == 300 and fb.matched == 300
        for start, end in (
            ("2026-01-05", "2026-01-08"),
            ("2026-01-05T04:33:21Z", "2026-01-07T02:07:09Z"),
        ):
            frame = binary_model.metrics(BINARY, start=start, end=end)
            ref.check(
                frame.iloc[0],
                ref.expected("binary", ref.window(df, start, end), pred="score", label="churned"),
                where=kind,
            )
        assert set(binary_model.spec.features) == {"plan", "age"}
        assert binary_model.spec.features["plan"] == "categorical"
        assert binary_model.spec.features["age"] == "numeric"

    def test_polars_categorical_and_multiclass(self, pulse, ref):
        model = pulse.model("zoo", task="multiclass", prediction="pred", label="animal")
        df = ref.multiclass_rows(n=200, seed=52)
        table = pl.from_pandas(df.drop(columns=["animal"])).with_columns(
            pl.col("pred").cast(pl.Categorical)
        )
        assert model.log_batch(table, id="id", timestamp="ts").stored == 200
        model.log_feedback_batch(pl.from_pandas(df[["id", "animal"]]), id="id", label="animal")
        frame = model.metrics(
            ["accuracy", "f1_macro", "f1_weighted"], start="2026-01-05", end="2026-01-08"
        )
        ref.check(frame.iloc[0], ref.expected("multiclass", df, pred="pred", label="animal"))

    def test_default_columns(self, pulse, ref):
        """Without id=/timestamp=, the 'id' and 'timestamp' columns are used."""
        model = pulse.model("m", task="binary", prediction="score", label="churned")
        df = ref.binary_rows(n=50, seed=53).rename(columns={"ts": "timestamp"})
        model.log_batch(df.drop(columns=["churned"]))
        model.log_feedback_batch(df[["id", "churned"]])
        frame = model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
        ref.check(
            frame.iloc[0],
            ref.expected(
                "binary",
                df,
                pred="score",
                label="churned",
            ),
            names=["n", "f1"],
        )
        assert "timestamp" not in model.spec.features

    def test_no_timestamp_means_now(self, binary_model):
        binary_model.log_batch({"id": ["a", "b"], "score": [0.2, 0.9]})
        assert binary_model.metrics(["count"], start="-5m", end="+1m")["n"].iloc[0] == 2

    def test_empty_batch(self, binary_model):
        frame = pd.DataFrame(
            {
                "id": pd.Series([], dtype=str),
                "ts": pd.Series([], dtype="datetime64[us, UTC]"),
                "score": pd.Series([], dtype=float),
            }
        )
        report = binary_model.log_batch(frame, id="id", timestamp="ts")
        assert (report.received, report.stored, report.quarantined) == (0, 0, 0)


class TestTimestampColumns:
    """Event times given as aware, naive, ISO text or epoch seconds land in the same buckets."""

    @pytest.mark.parametrize(
        "encoding",
        [
            "aware_utc",
            "aware_tokyo",
            "naive",
            "iso_text",
            "iso_offset",
            "epoch_seconds",
            "arrow_us",
            "arrow_ns",
        ],
    )
    def test_encodings_agree(self, pulse, ref, encoding):
        model = pulse.model("t", task="binary", prediction="score", label="churned")
        df = ref.binary_rows(n=200, seed=54)
        ts = df["ts"]
        if encoding == "aware_tokyo":
            value = ts.dt.tz_convert("Asia/Tokyo")
        elif encoding == "naive":
            value = ts.dt.tz_localize(None)
        elif encoding == "iso_text":
            value = ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif encoding == "iso_offset":
            value = ts.dt.tz_convert("America/New_York").map(lambda t: t.isoformat())
        elif encoding == "epoch_seconds":
            value = (ts - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta("1s")
        else:
            value = ts
        table = df.drop(columns=["churned"]).assign(ts=value)
        if encoding.startswith("arrow"):
            unit = encoding.split("_")[1]
            table = pa.Table.from_pandas(
                df.drop(columns=["ts", "churned"]), preserve_index=False
            ).append_column(
                "ts", pa.array(ts.dt.tz_localize(None).to_numpy(), pa.timestamp(unit, tz="UTC"))
            )
        report = model.log_batch(table, id="id", timestamp="ts")
        assert report.stored == 200, model.quarantined()["reason"].head().tolist()
        model.log_feedback_batch(df[["id", "churned"]], id="id", label="churned")
        for start, end in (
            ("2026-01-05T04:33:21Z", "2026-01-07T02:07:09Z"),
            ("2026-01-05T23:41:07Z", "2026-01-06T00:19:53Z"),
        ):
            frame = model.metrics(["count", "accuracy", "f1"], start=start, end=end)
            rows = ref.window(df, start, end)
            tol_ok = abs(int(frame["n"].iloc[0]) - len(rows)) <= (
                1 if encoding == "epoch_seconds" else 0
            )
            assert tol_ok, (encoding, int(frame["n"].iloc[0]), len(rows))
            if encoding != "epoch_seconds":
                ref.check(
                    frame.iloc[0],
                    ref.expected("binary", rows, pred="score", label="churned"),
                    names=["n", "n_labeled", "accuracy", "f1"],
                    where=encoding,
                )

    def test_python_datetimes_in_rows(self, binary_model):
        rows = [
            {"id": "a", "ts": datetime(2026, 1, 5, 12), "score": 0.3},
            {"id": "b", "ts": datetime(2026, 1, 5, 12) + timedelta(microseconds=1), "score": 0.7},
        ]
        assert binary_model.log_batch(rows, id="id", timestamp="ts").stored == 2
        out = binary_model.metrics(
            ["count"], start="2026-01-05T12:00:00Z", end="2026-01-05T12:00:00.000001Z"
        )
        assert out["n"].iloc[0] == 1


class TestIngestReport:
    """log_batch returns an IngestReport whose counts add up."""

    def test_report_type_and_fields(self, binary_model, ref):
        report = binary_model.log_batch(
            ref.binary_rows(n=10, seed=55).drop(columns=["churned"]), id="id", timestamp="ts"
        )
        assert isinstance(report, mlpulse.IngestReport)
        assert report.pending == 0
        assert report.received == report.stored + report.quarantined == 10

    def test_many_small_batches_equal_one(self, pulse, ref):
        one = pulse.model(
            "one", task="binary", prediction="score", label="churned", segments=["plan"]
        )
        many = pulse.model(
            "many", task="binary", prediction="score", label="churned", segments=["plan"]
        )
        df = ref.binary_rows(n=400, seed=56)
        ref.log_binary(one, df)
        for idx in np.array_split(np.arange(len(df)), 13):
            many.log_batch(df.drop(columns=["churned"]).iloc[idx], id="id", timestamp="ts")
        for idx in np.array_split(np.random.default_rng(0).permutation(len(df)), 5):
            many.log_feedback_batch(df[["id", "churned"]].iloc[idx], id="id", label="churned")
        for segment in (None, "plan=pro"):
            a = one.metrics(
                BINARY,
                start="2026-01-05T01:01:01Z",
                end="2026-01-07T05:05:05Z",
                step="4h",
                segment=segment,
            )
            b = many.metrics(
                BINARY,
                start="2026-01-05T01:01:01Z",
                end="2026-01-07T05:05:05Z",
                step="4h",
                segment=segment,
            )
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)
