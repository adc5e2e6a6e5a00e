"""``Model.put_profiles`` (the route Spark jobs send through), without Spark: profiles made
by :func:`mlpulse.spark.profile_arrow` (the code Spark partitions run) replace or merge into
buckets, equal the embedded engine's, and bad imports get clear errors on both transports."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from spark_data import START, W, duplicated, embedded, frames, register
from starlette.testclient import TestClient

import mlpulse
from mlpulse import spark as mlspark
from mlpulse.errors import ConfigError
from mlpulse.profiles.bucket import decode_part
from mlpulse.schema import SEGMENT_CAP
from mlpulse.server import ServerConfig, create_app
from mlpulse.store.profiles import blob_key


@pytest.fixture(scope="module")
def data():
    return frames()


def test_profile_arrow_equals_the_engine(data) -> None:
    """Metrics (all windows, a segment) and quality equal exactly; a second identical import
    changes nothing."""
    preds, labels, inline = data
    a = embedded(preds, labels)
    b = register(mlpulse.connect(":memory:"))
    table = mlspark.profile_arrow(b, inline, id="rid", timestamp="ts")
    first = b.put_profiles(table)
    assert first["rows"] == len(inline) - 1 and not first["duplicate"] and first["replaced"] == 0
    # each part replaced a bucket: stored as the bytes sent (decoded to check, not re-encoded)
    service = b._pulse.service
    stored = dict(service.store.fetch_all("SELECT key, blob FROM profile_blobs"))
    model_id = service.registry.get("churn").model_id
    sent = {blob_key(model_id, ("v1", s, r, k, p)): blob for s, r, k, p, blob in
            zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)}  # fmt: skip
    assert {k: stored.get(k) for k in sent} == sent  # (the reference is stored too)
    for _ in range(2):
        for kw in ({"step": "1h"}, {"segment": "plan=pro"}, {}):
            pd.testing.assert_frame_equal(a.metrics(**W, **kw), b.metrics(**W, **kw))
        pd.testing.assert_frame_equal(a.quality(**W).to_pandas(), b.quality(**W).to_pandas())
        again = b.put_profiles(table)
        assert again["replaced"] == first["parts"]


def test_merge_once_per_batch_id(data) -> None:
    preds, labels, inline = data
    a = embedded(preds, labels)
    b = register(mlpulse.connect(":memory:"))
    half = len(inline) // 2
    parts = [mlspark.profile_arrow(b, inline.iloc[s], id="rid", timestamp="ts")
             for s in (slice(0, half), slice(half, None))]  # fmt: skip
    b.put_profiles(parts[0], replace=False, batch_id="e0")
    b.put_profiles(parts[1], replace=False, batch_id="e1")
    assert b.put_profiles(parts[1], replace=False, batch_id="e1")["duplicate"]  # a replay
    pd.testing.assert_frame_equal(a.metrics(**W, step="2h"), b.metrics(**W, step="2h"))


def test_merge_parts_of_two_imports_equals_the_engine(data) -> None:
    """Imports of overlapping buckets (every bucket: rows split at random) merge into one by
    key (what the driver does with the partitions' profiles); counters are summed."""
    preds, labels, inline = data
    a = embedded(preds, labels)
    b = register(mlpulse.connect(":memory:"))
    odd = inline.index % 2 == 1
    halves = [mlspark.profile_arrow(b, inline[m], id="rid", timestamp="ts") for m in (odd, ~odd)]
    both = pa.concat_tables(halves)
    merged = mlspark.merge_parts(both)
    assert merged.num_rows < both.num_rows  # shared keys became one row each
    b.put_profiles(merged)
    for kw in ({"step": "1h"}, {"segment": "plan=pro"}):
        pd.testing.assert_frame_equal(a.metrics(**W, **kw), b.metrics(**W, **kw))
    pd.testing.assert_frame_equal(a.quality(**W).to_pandas(), b.quality(**W).to_pandas())
    counter = pa.table({"segment": ["r", "r"], "resolution": ["", ""], "bucket": [0, 0],
                        "part": [mlspark.QUARANTINED] * 2,
                        "blob": [(2).to_bytes(8, "big"), (3).to_bytes(8, "big")]})  # fmt: skip
    assert mlspark.merge_parts(counter).column("blob").to_pylist() == [(5).to_bytes(8, "big")]


def test_segments_beyond_the_cap_pool_into_other(data) -> None:
    preds, _labels, _inline = data
    many = preds.assign(plan=[f"p{i % (SEGMENT_CAP + 7):03d}" for i in range(len(preds))])
    a = embedded(many, None)
    b = register(mlpulse.connect(":memory:"))
    b.put_profiles(mlspark.profile_arrow(b, many, id="rid", timestamp="ts"))
    for segment in ("plan=__other__", "plan=p000", f"plan=p{SEGMENT_CAP - 1:03d}"):
        pd.testing.assert_frame_equal(
            a.metrics(["count", "prediction_mean"], **W, segment=segment),
            b.metrics(["count", "prediction_mean"], **W, segment=segment),
        )
    assert b.metrics(["count"], **W, segment="plan=__other__")["count"].item() > 0


def _bad(table: pa.Table, **change) -> pa.Table:
    cols = {c: table.column(c).to_pylist()[:1] for c in table.column_names}
    cols.update({k: [v] for k, v in change.items()})
    return pa.table(cols, schema=table.schema)


BAD = [
    ({"blob": b"\x93nonsense"}, "profiles row 0"),
    ({"bucket": 12345}, "not the start of a"),
    ({"segment": "nope=x"}, "not 'column=value'"),
    ({"part": "other"}, "part 'other'"),
    ({"resolution": "week"}, "not 'week'"),
]


def test_bad_imports_are_refused_on_both_transports(data, tmp_path) -> None:
    """ConfigError naming the model and row embedded; a 4xx with the same words over HTTP."""
    _preds, _labels, inline = data
    local = register(mlpulse.connect(":memory:"))
    good = mlspark.profile_arrow(local, inline.head(20), id="rid", timestamp="ts")
    with TestClient(create_app(ServerConfig(db=":memory:"))) as client:
        remote = register(mlpulse.connect("http://testserver", transport=client._transport,
                                          spool_dir=tmp_path, compression=None))  # fmt: skip
        for change, words in BAD:
            bad = _bad(good, **change)
            with pytest.raises(ConfigError, match=words):
                local.put_profiles(bad)
            with pytest.raises(ConfigError, match=words):  # a 4xx, as the same error type
                remote.put_profiles(bad)
        assert remote.put_profiles(good)["rows"] == 19  # row 3 is quarantined
        response = client.put("/api/v1/models/churn/versions/v1/profiles", content=b"junk",
                              headers={"Content-Type": "application/vnd.apache.arrow.stream"})  # fmt: skip
        assert response.status_code == 400, response.text
        response = client.put("/api/v1/models/churn/versions/v1/profiles", content=b"{}",
                              headers={"Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 415, response.text
        remote._pulse.close()


def test_profiles_for_a_missing_column_are_refused(data) -> None:
    _preds, _labels, inline = data
    b = register(mlpulse.connect(":memory:"))
    with pytest.raises(ConfigError, match="lack the columns blob"):
        b.put_profiles(pa.table({"segment": [""], "resolution": ["minute"], "bucket": [0],
                                 "part": ["core"]}))  # fmt: skip


def test_module_imports_without_pyspark() -> None:
    """mlpulse never imports pyspark; using mlpulse.spark without it is a clear error."""
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "import mlpulse, mlpulse.spark as s\n"
        "assert 'pyspark.sql' not in sys.modules\n"
        "try:\n    s.profile(None, None)\nexcept mlpulse.errors.ConfigError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'mlpulse[spark]'" in out.stdout
    assert START is not None


def test_duplicate_ids_are_kept_once_as_the_engine_keeps_them(data) -> None:
    """The first valid row of each id is profiled; later ones are quarantined as duplicates
    (a row whose first occurrence is invalid is kept): counts equal one ``log_batch``."""
    _preds, labels, inline = data
    dups = duplicated()
    a = embedded(dups, labels)
    stored = a.metrics(["count"], **W)["count"].item()
    b = register(mlpulse.connect(":memory:"))
    with_labels = dups.merge(inline[["rid", "y"]], on="rid", how="left")  # each id's latest
    table = mlspark.profile_arrow(b, with_labels, id="rid", timestamp="ts")
    assert b.put_profiles(table)["rows"] == stored == dups.rid.nunique()
    for kw in ({"step": "1h"}, {"segment": "plan=pro"}):
        pd.testing.assert_frame_equal(a.metrics(**W, **kw), b.metrics(**W, **kw))
    # a partition's rows of repeated ids in chunks of a few rows: chunks end between ids
    marked = mlspark.mark_repeats(pa.Table.from_pandas(dups, preserve_index=False), "rid")
    spec = mlspark._spec_for(b, marked.schema, {"rid", "score", "y", "ts"})
    small = mlspark.Profiler(spec, "v1", None, "rid", "ts", mlspark.now_micros(), chunk_rows=7)
    held = marked.filter(marked.column(mlspark.REPEATED))
    chunks = list(small.by_id(held.drop_columns([mlspark.REPEATED])))
    ids = [set(c.column("rid").to_pylist()) for c in chunks]
    assert len(chunks) > 3 and sum(map(len, ids)) == len(set().union(*ids))  # whole ids
    assert sum(c.num_rows for c in chunks) == held.num_rows
    out = pa.Table.from_batches(list(small(marked.to_batches(max_chunksize=50))))
    counters = out.filter(pc.equal(out.column("part"), mlspark.QUARANTINED))
    assert sum(int.from_bytes(b, "big") for b in counters.column("blob").to_pylist()) == (
        len(dups) - dups.rid.nunique())  # fmt: skip


WORKER = r"""
import json, pickle, sys
task, batches = pickle.load(open(sys.argv[1], "rb"))
out = [b for b in task(batches)]
heavy = sorted(m for m in ("duckdb", "mlpulse.client", "mlpulse.store", "mlpulse.server",
                           "mlpulse.display", "mlpulse.service") if m in sys.modules)
pickle.dump(out, open(sys.argv[2], "wb"))
import mlpulse  # the package's own names still work in that worker
print(json.dumps({"heavy": heavy, "connect": mlpulse.connect(":memory:").path}))
"""


def test_the_function_spark_ships_imports_only_what_profiling_needs(data, tmp_path) -> None:
    """What ``mapInArrow`` runs, unpickled in a fresh interpreter as a Python worker does:
    no client, store, server or DuckDB imported; the same profiles as in process."""
    cloudpickle = pytest.importorskip("pyspark.cloudpickle")
    preds, _labels, _inline = data
    b = register(mlpulse.connect(":memory:"))
    arrow = pa.Table.from_pandas(preds, preserve_index=False)
    spec = mlspark._spec_for(b, arrow.schema, {"rid", "score", "y", "ts"})
    profiler = mlspark.Profiler(spec, "v1", None, "rid", "ts", mlspark.now_micros())
    (tmp_path / "task.pkl").write_bytes(
        cloudpickle.dumps((mlspark._shipped(profiler), arrow.to_batches(max_chunksize=100)))
    )
    out = subprocess.run([sys.executable, "-c", WORKER, tmp_path / "task.pkl", tmp_path / "out.pkl"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    answer = json.loads(out.stdout.splitlines()[-1])
    assert answer == {"heavy": [], "connect": ":memory:"}, out.stderr[-2000:]
    shipped = pa.Table.from_batches(pickle.loads((tmp_path / "out.pkl").read_bytes()))
    here = pa.Table.from_batches(list(profiler(arrow.to_batches(max_chunksize=100))))
    key = ["segment", "resolution", "bucket", "part"]
    assert shipped.select(key).equals(here.select(key))
    core = [i for i, p in enumerate(here.column("part").to_pylist()) if p == "core"]
    assert [decode_part("core", shipped.column("blob")[i].as_py()).n for i in core] == [
        decode_part("core", here.column("blob")[i].as_py()).n for i in core]  # fmt: skip
