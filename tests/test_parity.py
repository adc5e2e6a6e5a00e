"""One API, both transports: every public method of ``Model`` and ``Pulse`` runs against an
embedded store and against the HTTP API (the real ASGI app, in process through Starlette's
test transport), on the same real data, and the results agree (numbers to 1e-12).

One exception, and it is not the transport's: DataSketches' KLL sketch compacts with random
coin flips (its Python API takes no seed), so values read from merged feature sketches (a
summary's p50, sketch-mode drift statistics and p-values, range violations counted from sketch
ranks) differ between any two runs of the same query, in one process or two, within the
sketch's rank error (about 1.3% at k=200). Those columns are compared within that bound
(``LOOSE``); exact-mode results and everything else are compared to 1e-12.

The data: scikit-learn's breast-cancer set (569 tumours, 30 features) scored by a logistic
regression; 200 rows are the reference, the rest arrive over six hours with ids, latencies
and labels for most of them, a few rows of them shifted (``mean radius`` + 3) so drift and
quality have something to find.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

import mlpulse
from mlpulse.client.pulse import Model, Pulse
from mlpulse.drift import DriftReport
from mlpulse.monitors import MonitorReport
from mlpulse.quality.check import QualityReport
from mlpulse.server import ServerConfig, create_app

BASE = pd.Timestamp("2026-03-02T00:00:00Z")
START, END = BASE, BASE + pd.Timedelta("6h")


def _data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data = load_breast_cancer(as_frame=True)
    x = data.data.iloc[:, :8].copy()  # 8 features keep the test quick
    x.columns = [c.replace(" ", "_") for c in x.columns]
    y = data.target.to_numpy()
    rng = np.random.default_rng(11)
    order = rng.permutation(len(x))
    fit, ref_idx, cur_idx = order[:150], order[150:350], order[350:]
    clf = LogisticRegression(max_iter=5000).fit(x.iloc[fit], y[fit])
    score = clf.predict_proba(x)[:, 1]
    frame = x.assign(score=score, label=y, plan=np.where(x.mean_texture > 19, "pro", "free"))
    reference = frame.iloc[ref_idx].reset_index(drop=True)
    current = frame.iloc[cur_idx].reset_index(drop=True)
    current["id"] = [f"r{i}" for i in range(len(current))]
    current["timestamp"] = START + pd.to_timedelta(
        np.sort(rng.uniform(0, 6 * 3600, len(current))), unit="s"
    )
    current["latency_ms"] = rng.lognormal(2.0, 0.5, len(current))
    late = current.index >= len(current) // 2
    current.loc[late, "mean_radius"] += 3.0
    labels = current.loc[rng.uniform(size=len(current)) < 0.8, ["id", "label"]]
    return reference, current.drop(columns="label"), labels


REFERENCE, CURRENT, LABELS = _data()


def _fill(pulse: Pulse) -> Model:
    model = pulse.model(
        "cancer", version="v1", task="binary", reference=REFERENCE, prediction="score",
        label="label", segments=["plan"],
    )
    model.log_batch(CURRENT, id="id", timestamp="timestamp")
    model.log_feedback_batch(LABELS, id="id", label="label")
    model.log_training_features(REFERENCE.assign(id=[f"r{i}" for i in range(len(REFERENCE))]))
    model.set_training_info(trained_at=BASE - pd.Timedelta("240h"), max_age="30d")
    model.log_resource_usage(512.0, timestamp=BASE + pd.Timedelta("1h"))
    model.set_constraints([{"column": "mean_area", "rule": "range", "min": 0, "max": 2500}])
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Iterator[dict[str, Model]]:
    """The same model, filled the same way, on both transports."""
    local = mlpulse.connect(":memory:")
    app = create_app(ServerConfig(db=":memory:"))
    with TestClient(app) as client:
        remote = mlpulse.connect(
            "http://testserver", transport=client._transport,
            spool_dir=tmp_path_factory.mktemp("spool"), compression=None,
        )
        yield {"embedded": _fill(local), "http": _fill(remote)}
        remote.close()
    local.close()


# -- comparison ---------------------------------------------------------------------------


#: KLL's normalised rank error at k=200 (``kll_doubles_sketch.get_normalized_rank_error``).
EPS = 0.0133


def close_ranks(column: str, a: pd.Series, b: pd.Series) -> None:
    """Quantiles of ``column`` that are both within 2 x EPS in rank of each other in the
    window's actual data."""
    numeric = column in CURRENT and pd.api.types.is_numeric_dtype(CURRENT[column])
    values = np.sort(CURRENT[column].to_numpy(float)) if numeric else None
    for x, y in zip(a, b, strict=True):
        if values is None or pd.isna(x):
            assert pd.isna(x) == pd.isna(y) and (pd.isna(x) or x == y), column
            continue
        rx, ry = (np.searchsorted(values, v) / len(values) for v in (x, y))
        assert abs(rx - ry) <= 2 * EPS, (column, x, y)


def loose_frames(a: pd.DataFrame, b: pd.DataFrame, loose: dict[str, Any], path: str) -> None:
    """Frames equal to 1e-12 except the ``loose`` columns: a float (an absolute tolerance),
    "rank" (quantiles compared by rank in the data) or None (not compared)."""
    assert list(a.columns) == list(b.columns), path
    for name, rule in loose.items():
        if name not in a.columns:
            continue
        if rule == "rank":
            for col, x, y in zip(a["column"], a[name], b[name], strict=True):
                close_ranks(col, pd.Series([x]), pd.Series([y]))
        elif rule is not None:
            assert np.allclose(a[name].astype(float), b[name].astype(float), rtol=0, atol=rule,
                               equal_nan=True), (path, name)
    keep = [c for c in a.columns if c not in loose]
    same(a[keep], b[keep], path)


def same(a: Any, b: Any, path: str = "result", loose: dict[str, Any] | None = None) -> None:
    """Equal results: frames, reports and plain values; floats to 1e-12 (``loose``: columns
    read from randomised sketches, compared within the sketch's bound)."""
    if loose:
        if isinstance(a, DriftReport | QualityReport | MonitorReport):
            assert type(a) is type(b)
            kwargs = {"details": True} if isinstance(a, DriftReport) else {}
            a_frame, b_frame = a.to_pandas(**kwargs), b.to_pandas(**kwargs)
        else:
            a_frame, b_frame = a, b
        loose_frames(a_frame, b_frame, loose, path)
        return
    if isinstance(a, DriftReport):
        assert isinstance(b, DriftReport)
        same(a.to_pandas(details=True), b.to_pandas(details=True), f"{path}.to_pandas()")
        assert (a.dataset_drift, a.drifted_columns) == (b.dataset_drift, b.drifted_columns)
        assert a.window == b.window and a.against == b.against and a.mode == b.mode
        same(a.multivariate, b.multivariate, f"{path}.multivariate")
    elif isinstance(a, QualityReport | MonitorReport):
        assert type(a) is type(b)
        same(a.to_pandas(), b.to_pandas(), f"{path}.to_pandas()")
    elif isinstance(a, pd.DataFrame):
        assert isinstance(b, pd.DataFrame), path
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=0, obj=path)
        same(a.attrs, b.attrs, f"{path}.attrs")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for key in a:
            same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), path
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12, abs=0), path
    else:
        assert a == b, path


def without_arrival(frame: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows minus the time each store received them."""
    return frame.drop(columns="received_at")


# -- the table ----------------------------------------------------------------------------

W = {"start": START, "end": END}


def ago(t: pd.Timestamp) -> str:
    """``t`` as a time relative to now ("-123456s"), read when the call runs."""
    seconds = int((pd.Timestamp.now(tz="UTC") - t).total_seconds())
    return f"-{seconds}s" if seconds >= 0 else f"+{-seconds}s"


#: A relative start 90 minutes before the data: aligned to the step (the default), the
#: windows start at whole hours (START - 2h), the same on both transports.
ALIGNED = {"end": END, "step": "1h"}
EARLY = START - pd.Timedelta("90min")
#: Columns read from KLL sketches, and how they are compared (see the module docstring).
SKETCH_DRIFT = {"statistic": 0.05, "p_value": None, "p_adjusted": None, "note": None}
LOOSE: dict[tuple[str, int], dict[str, Any]] = {
    ("summary", 0): {"p50": "rank"},
    ("summary", 1): {"p50": "rank"},
    ("drift", 0): SKETCH_DRIFT,
    ("drift", 2): SKETCH_DRIFT,
    ("drift", 3): SKETCH_DRIFT,
    ("quality", 0): {"violations": 2 * EPS * len(CURRENT), "rate": 2 * EPS},
    ("checks", 0): {"value": None, "detail": None},
    # sketch-mode drift statistics quoted in the reason (the verdict itself is exact)
    ("estimate", 0): {"estimate_reason": None},
}
#: Model method -> calls that exercise it; each returns what is compared across transports.
CALLS: dict[str, list[Callable[[Model], Any]]] = {
    # model_id is the store's own key, not part of what a user declared
    "spec": [lambda m: dataclasses.replace(m.spec, model_id=0)],
    "versions": [lambda m: m.versions()],
    "metrics": [
        lambda m: m.metrics(["accuracy", "f1", "roc_auc", "log_loss", "latency_p95"], **W),
        lambda m: m.metrics(None, **W, step="1h"),
        lambda m: m.metrics(["accuracy", "count"], **W, step="2h", segment="plan=pro"),
        lambda m: m.metrics(["count"], **W, version="*"),
        lambda m: m.metrics(None, **W, step="2h", ci=0.9),
        lambda m: m.metrics(["count", "accuracy"], start=ago(EARLY), **ALIGNED),
    ],
    "summary": [lambda m: m.summary(**W), lambda m: m.summary(**W, step="3h", segment={"plan": "free"})],
    "quarantined": [lambda m: without_arrival(m.quarantined())],
    "drift": [
        lambda m: m.drift(**W),
        lambda m: m.drift(**W, mode="exact", method="ks", columns=["mean_radius", "mean_texture"]),
        lambda m: m.drift(**W, against={"start": START, "end": START + pd.Timedelta("3h")},
                          step="1h", correction="bonferroni", multivariate=True),
        lambda m: m.drift(**W, method={"mean_radius": "psi"}, thresholds={"psi": 0.3}),
        lambda m: (lambda r: (r, r.windows, r.change_points()))(
            m.drift(start=ago(EARLY), **ALIGNED, mode="exact")),
    ],
    "quality": [
        lambda m: m.quality(**W),
        lambda m: m.quality(**W, step="2h", mode="exact",
                            constraints=[{"column": "mean_radius", "rule": "range", "max": 20}]),
        lambda m: (lambda q: (q, q.windows, q.first_violations()))(
            m.quality(start=ago(EARLY), **ALIGNED, mode="exact")),
    ],
    "constraints": [lambda m: [c.to_dict() for c in m.constraints()]],
    "estimate": [
        lambda m: m.estimate(None, **W, step="2h", band=True),
        lambda m: m.estimate("accuracy", **W, mode="exact"),
        lambda m: m.estimate("accuracy", start=ago(EARLY), **ALIGNED, mode="exact", align=True),
    ],
    "skew": [lambda m: m.skew(), lambda m: m.skew(tolerance=0.5)],
    "segments": [
        lambda m: m.segments("accuracy", **W),
        lambda m: m.segments("count", START + pd.Timedelta("3h"), END,
                             against={"start": START, "end": START + pd.Timedelta("3h")}),
    ],
    "slices": [lambda m: m.slices(**W), lambda m: m.slices(**W, max_conditions=1, alpha=1.0)],
    "rows": [
        # label_timestamp is when the label arrived: not the same on both sides
        lambda m: m.rows(**W, where={"plan": "pro"}, limit=1500).drop(columns="label_timestamp"),
        lambda m: m.rows(**W, ids=["r1", "r2", "nope"], include_quarantined=True).drop(
            columns="label_timestamp"),
    ],
    "checks": [lambda m: m.checks(**W, now=BASE + pd.Timedelta("7h"))],
}
#: Writes, checked through what they change (they ran in ``_fill`` on both transports).
WRITES: dict[str, Callable[[Model], Any]] = {
    "log": lambda m: _log_and_read(m, "log"),
    "observe": lambda m: _log_and_read(m, "observe"),
    "log_feedback": lambda m: _log_and_read(m, "log_feedback"),
    "log_batch": lambda m: m.metrics(["count"], **W),
    "log_feedback_batch": lambda m: m.metrics(["accuracy", "label_coverage"], **W),
    "log_training_features": lambda m: m.skew(),
    "set_training_info": lambda m: m.checks(**W, monitors=["staleness"],
                                            now=BASE + pd.Timedelta("7h")),
    "log_resource_usage": lambda m: m.checks(**W, monitors=["computational"]),
    "set_constraints": lambda m: m.quality(**W, infer=False),
    "put_profiles": lambda m: _put_and_read(m),
}
LOG_AT = BASE + pd.Timedelta("8h")


def _log_and_read(model: Model, how: str) -> pd.DataFrame:
    """A queued write, flushed, then read back from the window it landed in."""
    if how == "log":
        model.log("q1", {"mean_radius": 14.0, "plan": "pro"}, 0.7, timestamp=LOG_AT,
                  latency_ms=3.0, trace_id="t1")
    elif how == "observe":
        with model.observe("q2", {"mean_radius": 15.0}, timestamp=LOG_AT) as obs:
            obs.prediction = 0.2
    else:
        model.log_feedback("q1", 1)
    model._pulse.flush()
    frame = model.metrics(["count", "accuracy"], start=LOG_AT, end=LOG_AT + pd.Timedelta("1h"))
    return frame.drop(columns=[])


def _put_and_read(model: Model) -> pd.DataFrame:
    """Profiles made as Spark partitions make them, put twice (replacing), read back."""
    from mlpulse.spark import profile_arrow

    at = BASE + pd.Timedelta(days=30)
    rows = CURRENT.head(40).assign(
        id=[f"p{i}" for i in range(40)], timestamp=at + pd.to_timedelta(np.arange(40), unit="min")
    )
    for _ in range(2):
        model.put_profiles(profile_arrow(model, rows))
    return model.metrics(["count", "prediction_mean"], start=at, end=at + pd.Timedelta("1h"))


def public_methods(cls: type) -> set[str]:
    return {
        name for name, value in vars(cls).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }


class TestParityTable:
    """Every Model method gives the same answer over both transports."""

    def test_table_covers_every_method(self) -> None:
        assert public_methods(Model) == set(CALLS) | set(WRITES)

    @pytest.mark.parametrize(
        "method,i", [(m, i) for m, calls in CALLS.items() for i in range(len(calls))]
    )
    def test_query(self, models, method, i) -> None:
        call = CALLS[method][i]
        a, b = call(models["embedded"]), call(models["http"])
        same(a, b, f"{method}#{i}", LOOSE.get((method, i)))

    @pytest.mark.parametrize("method", sorted(WRITES))
    def test_write(self, models, method) -> None:
        same(WRITES[method](models["embedded"]), WRITES[method](models["http"]), method)

    def test_results_are_not_empty(self, models) -> None:
        """The comparisons above compare something: real numbers, a drift found."""
        model = models["http"]
        frame = model.metrics(["accuracy", "roc_auc"], **W)
        assert frame.n.item() == len(CURRENT) and 0.8 < frame.accuracy.item() < 1.0
        assert "mean_radius" in model.drift(**W).drifted_columns
        assert model.quality(**W, infer=False).to_pandas().violations.sum() >= 0


#: Alert rules over the six hours (accuracy is about 0.9: ``acc`` fires after its ``for``).
ALERT_RULES = {
    "rules": [
        {"name": "acc", "model": "cancer", "metric": "accuracy", "window": "1h", "op": "<",
         "threshold": 0.99, "for": "30m", "min_rows": 10, "labels": {"severity": "page"},
         "annotations": {"summary": "{{model}} accuracy {{value}} < {{threshold}}"}},
        {"name": "busy", "model": "*", "metric": "count", "window": "1h", "op": ">",
         "threshold": 1000},
        {"name": "gone", "model": "cancer", "metric": "count", "op": ">", "threshold": 0},
    ],
    "notifiers": [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}],
}  # fmt: skip
EVAL_AT = [BASE + pd.Timedelta(h) for h in ("1h", "1h20m", "2h", "4h", "6h")]


def _rules(pulse: Pulse) -> Any:
    """The recommended rules the reference created, then user rules and notifiers."""
    recommended = pulse.rules.list()
    deleted = pulse.rules.delete(*recommended["name"])
    loaded = pulse.rules.load(ALERT_RULES)
    return (recommended, deleted, loaded, pulse.rules.delete("gone", "never-was"),
            pulse.rules.list(), pulse.rules.notifiers(), repr(pulse.rules))  # fmt: skip


def _incident(pulse: Pulse) -> Any:
    """An incident before and after acknowledging it (the acknowledgement's time is now)."""
    incident = pulse.incident(1)
    before = {k: v for k, v in vars(incident).items() if k != "_transport"}
    root_cause = incident.root_cause
    incident.acknowledge()
    after = pulse.incident(1)
    assert after.acknowledged_at is not None and incident.status == after.status
    return before, after.status, after.timeline["kind"].tolist(), repr(incident), root_cause


def _silence_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 12 and int(value, 16) >= 0


class TestPulseParity:
    """Pulse's methods and properties behave the same on both transports."""

    PULSE_CHECKS: dict[str, Callable[[Pulse], Any]] = {
        "model": lambda p: p.model("cancer", "v1").version,
        "models": lambda p: p.models(),
        "flush": lambda p: p.flush(10),
        "dropped": lambda p: p.dropped,
        "pending": lambda p: p.pending,
        "rejected": lambda p: p.rejected,
        "url": lambda p: isinstance(p.url, str),
        # alerting, in order: each step reads what the ones before stored
        "rules": _rules,
        "evaluate": lambda p: [p.evaluate(at=t) for t in EVAL_AT],
        "alerts": lambda p: (p.alerts(), p.alerts(state="firing", model="cancer")),
        "incidents": lambda p: p.incidents(),
        "incident": _incident,
        "silence": lambda p: _silence_id(p.silence({"rule": "acc"}, duration="90m",
                                                   comment="deploy", created_by="ops",
                                                   start=BASE + pd.Timedelta("8h"))),
        "silences": lambda p: p.silences().drop(columns="id"),
        "expire_silence": lambda p: (p.expire_silence(p.silences()["id"].iloc[0]),
                                     p.silences().drop(columns=["id", "ends_at", "active"])),
        "notifications": lambda p: p.notifications(),
        # retention counted back from the data's start: nothing to move, the same report
        "maintain": lambda p: {k: v for k, v in p.maintain(now=BASE).items()
                               if k not in ("seconds", "bytes_before", "bytes_after")},
    }  # fmt: skip

    def test_every_pulse_method(self, models) -> None:
        covered = set(self.PULSE_CHECKS) | {"close", "service", "store", "engine"}
        assert public_methods(Pulse) == covered
        for name, check in self.PULSE_CHECKS.items():
            same(check(models["embedded"]._pulse), check(models["http"]._pulse), name)
        # the alerting steps compared something: an alert fired, an incident, a notification
        pulse = models["http"]._pulse
        assert pulse.alerts()["state"].tolist() == ["firing"] and pulse.alerts()["rule"].item() == "acc"
        assert pulse.incident(1).status == "acknowledged" and len(pulse.silences()) == 1
        assert pulse.notifications()["kind"].tolist() == ["firing", "firing"]  # + a repeat 4h on
        assert set(pulse.rules.list()["name"]) == {"acc", "busy"}

    def test_store_is_embedded_only(self, models) -> None:
        assert models["embedded"]._pulse.service is not None
        assert models["http"]._pulse.service is None
        with pytest.raises(mlpulse.errors.ConfigError):
            models["http"]._pulse.store  # noqa: B018

    def test_errors_are_the_same(self, models) -> None:
        """The same mistake raises the same mlpulse error on both transports."""
        cases = [
            lambda m: m.metrics(["no_such_metric"], **W),
            lambda m: m.metrics(["count"], **W, segment="region=eu"),
            lambda m: m.drift(**W, method="no_such_method"),
            lambda m: m.estimate("mae", **W),
            lambda m: m.metrics(["count"], start=END, end=START),
            lambda m: m._pulse.model("cancer", "v1", task="regression"),
            lambda m: m._pulse.model("never-registered"),
            lambda m: m._pulse.rules.load([{"name": "x", "model": "cancer", "metric": "acuracy",
                                            "op": "<", "threshold": 1}]),
            lambda m: m._pulse.rules.load("rules: [\n"),
            lambda m: m._pulse.rules.load([{"name": "x", "model": "cancer", "metric": "count"}]),
            lambda m: m._pulse.incident(999),
            lambda m: m._pulse.incident("one"),
            lambda m: m._pulse.incident(999).acknowledge(),
            lambda m: m._pulse.expire_silence("nope"),
            lambda m: m._pulse.silence({}),
            lambda m: m._pulse.silence({"model": "cancer"}, duration="soon"),
            lambda m: m._pulse.alerts(state="on"),
            lambda m: m._pulse.incidents(status="closed"),
            lambda m: m._pulse.evaluate(at="not a time"),
        ]
        for i, case in enumerate(cases):
            errors = []
            for transport in ("embedded", "http"):
                with pytest.raises(mlpulse.errors.MlpulseError) as info:
                    case(models[transport])
                errors.append(type(info.value))
            assert errors[0] is errors[1], f"case {i}: {errors}"


def test_signatures_match_service() -> None:
    """Every Model method delegates to a transport method of the Service with that name."""
    from mlpulse.service import Service

    for name in set(CALLS) | set(WRITES):
        if name in ("spec", "versions", "log", "log_feedback", "observe"):
            continue
        assert hasattr(Service, name), name
        assert inspect.signature(getattr(Service, name)).parameters["name"]
