"""Names that reach SQL: model, version and column names (issue 8).

Every identifier goes through ``quote()``, every value is a parameter, one statement per
``execute``; names are checked in the engine (not only over HTTP), and a bad one raises an
:mod:`mlpulse.errors` exception that names the model, the name and the reason.
"""

from __future__ import annotations

import threading
import time

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

import mlpulse
from mlpulse.errors import (
    ConfigError,
    MlpulseError,
    SchemaError,
    UnknownModelError,
)
from mlpulse.store.database import Store, quote, registered
from mlpulse.store.registry import Registry

INJECTION = '__x" DOUBLE; DROP TABLE raw_1; --'


def tables(pulse) -> set[str]:
    rows = pulse.store.fetch_all("SELECT table_name FROM information_schema.tables")
    return {r[0] for r in rows}


@pytest.fixture
def pulse():
    p = mlpulse.connect(":memory:")
    yield p
    p.close()


@pytest.fixture
def victim(pulse):
    """Model 1 with one stored row (its raw table is ``raw_1``), and model 2 to attack."""
    a = pulse.model(
        "victim", "v1", task="binary", reference={"x": [1.0, 2.0], "prediction": [0.1, 0.9]}
    )
    assert a.log_batch({"id": ["r1"], "x": [1.5], "prediction": [0.3]}).stored == 1
    pulse.model("target", "v1", task="binary", reference={"x": [1.0], "prediction": [0.5]})
    return a


def intact(pulse, victim, keys_before: int) -> None:
    assert {"raw_1", "raw_2", "reference_1", "reference_2", "api_keys"} <= tables(pulse)
    assert pulse.store.fetch_one("SELECT count(*) FROM raw_1") == (1,)
    assert pulse.store.fetch_one("SELECT count(*) FROM api_keys") == (keys_before,)
    assert victim.metrics(["count"], start="2000-01-01", end="2100-01-01")["n"].iloc[0] == 1


class TestQuote:
    """quote() makes one identifier of any text, and refuses what DuckDB cannot take."""

    @pytest.mark.parametrize(
        "name", ['a"b', 'x" DOUBLE; DROP TABLE t; --', "'; --", '""', "semi;colon", "Ünï cødé ☃"]
    )
    def test_any_text_is_one_identifier(self, name):
        conn = duckdb.connect()
        conn.execute("CREATE TABLE t (a INTEGER)")
        conn.execute(f"CREATE TABLE q ({quote(name)} DOUBLE)")
        conn.execute(f"ALTER TABLE q ADD COLUMN {quote(name + '2')} VARCHAR")
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'q'"
        ).fetchall()
        assert [c[0] for c in columns] == [name, name + "2"]
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(0,)]  # t survived

    @pytest.mark.parametrize("name", ["a\x00b", "x\ud800", 3, None])
    def test_refuses_what_cannot_be_an_identifier(self, name):
        with pytest.raises(SchemaError):
            quote(name)

    def test_failed_statement_is_not_masked_by_unregister(self):
        """A failing statement inside a transaction aborts it; the unregister that follows
        would raise TransactionException and hide the real error."""
        store = Store(":memory:")
        with (  # noqa: PT012
            pytest.raises(duckdb.CatalogException),
            store.write() as conn,
            registered(conn, "__t", pa.table({"a": [1]})),
        ):
            conn.execute("INSERT INTO no_such_table SELECT * FROM __t")
        assert store.fetch_one("SELECT 1") == (1,)  # the store is usable afterwards
        store.close()


class TestReferenceInjection:
    """The critical probe: a DataFrame header that closes the quote and runs statements."""

    def test_reserved_attack_column_is_rejected_and_nothing_runs(self, pulse, victim, tmp_path):
        keys = pulse.store.fetch_one("SELECT count(*) FROM api_keys")[0]
        target = tmp_path / "pwned.csv"
        column = (
            f"__x\" DOUBLE; COPY (SELECT 1) TO '{target}'; DROP TABLE raw_1; "
            "INSERT INTO api_keys VALUES ('k', 'h', 'admin', NULL, now(), NULL); --"
        )
        frame = pd.DataFrame({"x": [1.0], "prediction": [0.5], column: [1.0]})
        with pytest.raises(SchemaError, match=r"model 'target': reference column .*reserved"):
            pulse.model("target", "v1", reference=frame)
        intact(pulse, victim, keys)
        assert not target.exists()

    @pytest.mark.parametrize(
        "column",
        [
            'x" DOUBLE; DROP TABLE raw_1; --',
            "y'); DROP TABLE raw_1; --",
            'z" VARCHAR; CREATE TABLE pwned (a INT); --',
        ],
    )
    def test_attack_column_outside_the_features_is_stored_literally(self, pulse, victim, column):
        """A reference column that is not a feature only widens the reference table: the
        unquoted ALTER TABLE of the old code ran the appended statements."""
        keys = pulse.store.fetch_one("SELECT count(*) FROM api_keys")[0]
        frame = pd.DataFrame({"x": [1.0, 2.0], "prediction": [0.5, 0.6], column: [3.0, 4.0]})
        model = pulse.model("target", "v1", reference=frame, features=["x"])
        intact(pulse, victim, keys)
        assert "pwned" not in tables(pulse)
        assert column in pulse.store.table_columns("reference_2")
        assert column not in model.spec.features
        stored = pulse.store.fetch_arrow(f"SELECT {quote(column)} FROM reference_2")
        assert stored.column(0).to_pylist() == [3.0, 4.0]

    @pytest.mark.parametrize(
        "column", ['x" DOUBLE; DROP TABLE raw_1; --', "y'); DROP TABLE raw_1; --"]
    )
    def test_attack_column_as_a_feature_round_trips(self, pulse, victim, column):
        keys = pulse.store.fetch_one("SELECT count(*) FROM api_keys")[0]
        frame = pd.DataFrame({"x": [1.0, 2.0], "prediction": [0.5, 0.6], column: [3.0, 4.0]})
        model = pulse.model("target", "v1", reference=frame)
        intact(pulse, victim, keys)
        assert model.spec.features[column] == "numeric"
        # the name round-trips as data: logged, stored, profiled and queried under it
        model.log_batch({"id": ["a"], "x": [1.0], "prediction": [0.5], column: [7.0]})
        summary = model.summary(start="2000-01-01", end="2100-01-01")
        assert column in set(summary["column"])
        drift = model.drift(start="2000-01-01", end="2100-01-01").to_pandas()
        assert column in set(drift["column"])

    def test_attack_through_the_label_column(self, pulse, victim):
        """Prediction and label columns are never features either."""
        keys = pulse.store.fetch_one("SELECT count(*) FROM api_keys")[0]
        label = 'y" DOUBLE; DROP TABLE raw_1; --'
        reference = {"x": [1.0], "prediction": [0.5]}
        model = pulse.model("lab", "v1", task="binary", label=label, reference=reference)
        pulse.model("lab", "v1", reference={**reference, label: [1]})  # widens the table
        intact(pulse, victim, keys)
        assert label in pulse.store.table_columns(f"reference_{model.spec.model_id}")

    def test_reference_that_does_not_fit_raises_the_real_error(self, pulse):
        """The old finally: unregister() turned this into a TransactionException."""
        pulse.model("m", "v1", task="binary", reference={"x": [1.0], "prediction": [0.5]})
        with pytest.raises(SchemaError, match="model 'm': the reference of version 'v1'"):
            pulse.model("m", "v1", reference={"x": ["not a number"], "prediction": [0.5]})
        assert pulse.store.fetch_one("SELECT count(*) FROM reference_1") == (1,)


class TestNames:
    """Model, version and column names are checked where they are stored."""

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            ("a/b", "contains '/'"),
            (".", "cannot be '.' or '..'"),
            ("..", "cannot be '.' or '..'"),
            ("", "empty"),
            ("  ", "empty"),
            ("a\x00b", "control character U\\+0000"),
            ("tab\there", "control character U\\+0009"),
            ("x\ud800", "lone surrogate"),
            ("m" * 201, "201 characters; the limit is 200"),
            (7, "string"),
        ],
    )
    def test_bad_model_names(self, pulse, name, reason):
        with pytest.raises(ConfigError, match=reason):
            pulse.model(name, "v1", task="binary")
        assert pulse.models() == []

    def test_good_model_names_round_trip(self, pulse):
        for name in [
            "churn",
            "a.b",
            "...",
            "Ünï cødé ☃",
            "<script>alert(1)<script>",
            'q"; --',
            "m" * 200,
        ]:
            model = pulse.model(name, "v1", task="binary")
            assert model.log_batch({"id": ["a"], "prediction": [0.5]}).stored == 1
        assert len(pulse.models()) == 7
        assert pulse.model("<script>alert(1)<script>").spec.name == "<script>alert(1)<script>"

    @pytest.mark.parametrize(
        ("version", "reason"),
        [
            ("all", "reserved"),
            ("*", "reserved"),
            ("v/1", "contains '/'"),
            ("..", "cannot be '.' or '..'"),
            ("v\x00", "control character"),
            ("v\ud800", "lone surrogate"),
            ("v" * 201, "the limit is 200"),
        ],
    )
    def test_bad_version_names(self, pulse, version, reason):
        with pytest.raises(ConfigError, match=f"model 'm': version .*{reason}"):
            pulse.model("m", version, task="binary")
        assert pulse.model("m", "v1", task="binary").versions() == ["v1"]

    def test_wildcards_still_select_every_version(self, pulse):
        for version in ("v1", "v2"):
            pulse.model("m", version, task="binary").log_batch(
                {"id": [version], "prediction": [0.5]}
            )
        model = pulse.model("m", "v1")
        for wildcard in ("*", "all"):
            frame = model.metrics(["count"], start="2000-01-01", end="2100-01-01", version=wildcard)
            assert frame["n"].iloc[0] == 2

    @pytest.mark.parametrize(
        ("kwargs", "what"),
        [
            ({"prediction": "p\x00"}, "prediction column"),
            ({"label": "y\ud800"}, "label column"),
            ({"features": ["ok", "f\x01"]}, "feature"),
            ({"segments": ["s" * 257]}, "segment column"),
            ({"prediction": "__id"}, "prediction column"),
            ({"segments": [3]}, "column names must be strings"),
        ],
    )
    def test_bad_column_names_at_registration(self, pulse, kwargs, what):
        with pytest.raises(ConfigError, match=f"model 'm': {what}"):
            pulse.model("m", "v1", task="binary", **kwargs)
        assert pulse.models() == []

    @pytest.mark.parametrize(
        ("column", "reason"),
        [("f\x00", "control character"), ("f\n", "control character"), ("f" * 257, "limit is 256")],
    )
    def test_bad_column_names_in_a_batch(self, pulse, column, reason):
        model = pulse.model("m", "v1", task="binary")
        with pytest.raises(SchemaError, match=f"model 'm': column .*{reason}"):
            model.log_batch({"id": ["a"], "prediction": [0.5], column: [1.0]})
        assert model.metrics(["count"], start="2000-01-01", end="2100-01-01")["n"].iloc[0] == 0
        with pytest.raises(SchemaError, match=f"model 'm': reference column .*{reason}"):
            pulse.model("m", "v1", reference={"prediction": [0.5], column: [1.0]})

    def test_duplicate_and_unreadable_columns(self, pulse):
        model = pulse.model("m", "v1", task="binary")
        twice = pa.table([["a"], [0.5], [1.0]], names=["id", "prediction", "id"])
        with pytest.raises(SchemaError, match="column names must be unique; repeated: 'id'"):
            model.log_batch(twice)
        with pytest.raises(SchemaError, match="cannot be read as a table"):
            model.log_batch({"id": ["a"], "prediction": [0.5], "x\ud800": [1.0]})

    def test_unknown_names_in_queries(self, pulse):
        model = pulse.model("m", "v1", task="binary")
        with pytest.raises(UnknownModelError, match="unknown model 'x\\\\ud800'"):
            pulse.model("x\ud800")
        with pytest.raises(UnknownModelError, match="not valid Unicode"):
            pulse.engine.registry.get("x\ud800")
        with pytest.raises(UnknownModelError, match="has no version"):
            model.metrics(["count"], version="v\ud800")
        with pytest.raises(ConfigError, match="must be a string"):
            pulse.engine.registry.get(None)


class TestCaseCollisions:
    """DuckDB identifiers are case-insensitive: Age and age cannot both be columns."""

    def test_within_a_batch(self, pulse):
        model = pulse.model("m", "v1", task="binary")
        with pytest.raises(SchemaError, match=r"model 'm': column 'age' and 'Age' \(both given\)"):
            model.log_batch({"id": ["a"], "prediction": [0.5], "Age": [1.0], "age": [2.0]})
        assert model.spec.features == {}
        assert model.log_batch({"id": ["a"], "prediction": [0.5], "Age": [1.0]}).stored == 1

    def test_against_the_stored_schema(self, pulse):
        model = pulse.model("m", "v1", task="binary", reference={"age": [1.0], "prediction": [0.5]})
        with pytest.raises(SchemaError, match="'AGE' and 'age' .*already a column"):
            model.log_batch({"id": ["a"], "prediction": [0.5], "AGE": [1.0]})
        with pytest.raises(SchemaError, match="reference column 'Age' and 'age'"):
            pulse.model("m", "v1", reference={"Age": [1.0], "prediction": [0.5]})
        with pytest.raises(ConfigError, match="'Age' and 'age'"):
            pulse.model("m", "v1", features=["Age"])
        assert model.spec.features == {"age": "numeric"}
        assert model.log_batch({"id": ["a"], "prediction": [0.5], "age": [1.0]}).stored == 1

    def test_against_prediction_label_and_segments(self, pulse):
        with pytest.raises(ConfigError, match="'Plan' and 'plan'"):
            pulse.model("m", "v1", task="binary", features=["plan", "Plan"])
        with pytest.raises(ConfigError, match="'Score' and 'score'"):
            pulse.model("m", "v1", task="binary", prediction="score", features=["Score"])
        model = pulse.model("m", "v1", task="binary", label="y", segments=["plan"])
        with pytest.raises(SchemaError, match="'PLAN' and 'plan'"):
            model.log_batch({"id": ["a"], "prediction": [0.5], "PLAN": ["x"]})
        with pytest.raises(SchemaError, match="'Y' and 'y'"):
            model.log_batch({"id": ["a"], "prediction": [0.5], "Y": [1.0]})

    def test_unicode_case_is_distinct_as_in_duckdb(self, pulse):
        model = pulse.model("m", "v1", task="binary")
        report = model.log_batch({"id": ["a"], "prediction": [0.5], "Ä": [1.0], "ä": [2.0]})
        assert report.stored == 1 and set(model.spec.features) == {"Ä", "ä"}

    def test_background_log_quarantines_a_colliding_row(self, pulse):
        model = pulse.model("m", "v1", task="binary")
        model.log(id="a", features={"Age": 1, "age": 2}, prediction=0.5)
        assert pulse.flush(timeout=30)
        reasons = model.quarantined()["reason"].tolist()
        assert len(reasons) == 1 and "differ only in case" in reasons[0]


class TestFeatureCap:
    """A model has at most max_features feature columns (default 1,000)."""

    def test_default_cap_rejects_a_wide_batch_before_any_work(self, pulse):
        model = pulse.model("m", "v1", task="binary")
        wide = pa.table(
            {"id": ["a"], "prediction": [0.5], **{f"f{i}": [1.0] for i in range(10_000)}}
        )
        started = time.perf_counter()
        with pytest.raises(
            SchemaError, match="model 'm': 10,000 feature columns exceed the limit of 1,000"
        ):
            model.log_batch(wide)
        assert time.perf_counter() - started < 5
        assert model.spec.features == {}

    def test_cap_counts_the_stored_features(self):
        with mlpulse.connect(":memory:", max_features=3) as pulse:
            model = pulse.model("m", "v1", task="binary", features=["a", "b"])
            assert model.log_batch({"id": ["1"], "prediction": [0.5], "c": [1.0]}).stored == 1
            with pytest.raises(SchemaError, match="4 feature columns exceed the limit of 3"):
                model.log_batch({"id": ["2"], "prediction": [0.5], "d": [1.0]})
            with pytest.raises(SchemaError, match="limit of 3"):
                pulse.model("wide", "v1", task="binary", features=["a", "b", "c", "d"])
            with pytest.raises(SchemaError, match="limit of 3"):
                pulse.model(
                    "ref",
                    "v1",
                    task="binary",
                    reference={"prediction": [0.5], **{k: [1] for k in "abcd"}},
                )
            assert set(model.spec.features) == {"a", "b", "c"}

    def test_environment_variable(self, monkeypatch):
        monkeypatch.setenv("MLPULSE_MAX_FEATURES", "2")
        with (
            mlpulse.connect(":memory:") as pulse,
            pytest.raises(SchemaError, match="3 feature columns exceed the limit of 2"),
        ):
            pulse.model("m", "v1", task="binary", features=["a", "b", "c"])
        monkeypatch.setenv("MLPULSE_MAX_FEATURES", "many")
        with (
            mlpulse.connect(":memory:") as pulse,
            pytest.raises(ConfigError, match="MLPULSE_MAX_FEATURES"),
        ):
            pulse.model("m", "v1", task="binary", features=["a"])

    @pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
    def test_bad_setting(self, bad):
        with pytest.raises(ConfigError, match="max_features must be a positive integer"):
            mlpulse.connect(":memory:", max_features=bad)


class TestSpecCache:
    """Registry.get answers from a cache on the store, current after every write."""

    def test_repeated_gets_do_not_query(self, pulse, monkeypatch):
        model = pulse.model("m", "v1", task="binary")
        registry = pulse.engine.registry
        first = registry.get("m")
        calls = []
        monkeypatch.setattr(pulse.store, "cursor", lambda: calls.append(1))
        for _ in range(100):
            assert registry.get("m") is first
        assert Registry(pulse.store).get("m") is first  # shared by every registry of the store
        assert calls == []
        assert model.spec is first

    def test_writes_update_it_and_rollbacks_do_not(self, pulse):
        model = pulse.model("m", "v1", task="multiclass")
        other = Registry(pulse.store)
        model.log_batch({"id": ["a"], "prediction": ["x"], "f": [1.0]})
        assert other.get("m").features == {"f": "numeric"}
        pulse.model("m", "v1", classes=["x", "y"])
        assert other.get("m").classes == ("x", "y")
        with pytest.raises(SchemaError):  # fails after the new column was staged
            model.log_batch({"id": ["b"], "prediction": ["x"], "g": [1.0], "G": [2.0]})
        assert other.get("m").features == {"f": "numeric"}
        seen = {}
        with pytest.raises(RuntimeError), pulse.store.write() as conn:  # noqa: PT012
            pulse.engine.registry._add_features(conn, other.get("m"), {"h": "numeric"})
            seen["writer"] = set(other.get("m").features)  # its own transaction's spec
            reader = threading.Thread(
                target=lambda: seen.update(reader=set(other.get("m").features))
            )
            reader.start()
            reader.join()
            raise RuntimeError("abort")
        assert seen == {"writer": {"f", "h"}, "reader": {"f"}}
        assert other.get("m").features == {"f": "numeric"}
        assert "h" not in pulse.store.table_columns("raw_1")

    def test_every_error_is_an_mlpulse_error(self, pulse):
        model = pulse.model("m", "v1", task="binary")
        for bad in [
            {"id": ["a"], "prediction": [0.5], "\x00": [1]},
            [{"id": "a", "prediction": 0.5, "A": 1, "a": 2}],
        ]:
            with pytest.raises(MlpulseError):
                model.log_batch(bad)
