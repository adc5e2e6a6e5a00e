"""The analysis routes over HTTP (issue 9): drift, quality, estimate, checks, constraints,
training features, skew, training info and resource usage answer what the same
:class:`~mlpulse.service.Service` method answers in-process, exactly.

The real ASGI app runs in-process (Starlette's ``TestClient``, no socket) over a Service
that the test also calls directly: a breast-cancer classifier (scikit-learn's
``LogisticRegression``) registered, fed and labelled through the HTTP routes.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

with warnings.catch_warnings():  # starlette's TestClient would rather have httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from mlpulse.drift.report import DriftReport
from mlpulse.monitors.checks import MonitorReport
from mlpulse.monitors.training import memory_mb, training_info
from mlpulse.server import ServerConfig, create_app
from mlpulse.service import Service

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

ARROW = "application/vnd.apache.arrow.stream"
BASE = pd.Timestamp("2026-01-05T00:00:00Z")
START, END = "2026-01-05", "2026-01-06"
WINDOW = {"start": START, "end": END}
API = "/api/v1/models/bc"


def arrow_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_frame(response: Any) -> pd.DataFrame:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ARROW
    return pa.ipc.open_stream(response.content).read_all().to_pandas()


def json_rows(frame: pd.DataFrame) -> dict[str, Any]:
    out = frame.copy()
    if "timestamp" in out:
        out["timestamp"] = out["timestamp"].map(lambda t: t.isoformat())
    rows = out.to_dict(orient="records")
    return {"rows": [{k: None if v != v else v for k, v in row.items()} for row in rows]}


def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference rows (score, label) and serving rows (id, timestamp, latency, plan)."""
    bc = load_breast_cancer(as_frame=True)
    x, y = bc.data.iloc[:, :6].copy(), bc.target.to_numpy()
    x.columns = [c.replace(" ", "_") for c in x.columns]
    rng = np.random.default_rng(7)
    x["plan"] = rng.choice(["free", "pro"], len(x))
    numeric = x.drop(columns="plan")
    clf = LogisticRegression(max_iter=5000).fit(numeric.iloc[:200], y[:200])
    score = clf.predict_proba(numeric)[:, 1]
    ref = x.iloc[200:380].assign(score=score[200:380], label=y[200:380])
    cur = x.iloc[380:].reset_index(drop=True).assign(score=score[380:], label=y[380:])
    cur["mean_radius"] = cur["mean_radius"] * 1.25  # a drifted feature
    cur.loc[:4, "mean_texture"] = np.nan  # a few missing values
    cur["id"] = [f"c{i}" for i in range(len(cur))]
    cur["timestamp"] = BASE + pd.to_timedelta(np.arange(len(cur)) * 300, unit="s")
    cur["latency_ms"] = rng.uniform(2, 8, len(cur))
    return ref.reset_index(drop=True), cur


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TestClient, Service, pd.DataFrame]]:
    """v1 with a reference, predictions and most labels, all sent over HTTP; v2 with a few
    predictions of its own."""
    ref, cur = data()
    service = Service.open(":memory:")
    app = create_app(ServerConfig(db=":memory:"), service)
    with TestClient(app) as api:
        r = api.post(
            "/api/v1/models",
            json={"name": "bc", "version": "v1", "task": "binary", "prediction": "score",
                  "label": "label", "segments": ["plan"]},
        )
        assert r.status_code == 200, r.text
        r = api.put(f"{API}/versions/v1/reference", content=arrow_bytes(ref),
                    headers={"Content-Type": ARROW})
        assert r.status_code == 200, r.text
        rows = json_rows(cur.drop(columns="label"))
        r = api.post(f"{API}/versions/v1/predictions", json=rows)
        assert r.status_code == 200 and r.json()["stored"] == len(cur), r.text
        labelled = cur[["id", "label"]].iloc[: int(len(cur) * 0.8)]
        r = api.post(f"{API}/feedback", json=json_rows(labelled))
        assert r.status_code == 200 and r.json()["matched"] == len(labelled), r.text
        assert api.post("/api/v1/models", json={"name": "bc", "version": "v2"}).status_code == 200
        v2 = cur.iloc[:60].assign(id=lambda f: "v2_" + f["id"], latency_ms=9.0)
        r = api.post(f"{API}/versions/v2/predictions", json=json_rows(v2.drop(columns="label")))
        assert r.status_code == 200, r.text
        yield api, service, cur
    service.close()


# -- comparing reports ----------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (nested dicts and lists too)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def assert_same_drift(remote: DriftReport, local: DriftReport) -> None:
    pd.testing.assert_frame_equal(remote.to_pandas(details=True), local.to_pandas(details=True))
    for c_remote, c_local in zip(remote.columns, local.columns, strict=True):
        assert c_remote.is_test == c_local.is_test
    assert remote.correction == local.correction
    assert remote.drift_share == local.drift_share
    assert remote.window == local.window
    assert all(t.tzinfo is not None and t.utcoffset().total_seconds() == 0 for t in remote.window)
    assert remote.against == local.against
    assert remote.mode == local.mode
    assert same(remote.multivariate, local.multivariate), (remote.multivariate, local.multivariate)
    assert remote.dataset_drift == local.dataset_drift
    assert remote.drifted_columns == local.drifted_columns


DRIFT_CASES = {
    "defaults": {},
    "exact": {"mode": "exact"},
    "method per column": {"method": {"mean_radius": "psi", "plan": "chi2"},
                          "thresholds": {"psi": 0.2}},
    "bonferroni, share": {"correction": "bonferroni", "drift_share": 0.5},
    "no correction, columns": {"correction": None, "columns": ["mean_radius", "plan"]},
    "segment": {"segment": "plan=pro"},
    "segment as object": {"segment": {"plan": "free"}},
    "step": {"step": "6h"},
    "against a version": {"against": "v2"},
    "against a window": {"against": {"start": "2026-01-05T00:00:00Z",
                                     "end": "2026-01-05T12:00:00Z"}},
    "every version": {"versions": "*"},
    "multivariate": {"multivariate": True, "sample_size": 400},
    "multivariate columns": {"multivariate": ["mean_radius", "mean_texture"]},
}


class TestDrift:
    """POST .../drift answers ``DriftReport.to_dict()``; ``from_dict`` gives the report the
    service computes in-process, float for float."""

    @pytest.mark.parametrize("options", DRIFT_CASES.values(), ids=DRIFT_CASES.keys())
    def test_equals_service(self, served, options) -> None:
        api, service, _ = served
        r = api.post(f"{API}/versions/v1/drift", json=WINDOW | options)
        assert r.status_code == 200, r.text
        remote = DriftReport.from_dict(r.json())
        local = service.drift("bc", "v1", start=START, end=END, **options)
        assert_same_drift(remote, local)

    def test_json_is_readable(self, served) -> None:
        api, _, _ = served
        body = api.post(f"{API}/versions/v1/drift", json=WINDOW).json()
        assert body["dataset_drift"] is True and "mean_radius" in body["drifted_columns"]
        assert body["window"] == ["2026-01-05T00:00:00+00:00", "2026-01-06T00:00:00+00:00"]
        row = next(c for c in body["columns"] if c["column"] == "mean_radius")
        assert set(row) >= {"column", "kind", "method", "statistic", "p_value", "threshold",
                            "drifted", "p_adjusted", "n_reference", "n_current", "mode"}

    def test_path_version_star_reads_every_version(self, served) -> None:
        api, service, _ = served
        r = api.post(f"{API}/versions/*/drift", json=WINDOW)
        assert r.status_code == 200, r.text
        local = service.drift("bc", "v2", start=START, end=END, versions="*")
        assert_same_drift(DriftReport.from_dict(r.json()), local)


class TestQuality:
    """POST .../quality answers the QualityReport's table, exactly."""

    CASES = {
        "defaults": {},
        "constraints": {"constraints": [{"column": "mean_radius", "rule": "range", "min": 5,
                                         "max": 20}], "infer": False},
        "exact, step": {"mode": "exact", "step": "6h"},
        "segment": {"segment": "plan=pro"},
        "every version": {"versions": "all"},
    }

    @pytest.mark.parametrize("options", CASES.values(), ids=CASES.keys())
    def test_equals_service(self, served, options) -> None:
        api, service, _ = served
        r = api.post(f"{API}/versions/v1/quality", json=WINDOW | options,
                     headers={"Accept": ARROW})
        local = service.quality("bc", "v1", start=START, end=END, **options).to_pandas()
        pd.testing.assert_frame_equal(read_frame(r), local)

    def test_json_answer(self, served) -> None:
        api, service, _ = served
        body = api.post(f"{API}/versions/v1/quality", json=WINDOW).json()
        local = service.quality("bc", "v1", start=START, end=END).to_pandas()
        assert body["model"] == "bc" and body["versions"] == ["v1"]
        assert body["columns"] == list(local.columns) and len(body["rows"]) == len(local)


class TestEstimate:
    """GET .../estimate answers the estimate frame, its band in ``attrs`` included."""

    CASES = {
        "defaults": {},
        "metrics, band": {"metrics": "accuracy,roc_auc", "band": "true"},
        "repeated metrics, step": {"metrics": ["f1", "precision"], "step": "6h"},
        "exact, segment": {"mode": "exact", "segment": "plan=free"},
    }

    @pytest.mark.parametrize("params", CASES.values(), ids=CASES.keys())
    def test_equals_service(self, served, params) -> None:
        api, service, _ = served
        r = api.get(f"{API}/versions/v1/estimate", params=WINDOW | params,
                    headers={"Accept": ARROW})
        metrics = params.get("metrics")
        names = metrics.split(",") if isinstance(metrics, str) else metrics
        options = {k: v for k, v in params.items() if k != "metrics"}
        options["band"] = options.get("band") == "true"
        local = service.estimate("bc", "v1", names, start=START, end=END, **options)
        remote = read_frame(r)
        pd.testing.assert_frame_equal(remote, local)
        band = {m: tuple(v) for m, v in remote.attrs["band"].items()}
        assert same(band, local.attrs["band"]) and remote.attrs["level"] == local.attrs["level"]

    def test_json_attrs(self, served) -> None:
        api, _, _ = served
        body = api.get(f"{API}/versions/v1/estimate",
                       params=WINDOW | {"metrics": "accuracy"}).json()
        lower, upper = body["attrs"]["band"]["accuracy"]
        assert len(lower) == len(upper) == len(body["rows"]) == 1


class TestRecordsAndChecks:
    """Constraints, training features, training info and resource usage written over HTTP
    are what the service reads back; skew and checks then equal the service's."""

    def test_constraints(self, served) -> None:
        api, service, _ = served
        rules = [{"column": "mean_radius", "rule": "range", "min": 5, "max": 30},
                 {"column": "plan", "rule": "allowed", "values": ["free", "pro"]}]
        r = api.put(f"{API}/constraints", json={"constraints": rules, "replace": True})
        assert r.status_code == 200, r.text
        stored = [c.to_dict() for c in service.constraints("bc")]
        assert r.json() == {"constraints": stored} and stored == rules
        more = [{"column": "mean_texture", "rule": "not_null"}]
        r = api.put(f"{API}/constraints", json={"constraints": more})
        assert r.json()["constraints"] == rules + more
        assert api.get(f"{API}/constraints").json() == {"constraints": rules + more}

    def test_training_features_and_skew(self, served) -> None:
        api, service, cur = served
        train = cur[["id", "mean_radius", "mean_texture", "plan"]].iloc[:50].copy()
        train.loc[:9, "mean_radius"] += 1.0  # 10 of 50 ids differ
        r = api.post(f"{API}/training-features", params={"id": "id"}, content=arrow_bytes(train),
                     headers={"Content-Type": ARROW})
        assert r.status_code == 200 and r.json() == {"stored": 50}, r.text
        rates = {}
        for tolerance in (1e-9, 0.5):
            r = api.get(f"{API}/versions/v1/skew", params={"tolerance": tolerance},
                        headers={"Accept": ARROW})
            local = service.skew("bc", "v1", tolerance)
            pd.testing.assert_frame_equal(read_frame(r), local)
            rates[tolerance] = local.set_index("column")["rate"]
        assert rates[1e-9]["mean_radius"] == 0.2 and rates[1e-9]["plan"] == 0.0
        assert rates[0.5]["mean_radius"] == 0.0  # +1 on ~15-25 is within 50%

    def test_training_info_and_resource_usage(self, served) -> None:
        api, service, _ = served
        r = api.put(f"{API}/versions/v1/training-info",
                    json={"trained_at": "2026-01-01T00:00:00Z", "max_age": "30d"})
        assert r.status_code == 204 and r.content == b"", r.text
        spec = service.spec("bc")
        trained, age = training_info(service.store, spec, "v1")
        assert trained == int(pd.Timestamp("2026-01-01T00:00:00Z").value // 1000)
        assert age == 30 * 86_400 * 10**6
        for version, mb in (("v1", 400.0), ("v2", 800.0)):
            r = api.post(f"{API}/versions/{version}/resource-usage",
                         json={"memory_mb": mb, "timestamp": "2026-01-05T01:00:00Z"})
            assert r.status_code == 204, r.text
        lo = int(BASE.value // 1000)
        assert memory_mb(service.store, spec, "v2", lo, lo + 86_400 * 10**6) == 800.0

    CHECKS = {
        "defaults": {},
        "against v1, some monitors": {"against": "v1", "monitors": ["computational",
                                                                   "prediction_quality"]},
        "tolerances": {"skew_tolerance": 0.5, "regression": 0.01, "quality_drop": 0.0},
        "significance": {"quality_drop": 0.0, "min_segment_rows": 10, "alpha": 0.5},
    }

    @pytest.mark.parametrize("options", CHECKS.values(), ids=CHECKS.keys())
    def test_checks_equal_service(self, served, options) -> None:
        api, service, _ = served
        body = WINDOW | {"now": "2026-01-06T00:00:00Z"} | options
        for version in ("v1", "v2"):
            r = api.post(f"{API}/versions/{version}/checks", json=body)
            assert r.status_code == 200, r.text
            remote = MonitorReport.from_dict(r.json())
            local = service.checks("bc", version, **body)
            pd.testing.assert_frame_equal(remote.to_pandas(), local.to_pandas())
            assert remote.ok == local.ok and remote.failed == local.failed
            assert r.json()["ok"] == local.ok


class TestErrors:
    """Bad requests get the JSON error shape with a 4xx, never a 500."""

    CASES = [
        ("post", "/api/v1/models/nope/versions/v1/drift", {}, 404, "unknown_model"),
        ("post", f"{API}/versions/v9/drift", {}, 404, "unknown_model"),
        ("post", f"{API}/versions/v1/drift", {"against": "v9"}, 404, "unknown_model"),
        ("post", f"{API}/versions/v1/drift", {"versions": "v9"}, 404, "unknown_model"),
        ("post", f"{API}/versions/v1/drift", {"method": "nonsense"}, 422, None),
        ("post", f"{API}/versions/v1/drift", {"columns": ["nope"]}, 422, None),
        ("post", f"{API}/versions/v1/drift", {"segment": "nope=1"}, 422, None),
        ("post", f"{API}/versions/v1/drift", {"mode": "fast"}, 422, "invalid_input"),
        ("post", f"{API}/versions/v1/drift", {"sample_size": 0}, 422, "invalid_input"),
        ("post", f"{API}/versions/v1/drift", {"typo": 1}, 422, "invalid_input"),
        ("post", f"{API}/versions/v1/drift", {"start": "yesterday-ish"}, 422, None),
        ("post", f"{API}/versions/v1/drift", {"step": "1x"}, 422, None),
        ("post", f"{API}/versions/v1/quality", {"constraints": [{"column": "x", "rule": "?"}]},
         422, None),
        ("post", f"{API}/versions/v1/checks", {"monitors": ["nope"]}, 422, None),
        ("post", f"{API}/versions/v1/checks", {"alpha": 0}, 422, "invalid_input"),
        ("post", f"{API}/versions/v1/checks", {"min_segment_rows": -1}, 422, "invalid_input"),
        ("get", f"{API}/versions/v1/estimate?metrics=mae", None, 422, "unknown_metric"),
        ("get", f"{API}/versions/v1/estimate?mode=fast", None, 422, "invalid_input"),
        ("get", f"{API}/versions/v1/skew?tolerance=-1", None, 422, None),
        ("get", f"{API}/versions/v9/skew", None, 404, "unknown_model"),
        ("put", f"{API}/constraints", {"constraints": [{"column": "x"}]}, 422, None),
        ("put", "/api/v1/models/nope/constraints", {"constraints": []}, 404, "unknown_model"),
        ("put", f"{API}/versions/v1/training-info", {"max_age": "soon"}, 422, None),
        ("put", f"{API}/versions/v9/training-info", {}, 404, "unknown_model"),
        ("post", f"{API}/versions/v1/resource-usage", {}, 422, "invalid_input"),
        ("post", f"{API}/versions/v1/resource-usage", {"memory_mb": -1}, 422, "invalid_input"),
        ("post", f"{API}/training-features?id=nope", {"rows": [{"id": "a"}]}, 422, None),
    ]

    @pytest.mark.parametrize("method,path,body,status,code", CASES,
                             ids=[f"{c[0]} {c[1][len(API):]} {c[2]}" for c in CASES])
    def test_rejected(self, served, method, path, body, status, code) -> None:
        api, _, _ = served
        r = api.request(method.upper(), path, json=body)
        assert r.status_code == status, r.text
        error = r.json()
        assert error["detail"] and error["code"] and isinstance(error["errors"], list)
        if code:
            assert error["code"] == code

    def test_nan_in_json_is_rejected(self, served) -> None:
        api, _, _ = served
        r = api.post(f"{API}/versions/v1/drift", content=b'{"thresholds": {"ks": NaN}}',
                     headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text

    def test_estimate_of_a_regression_model(self, served) -> None:
        api, _, _ = served
        api.post("/api/v1/models", json={"name": "reg", "version": "v1", "task": "regression"})
        r = api.get("/api/v1/models/reg/versions/v1/estimate")
        # regression models get direct loss estimation, which learns from a reference
        assert r.status_code == 422 and "reference" in r.json()["detail"]


SCOPED = [
    ("post", f"{API}/versions/v1/drift", {}, "read"),
    ("post", f"{API}/versions/v1/quality", {}, "read"),
    ("get", f"{API}/versions/v1/estimate", None, "read"),
    ("post", f"{API}/versions/v1/checks", {}, "read"),
    ("get", f"{API}/constraints", None, "read"),
    ("get", f"{API}/versions/v1/skew", None, "read"),
    ("put", f"{API}/constraints", {"constraints": []}, "ingest"),
    ("post", f"{API}/training-features", {"rows": [{"id": "a", "x": 1.0}]}, "ingest"),
    ("put", f"{API}/versions/v1/training-info", {"max_age": "7d"}, "ingest"),
    ("post", f"{API}/versions/v1/resource-usage", {"memory_mb": 1.0}, "ingest"),
]


@pytest.fixture(scope="module")
def keyed() -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An app with a read, an ingest and an admin key."""
    service = Service.open(":memory:")
    service.register("bc", "v1", task="binary", features=["x"])
    app = create_app(ServerConfig(db=":memory:"), service)
    with TestClient(app) as api:
        keys = {s: app.state.keys.create(s) for s in ("read", "ingest", "admin")}
        yield api, keys
    service.close()


class TestScopes:
    """Analyses need a read key, writes an ingest key; admin keys may do both."""

    @pytest.mark.parametrize("method,path,body,scope", SCOPED,
                             ids=[f"{c[0]} {c[1][len(API):]}" for c in SCOPED])
    def test_scope(self, keyed, method, path, body, scope) -> None:
        api, keys = keyed
        r = api.request(method.upper(), path, json=body)
        assert r.status_code == 401
        for key_scope, key in keys.items():
            r = api.request(method.upper(), path, json=body,
                            headers={"Authorization": f"Bearer {key}"})
            if key_scope in (scope, "admin"):  # allowed (the analysis may still say 422)
                assert r.status_code not in (401, 403), (key_scope, r.text)
            else:
                assert r.status_code == 403, (key_scope, r.text)


class TestOpenApi:
    """The new routes are in /openapi.json with their request bodies."""

    def test_documented(self, served) -> None:
        api, _, _ = served
        paths = api.get("/openapi.json").json()["paths"]
        prefix = "/api/v1/models/{name}"
        for path, method in [
            ("/versions/{version}/drift", "post"),
            ("/versions/{version}/quality", "post"),
            ("/versions/{version}/estimate", "get"),
            ("/versions/{version}/checks", "post"),
            ("/constraints", "get"),
            ("/constraints", "put"),
            ("/training-features", "post"),
            ("/versions/{version}/skew", "get"),
            ("/versions/{version}/training-info", "put"),
            ("/versions/{version}/resource-usage", "post"),
        ]:
            operation = paths[prefix + path][method]
            assert "422" in operation["responses"], path
            if method in ("post", "put"):
                assert "requestBody" in operation, path


    def test_every_route_documented(self, served) -> None:
        """Each /api/v1 operation of /openapi.json has its row in docs/http-api.md's table."""
        page = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"
        rows = {
            (cells[1].strip(), cells[2].strip().strip("`"))
            for line in page.read_text().splitlines()
            if line.startswith("|") and len(cells := line.split("|")) > 3
        }
        api, _, _ = served
        paths = api.get("/openapi.json").json()["paths"]
        operations = [
            (method.upper(), path)
            for path, item in paths.items()
            if path.startswith("/api/v1")
            for method in item
        ]
        missing = [op for op in operations if op not in rows]
        assert len(operations) >= 22 and not missing, missing


class TestLifecycle:
    """The app closes the service it opened, and only that one."""

    def test_given_service_stays_open(self) -> None:
        service = Service.open(":memory:")
        with TestClient(create_app(ServerConfig(db=":memory:"), service)) as api:
            assert api.get("/readyz").status_code == 200
        assert service.models() == []  # still usable
        service.close()

    def test_handed_over_service_is_closed(self, tmp_path) -> None:
        service = Service.open(str(tmp_path / "given.duckdb"))
        app = create_app(ServerConfig(db=service.path), service, close_service=True)
        with TestClient(app) as api:
            assert api.get("/readyz").status_code == 200
        assert service.store._closed

    def test_opened_service_is_closed(self, tmp_path) -> None:
        app = create_app(ServerConfig(db=str(tmp_path / "own.duckdb")))
        with TestClient(app) as api:
            store = app.state.service.store
            assert api.get("/healthz").json()["schema_version"] >= 1
        assert app.state.service is None and store._closed


def test_server_imports_nothing_from_the_client() -> None:
    """The server is built on the Service: importing every server module (with the
    ``mlpulse`` package's own ``__init__``, which re-exports the client, skipped) loads no
    ``mlpulse.client`` module."""
    script = textwrap.dedent(
        """
        import importlib, importlib.util, pkgutil, sys, types
        found = importlib.util.find_spec("mlpulse")
        package = types.ModuleType("mlpulse")
        package.__path__ = list(found.submodule_search_locations)
        package.__version__ = "0"
        sys.modules["mlpulse"] = package
        import mlpulse.server
        names = [m.name for m in pkgutil.walk_packages(mlpulse.server.__path__, "mlpulse.server.")]
        for name in names:
            importlib.import_module(name)
        assert len(names) >= 10, names
        print(sorted(m for m in sys.modules if m.startswith("mlpulse.client")))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, env=os.environ | {"PYTHONWARNINGS": "ignore"}, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
