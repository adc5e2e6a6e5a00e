"""Fuzz every path where a user-supplied name meets SQL (issue 8), embedded and over HTTP.

Hostile names (quotes, ``;``, ``--``, NUL and other control characters, lone surrogates,
case collisions, ``/``, ``..``, ``<script>``, Unicode, very long names) are driven through
registration (model, version, features, segments, prediction and label columns), reference
upload, ``log_batch``, ``log_feedback_batch`` and the metrics, summary, drift, quality and
estimate queries. For each call: either it works and the name round-trips as data, or an
:mod:`mlpulse.errors` exception is raised; never a raw DuckDB or builtin exception. Every
SQL text the store runs is one statement, and a sentinel table and the API keys survive.

Over HTTP the same harness drives the real ASGI app in process (Starlette's test transport,
which re-raises any server exception), through the remote client: a refusal must be a 4xx
that the client raises as an mlpulse error; a 5xx or a raw exception on either side fails.
"""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Callable
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlpulse
from mlpulse.errors import MlpulseError, RemoteError
from mlpulse.server import ServerConfig, create_app
from mlpulse.service import Service

#: Names an attacker or a careless user would try.
HOSTILE = [
    '"',
    "'",
    ";",
    "--",
    'x" DOUBLE; DROP TABLE sentinel; --',
    "a'); DROP TABLE sentinel; --",
    "'; COPY (SELECT 1) TO '/tmp/mlpulse-fuzz-pwned'; --",
    "q\"; INSERT INTO api_keys VALUES ('k', 'h', 'admin', NULL, now(), NULL); --",
    "x\x00y",
    "\x00",
    "\ud800",
    "a\udfffb",
    "tab\there",
    "new\nline",
    "\x7f",
    "\u202eevil",
    "/",
    "a/b",
    ".",
    "..",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "Ünïcødé ☃ 日本語",
    "e\u0301",
    "x" * 200,
    "y" * 256,
    "z" * 257,
    "w" * 5000,
    "",
    " ",
    "all",
    "*",
    "__version",
    "__id",
    "latency_ms",
    "trace_id",
    "select",
    "NULL",
    "?",
    "$1",
    "%s",
    "{0}",
    "\\",
    "`",
]

#: Tables the store may hold: its own and the per-model ones.
_OWN = re.compile(r"^(raw|feedback|pending|reference|training)_\d+$")
WINDOW = {"start": "-1d", "end": "+1h"}


class StatementSpy:
    """A connection proxy that records every SQL text that is not exactly one statement."""

    def __init__(self, conn: Any, bad: list[str]) -> None:
        self._conn = conn
        self._bad = bad

    def _check(self, sql: Any) -> None:
        if isinstance(sql, str) and len(self._conn.extract_statements(sql)) != 1:
            self._bad.append(sql)

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        self._check(sql)
        return self._conn.execute(sql, *args, **kwargs)

    def executemany(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        self._check(sql)
        return self._conn.executemany(sql, *args, **kwargs)

    def sql(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        self._check(sql)
        return self._conn.sql(sql, *args, **kwargs)

    def cursor(self) -> StatementSpy:
        return StatementSpy(self._conn.cursor(), self._bad)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class Harness:
    """One store with a sentinel, spied statements, and a record of failures; ``pulse``
    reaches it in process or over HTTP (``store`` is the store either way)."""

    def __init__(self, pulse: Any = None, store: Any = None) -> None:
        self.pulse = pulse if pulse is not None else mlpulse.connect(":memory:")
        self.store = store if store is not None else self.pulse.store
        store = self.store
        store._conn.execute("CREATE TABLE sentinel (v INTEGER)")
        store._conn.execute("INSERT INTO sentinel VALUES (42)")
        self.keys = store.fetch_one("SELECT count(*) FROM api_keys")[0]
        self.initial = self.tables()
        self.multi: list[str] = []
        store._conn = StatementSpy(store._conn, self.multi)
        store._local = threading.local()  # new read cursors come from the spy
        self.raw: list[str] = []
        self.counter = 0
        self.features: list[str] = []  # names stored as features of the shared model
        self.ids: list[str] = []  # the ids logged with them
        self.segmented: list[tuple[Any, dict[str, str]]] = []  # models with a hostile segment

    def tables(self) -> set[str]:
        rows = self.store._conn.execute(
            "SELECT table_name FROM information_schema.tables"
        ).fetchall()
        return {r[0] for r in rows}

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def attempt(self, what: str, fn: Callable[[], Any]) -> Any:
        """The call's result, or None when it raised an mlpulse error; anything else is
        recorded as a failure."""
        try:
            return fn()
        except RemoteError as exc:
            if exc.status is not None and exc.status >= 500:  # the server failed
                self.raw.append(f"{what}: HTTP {exc.status}: {exc}")
            return None
        except MlpulseError:
            return None
        except Exception as exc:  # the defect this fuzz exists to find
            self.raw.append(f"{what}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
            return None

    def check(self) -> None:
        """Nothing but the intended statements ran."""
        assert not self.raw, "raw exceptions:\n" + "\n".join(self.raw[:5])
        assert not self.multi, f"multi-statement SQL: {self.multi[:3]}"
        store = self.store
        assert store.fetch_one("SELECT v FROM sentinel") == (42,)
        assert store.fetch_one("SELECT count(*) FROM api_keys") == (self.keys,)
        extra = self.tables() - self.initial
        assert all(_OWN.match(t) for t in extra), sorted(extra)

    # -- the paths ------------------------------------------------------------------------

    def shared(self, name: str, **kwargs: Any) -> Any:
        """A model shared by every name of one role (cheaper than one model per name)."""
        return self.pulse.model(name, "v1", task="binary", **kwargs)

    def queries(self, model: Any, segment: Any = None) -> None:
        a = self.attempt
        a("metrics", lambda: model.metrics(["count", "accuracy"], **WINDOW, segment=segment))
        a("summary", lambda: model.summary(**WINDOW, segment=segment))
        a("drift", lambda: model.drift(**WINDOW, segment=segment).to_pandas())
        a("quality", lambda: model.quality(**WINDOW, segment=segment).to_pandas())
        a("estimate", lambda: model.estimate(["accuracy"], **WINDOW, segment=segment))

    def as_model_name(self, name: str) -> None:
        a = self.attempt
        model = a("register model", lambda: self.pulse.model(name, "v1", task="binary"))
        a("lookup model", lambda: self.pulse.model(name))
        if model is None:
            assert name not in self.pulse.models()
            return
        assert model.spec.name == name and name in self.pulse.models()
        report = a("log_batch", lambda: model.log_batch({"id": ["a"], "prediction": [0.7]}))
        assert report is not None and report.stored == 1
        frame = a("metrics", lambda: model.metrics(["count"], **WINDOW))
        assert frame is not None and frame["n"].iloc[0] == 1

    def as_version(self, name: str) -> None:
        a = self.attempt
        base = self.shared("versions")
        model = a("register version", lambda: self.pulse.model("versions", name))
        if model is None:
            assert name not in base.versions()
            a("query version", lambda: base.metrics(["count"], **WINDOW, version=name))
            return
        assert name in base.versions()
        row = self.fresh("r")
        report = a("log_batch", lambda: model.log_batch({"id": [row], "prediction": [0.7]}))
        assert report is not None and report.stored == 1
        frame = a("metrics", lambda: base.metrics(["count"], **WINDOW, version=name))
        assert frame is not None and frame["n"].iloc[0] == 1
        a("drift against version", lambda: base.drift(**WINDOW, against=name))

    def as_feature(self, name: str) -> None:
        """Reference upload (widening the reference table), log_batch (a new raw column);
        the queries naming the accepted columns run once, in ``finish``."""
        a = self.attempt
        model = self.shared("features")
        reference = {
            "prediction": [0.2, 0.8],
            "label": [0, 1],
            "base": [1.0, 2.0],
            name: [1.0, 2.0],
        }
        a("reference", lambda: self.pulse.model("features", "v1", reference=reference))
        ids = [self.fresh("r"), self.fresh("r")]
        stored = a(
            "log_batch",
            lambda: model.log_batch({"id": ids, "prediction": [0.2, 0.9], name: [1.0, 3.0]}),
        )
        if stored is not None and name in model.spec.features:
            self.features.append(name)
            self.ids.extend(ids)

    def as_segment(self, name: str) -> None:
        a = self.attempt
        model_name = self.fresh("seg")
        model = a(
            "register segment",
            lambda: self.pulse.model(model_name, "v1", task="binary", segments=[name]),
        )
        if model is None:
            return
        rows = {"id": ["a", "b"], "prediction": [0.2, 0.9], name: ["x", "y"]}
        report = a("log_batch", lambda: model.log_batch(rows))
        frame = a("metrics", lambda: model.metrics(["count"], **WINDOW, segment={name: "x"}))
        if report is not None:
            assert frame is not None and frame["n"].iloc[0] == 1
        self.segmented.append((model, {name: "x"}))

    def as_segment_value(self, value: str) -> None:
        a = self.attempt
        model = self.shared("segment_values", segments=["plan"])
        row = self.fresh("r")
        a("log_batch", lambda: model.log_batch({"id": [row], "prediction": [0.5], "plan": [value]}))
        a("metrics", lambda: model.metrics(["count"], **WINDOW, segment={"plan": value}))

    def as_prediction_and_label(self, name: str) -> None:
        """One model with the name as its prediction column and name + '!' as its label."""
        a = self.attempt
        model = a(
            "register prediction/label",
            lambda: self.pulse.model(
                self.fresh("pred"), "v1", task="binary", prediction=name, label=f"{name}!"
            ),
        )
        if model is None:
            return
        prediction, label = model.spec.prediction, model.spec.label  # "" means the default
        report = a("log_batch", lambda: model.log_batch({"id": ["a"], prediction: [0.5]}))
        assert report is not None and report.stored == 1
        report = a(
            "feedback", lambda: model.log_feedback_batch({"id": ["a"], label: [1]}, label=label)
        )
        assert report is not None and report.matched == 1

    def as_id_and_timestamp_column(self, name: str) -> None:
        a = self.attempt
        model = self.shared("columns")
        row = self.fresh("r")
        a("id column", lambda: model.log_batch({name: [row], "prediction": [0.5]}, id=name))
        a(
            "timestamp column",
            lambda: model.log_batch(
                {"id": [self.fresh("r")], "prediction": [0.5], name: ["2026-01-01"]},
                timestamp=name,
            ),
        )

    def as_alerting(self, name: str) -> None:
        """Rule names, the model a rule names, its labels, segment and metric, alert and
        incident filters, silences and ids (issue 10)."""
        a, pulse = self.attempt, self.pulse
        rule = {"name": name, "model": "alerting", "metric": "count", "window": "1h", "op": ">",
                "threshold": 0, "labels": {"team": name}, "annotations": {"summary": name}}  # fmt: skip
        stored = a("load rule", lambda: pulse.rules.load([rule]))
        if stored is not None:
            assert stored == [name] and name in set(pulse.rules.list()["name"])
        for field, value in (("model", name), ("segment", f"plan={name}"), ("metric", name),
                             ("version", name)):  # fmt: skip
            a(f"rule {field}", lambda f=field, v=value: pulse.rules.load([{**rule, "name": self.fresh("rule"), f: v}]))
        a("alerts", lambda: pulse.alerts(model=name))
        a("alerts state", lambda: pulse.alerts(state=name))
        a("incidents", lambda: pulse.incidents(status=name))
        a("incident", lambda: pulse.incident(name))
        silence = a("silence", lambda: pulse.silence({name or "x": name}, comment=name, created_by=name))
        a("expire", lambda: pulse.expire_silence(silence or name))
        a("expire hostile", lambda: pulse.expire_silence(name))
        if stored is not None:
            assert a("delete rule", lambda: pulse.rules.delete(name)) == 1
        a("delete hostile", lambda: pulse.rules.delete(name))

    def run(self, name: str) -> None:
        for role in (
            self.as_model_name,
            self.as_version,
            self.as_feature,
            self.as_segment,
            self.as_segment_value,
            self.as_prediction_and_label,
            self.as_id_and_timestamp_column,
        ):
            role(name)

    def finish(self) -> None:
        """The queries over the shared models (naming every accepted column), then the
        checks."""
        a, names, ids = self.attempt, self.features, self.ids
        features = self.shared("features")
        labels = [i % 2 for i in range(len(ids))]
        a("feedback", lambda: features.log_feedback_batch({"id": ids, "label": labels}))
        self.queries(features)
        a("drift columns", lambda: features.drift(**WINDOW, columns=names).to_pandas())
        a("drift exact", lambda: features.drift(**WINDOW, columns=names, mode="exact"))
        rules = [{"column": n, "rule": "not_null"} for n in names]
        a("constraints", lambda: features.quality(**WINDOW, constraints=rules).to_pandas())
        a("set constraints", lambda: features.set_constraints(rules))
        a(
            "training",
            lambda: features.log_training_features({"id": ids[:1], **{n: [1.0] for n in names}}),
        )
        a("skew", features.skew)
        values = self.shared("segment_values", segments=["plan"])
        for n in names:  # drill-down filters: a quoted identifier and a parameter each
            a("rows where", lambda n=n: features.rows(**WINDOW, where={n: n}, limit=2))
        a("rows hostile column", lambda: features.rows(**WINDOW, where={HOSTILE[0]: 1}))
        a("slices", lambda: features.slices(**WINDOW, alpha=1.0, max_conditions=1))
        a("segments", lambda: values.segments("accuracy", **WINDOW, against="previous"))
        summary = features.summary(**WINDOW)
        assert set(self.features) <= set(summary["column"])  # every accepted name round-trips
        drift = features.drift(**WINDOW, against=dict(WINDOW)).to_pandas()
        assert set(self.features) <= set(drift["column"])
        self.queries(values, segment={"plan": "x"})
        a("summary", lambda: values.summary(**WINDOW, segment=f"plan={HOSTILE[4]}"))
        for model, segment in self.segmented[:: max(1, len(self.segmented) // 6)]:
            self.queries(model, segment=segment)  # a sample: each costs a second
        self.check()


@pytest.fixture(params=["embedded", "http"])
def harness(request, tmp_path):
    if request.param == "embedded":
        h = Harness()
        yield h
        h.pulse.close()
        return
    from starlette.testclient import TestClient

    service = Service.open(":memory:")
    app = create_app(ServerConfig(db=":memory:"), service)
    with TestClient(app) as client:
        pulse = mlpulse.connect(
            "http://testserver", transport=client._transport, spool_dir=tmp_path,
            compression=None, retry_for=1.0, max_attempts=1,
        )
        h = Harness(pulse, service.store)
        yield h
        pulse.close()
    service.close()


def test_hostile_names_everywhere(harness):
    """Every hostile name in every role: works and round-trips, or an mlpulse error."""
    for name in HOSTILE:
        harness.run(name)
    harness.finish()
    assert len(harness.features) > 20  # most hostile names are fine column names


def test_hostile_names_in_alerting(harness):
    """Every hostile name as a rule name, model, label, segment, metric, filter, matcher and
    id: works and round-trips, or an mlpulse error; then a round evaluates the rules that
    were stored (hostile labels included) and every alerting table reads back."""
    pulse = harness.pulse
    model = pulse.model("alerting", "v1", task="binary", segments=["plan"])
    model.log_batch({"id": ["a"], "prediction": [0.7], "plan": ["x"]})
    for name in HOSTILE:
        harness.as_alerting(name)
    kept = [{"name": f"keep{i}", "model": "alerting", "metric": "count", "window": "1d", "op": ">",
             "threshold": 0, "labels": {"team": name}} for i, name in enumerate(HOSTILE)]  # fmt: skip
    harness.attempt("labels", lambda: [pulse.rules.load([rule]) for rule in kept])
    a = harness.attempt
    assert a("evaluate", pulse.evaluate) is not None
    for read in (pulse.alerts, pulse.incidents, pulse.silences, pulse.notifications, pulse.rules.list):
        assert a(read.__qualname__, read) is not None
    assert (pulse.alerts()["state"] == "firing").any()
    harness.check()


def test_case_collisions_everywhere(harness):
    """Age/age within a batch, against the stored schema, the reference, the segments:
    each a clear mlpulse error, nothing stored, the model still usable."""
    pulse = harness.pulse
    model = pulse.model(
        "cc", "v1", task="binary", segments=["Plan"], reference={"Age": [1.0], "prediction": [0.5]}
    )
    collisions: list[Callable[[], Any]] = [
        lambda: model.log_batch({"id": ["a"], "prediction": [0.5], "x": [1], "X": [2]}),
        lambda: model.log_batch({"id": ["b"], "prediction": [0.5], "AGE": [1]}),
        lambda: model.log_batch({"id": ["c"], "prediction": [0.5], "plan": ["p"]}),
        lambda: model.log_batch({"id": ["d"], "prediction": [0.5], "PREDICTION": [1]}),
        lambda: model.log_batch([{"id": "e", "prediction": 0.5, "k": 1, "K": 2}]),
        lambda: pulse.model("cc", "v1", reference={"q": [1], "Q": [1], "prediction": [0.5]}),
        lambda: pulse.model("cc", "v1", reference={"age": [1], "prediction": [0.5]}),
        lambda: pulse.model("cc", "v1", features=["aGe"]),
        lambda: pulse.model("cc2", "v1", task="binary", features=["f", "F"]),
        lambda: pulse.model("cc3", "v1", task="binary", features=["s"], segments=["S"]),
        lambda: pulse.model("cc4", "v1", task="binary", prediction="p", label="P"),
    ]
    for attempt in collisions:
        with pytest.raises(MlpulseError, match="differ only in case"):
            attempt()
    model.log(id="f", features={"k": 1, "K": 2}, prediction=0.5)  # background: quarantined
    assert pulse.flush(timeout=30)
    assert "differ only in case" in model.quarantined()["reason"].iloc[-1]
    assert set(model.spec.features) == {"Age"}
    assert pulse.models() == ["cc"]
    assert model.log_batch({"id": ["z"], "prediction": [0.5], "Age": [2.0]}).stored == 1
    harness.run("Age")
    harness.run("age")
    harness.finish()
    assert "age" not in harness.pulse.model("features").spec.features


_PIECES = [
    '"',
    "'",
    ";",
    "--",
    "\x00",
    "\ud800",
    "/",
    ".",
    "..",
    "a",
    "A",
    "<",
    ">",
    " ",
    "é",
    "\n",
    "__",
    "*",
    "DROP TABLE sentinel",
]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.lists(st.sampled_from(_PIECES), max_size=6).map("".join))
def test_generated_names(harness, name):
    """Names assembled from hostile pieces, as model names, features and segments."""
    harness.as_model_name(name)
    harness.as_feature(name)
    harness.as_segment(name)
    harness.check()


def test_spy_sees_multiple_statements():
    """The fuzz's own check works: two statements in one text are caught."""
    bad: list[str] = []
    spy = StatementSpy(duckdb.connect(), bad)
    spy.execute("SELECT 1")
    spy.execute('CREATE TABLE t ("a; DROP TABLE t; --" INT)')
    spy.execute("SELECT 1; SELECT 2")
    assert bad == ["SELECT 1; SELECT 2"]
