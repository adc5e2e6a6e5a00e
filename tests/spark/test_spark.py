"""mlpulse.spark in a local[2] SparkSession: on the same data, metrics, quality and
sketch-mode drift equal the embedded engine's (counts and sums exactly, sketch statistics
within the KLL bound); re-runs are idempotent and pick up new labels; the foreachBatch
sink merges micro-batches once each; a server store gets the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from spark_data import W, duplicated, embedded, frames, register
from starlette.testclient import TestClient

import mlpulse
from mlpulse import spark as mlspark
from mlpulse.errors import ConfigError
from mlpulse.server import ServerConfig, create_app

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # pyspark on pandas 3

#: KLL's normalised rank error at k=200, doubled (two independently merged sketches)
SKETCH = 2 * 0.0133
METRICS = None  # every built-in metric of the task


@pytest.fixture(scope="module")
def data(spark):
    preds, labels, inline = frames()
    return (spark.createDataFrame(preds), spark.createDataFrame(labels), preds, labels, inline)


@pytest.fixture(scope="module")
def runs(data):
    """The embedded engine's model, and a model filled by mlpulse.spark (profile() run twice
    on the same data)."""
    sp, sl, preds, labels, _inline = data
    a = embedded(preds, labels)
    b = register(mlpulse.connect(":memory:"))
    first = mlspark.profile(b, sp, labels=sl, id="rid", timestamp="ts", label="y")
    before = b.metrics(METRICS, **W, step="1h")
    second = mlspark.profile(b, sp, labels=sl, id="rid", timestamp="ts", label="y")
    return a, b, first, second, before


def test_report_counts_every_row(runs, data) -> None:
    _a, _b, first, second, _before = runs
    _sp, _sl, preds, labels, inline = data
    assert first.received == len(preds) == first.stored + first.quarantined
    assert first.quarantined == 1 and first.labels_quarantined == 1
    assert first.labeled == int(inline.y.notna().sum() - (inline.index == 3).sum() * inline.y.notna()[3])
    assert any("binary label must be 0 or 1" in r for r in first.reasons)
    assert first.bytes_sent > 0 and first.requests >= 1 and first.replaced == 0
    assert second.replaced == first.parts  # the second run replaced every part


def test_metrics_equal_the_engine_and_reruns_change_nothing(runs) -> None:
    a, b, _first, _second, before = runs
    for kw in ({"step": "1h"}, {"step": "90min"}, {"segment": "plan=pro"}, {}):
        pd.testing.assert_frame_equal(a.metrics(METRICS, **W, **kw), b.metrics(METRICS, **W, **kw))
    pd.testing.assert_frame_equal(before, b.metrics(METRICS, **W, step="1h"))


def test_quality_and_sketch_drift_equal_the_engine(runs) -> None:
    a, b, *_ = runs
    pd.testing.assert_frame_equal(a.quality(**W).to_pandas(), b.quality(**W).to_pandas())
    da, db = a.drift(**W).to_pandas(), b.drift(**W).to_pandas()
    assert list(da.column) == list(db.column) and list(da.method) == list(db.method)
    numeric = da.method == "ks"
    assert np.allclose(da.statistic[numeric], db.statistic[numeric], atol=SKETCH)
    # categorical tests read exact counts
    assert np.allclose(da.statistic[~numeric], db.statistic[~numeric], rtol=1e-12)
    assert list(da.drifted) == list(db.drifted)


def test_duplicate_ids_are_profiled_once_as_the_engine_keeps_them(spark, data) -> None:
    """Repeated ids (some in other hours, one three times, one whose first row is invalid):
    the first valid row of each id is profiled, the rest are quarantined as duplicates, as
    one ``log_batch`` of the same rows does; labels join to the row kept."""
    _sp, sl, _preds, labels, _inline = data
    dups = duplicated()
    a = embedded(dups, labels)
    b = register(mlpulse.connect(":memory:"))
    report = mlspark.profile(b, spark.createDataFrame(dups), labels=sl, id="rid", timestamp="ts")
    assert (report.received, report.stored) == (len(dups), dups.rid.nunique())
    repeats = report.reasons["model 'churn': duplicate id within the batch"]
    assert repeats == report.quarantined - 1 == len(dups) - dups.rid.nunique() - 1
    for kw in ({"step": "1h"}, {"segment": "plan=pro"}):
        pd.testing.assert_frame_equal(a.metrics(METRICS, **W, **kw), b.metrics(METRICS, **W, **kw))
    pd.testing.assert_frame_equal(a.quality(**W).to_pandas(), b.quality(**W).to_pandas())


def test_a_rerun_after_more_labels_updates_the_buckets(spark, data) -> None:
    sp, _sl, preds, labels, _inline = data
    some = labels.iloc[: len(labels) // 3]
    b = register(mlpulse.connect(":memory:"))
    # (ids known unique: no duplicate check, one Spark job fewer per run)
    mlspark.profile(b, sp, labels=spark.createDataFrame(some), id="rid", timestamp="ts",
                    unique_ids=True)  # fmt: skip
    partial = b.metrics(["label_coverage"], **W)["label_coverage"].item()
    mlspark.profile(b, sp, labels=spark.createDataFrame(labels), id="rid", timestamp="ts",
                    unique_ids=True)  # fmt: skip
    a = embedded(preds, labels)
    assert partial < b.metrics(["label_coverage"], **W)["label_coverage"].item()
    pd.testing.assert_frame_equal(a.metrics(METRICS, **W, step="2h"),
                                  b.metrics(METRICS, **W, step="2h"))  # fmt: skip


def test_foreach_batch_sink_merges_each_micro_batch_once(spark, data) -> None:
    """What Structured Streaming calls: micro-batches in turn, one replayed after a failure."""
    _sp, _sl, preds, _labels, inline = data
    a = embedded(preds, None)
    a.log_feedback_batch(inline.dropna(subset=["y"])[["rid", "y"]], id="rid", label="y")
    b = register(mlpulse.connect(":memory:"))
    write = mlspark.sink(b, id="rid", timestamp="ts", name="test-stream")
    half = len(inline) // 2
    batches = [spark.createDataFrame(inline.iloc[:half]), spark.createDataFrame(inline.iloc[half:])]
    write(batches[0], 0)
    write(batches[1], 1)
    assert write(batches[1], 1).duplicate  # replayed: nothing merged twice
    pd.testing.assert_frame_equal(a.metrics(METRICS, **W, step="1h"),
                                  b.metrics(METRICS, **W, step="1h"))  # fmt: skip


def test_a_server_store_gets_the_same(data, runs, tmp_path) -> None:
    sp, sl, *_ = data
    a = runs[0]
    with TestClient(create_app(ServerConfig(db=":memory:"))) as client:
        pulse = mlpulse.connect("http://testserver", transport=client._transport,
                                spool_dir=tmp_path, compression=None)  # fmt: skip
        remote = register(pulse)
        report = mlspark.profile(remote, sp, labels=sl, id="rid", timestamp="ts", label="y")
        assert report.stored == len(sp.columns) * 0 + report.received - 1
        pd.testing.assert_frame_equal(a.metrics(METRICS, **W, step="1h"),
                                      remote.metrics(METRICS, **W, step="1h"))  # fmt: skip
        pulse.close()


def test_errors_name_the_model_and_column(data) -> None:
    sp, sl, *_ = data
    b = register(mlpulse.connect(":memory:"))
    with pytest.raises(ConfigError, match="model 'churn': predictions have no id column 'nope'"):
        mlspark.profile(b, sp, id="nope", timestamp="ts")
    with pytest.raises(ConfigError, match="labels need a timestamp column"):
        mlspark.profile(b, sp, labels=sl.drop("ts"), id="rid", timestamp="ts")
