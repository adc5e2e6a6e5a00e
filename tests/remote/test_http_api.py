"""The HTTP API of a real server: malformed input gets the right 4xx and stores nothing,
API keys and scopes, limits, health and the OpenAPI document."""

from __future__ import annotations

import gzip
import io
import json

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlpulse.cli import main

ARROW = "application/vnd.apache.arrow.stream"


def arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.fixture
def api(server, model_name):
    """A client of the shared server with a registered binary model."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/api/v1/models", json={"name": model_name, "version": "v1",
                                                 "task": "binary", "prediction": "score",
                                                 "label": "y"})
        assert r.status_code == 200, r.text
        yield client


def stored(api, name) -> int:
    r = api.get(f"/api/v1/models/{name}/versions/v1/metrics",
                params={"metrics": "count", "start": "2000-01-01", "end": "2100-01-01"})
    assert r.status_code == 200, r.text
    return r.json()["rows"][0]["n"]


GOOD = {"id": "a", "score": 0.5, "timestamp": "2026-01-05T00:00:00Z"}


class TestMalformedInput:
    """Each kind of bad body gets its 4xx with a JSON error, and nothing is stored."""

    CASES = [
        ("bad json", b'{"rows": [', "application/json", 400),
        ("nan", b'{"rows": [{"id": "a", "score": NaN}]}', "application/json", 400),
        ("inf", b'{"rows": [{"id": "a", "score": Infinity}]}', "application/json", 400),
        ("overflow", b'{"rows": [{"id": "a", "score": 1e999}]}', "application/json", 400),
        ("invalid utf-8", b'{"rows": [{"id": "\xff\xfe", "score": 0.5}]}', "application/json", 400),
        ("not an object", b'[1, 2]', "application/json", 422),
        ("row not an object", b'{"rows": [1]}', "application/json", 422),
        ("nested value", b'{"rows": [{"id": "a", "score": 0.5, "f": {"x": 1}}]}',
         "application/json", 422),
        ("missing id column", b'{"rows": [{"score": 0.5}]}', "application/json", 422),
        ("bad ndjson line", b'{"id": "a", "score": 0.5}\n{oops\n', "application/x-ndjson", 400),
        ("garbage arrow", b"\x00\x01garbage", ARROW, 400),
        ("wrong content type", b"id,score\na,0.5\n", "text/csv", 415),
        ("no content type", json.dumps({"rows": [GOOD]}).encode(), "", 415),
        ("bad gzip", b"not gzip", "application/json+gzip", 400),
    ]

    @pytest.mark.parametrize("what,body,ctype,status", CASES, ids=[c[0] for c in CASES])
    def test_rejected(self, api, model_name, what, body, ctype, status):
        headers = {"Content-Type": ctype.replace("+gzip", "")}
        if ctype.endswith("+gzip"):
            headers["Content-Encoding"] = "gzip"
        r = api.post(f"/api/v1/models/{model_name}/versions/v1/predictions", content=body,
                     headers=headers)
        assert r.status_code == status, r.text
        error = r.json()
        assert error["detail"] and error["code"]
        assert stored(api, model_name) == 0

    def test_wrong_types_are_quarantined_not_stored_partially(self, api, model_name):
        """Row-level problems quarantine rows with a reason: stored + quarantined = received."""
        rows = [GOOD, {"id": "b", "score": "high", "timestamp": "2026-01-05T00:00:00Z"}]
        r = api.post(f"/api/v1/models/{model_name}/versions/v1/predictions", json={"rows": rows})
        assert r.status_code == 200
        assert r.json()["received"] == 2 and r.json()["stored"] + r.json()["quarantined"] == 2

    def test_unknown_model_version_and_field_paths(self, api, model_name):
        r = api.post("/api/v1/models/nope/versions/v1/predictions", json={"rows": [GOOD]})
        assert r.status_code == 404 and r.json()["code"] == "unknown_model"
        r = api.post(f"/api/v1/models/{model_name}/versions/v9/predictions", json={"rows": [GOOD]})
        assert r.status_code == 404
        r = api.post("/api/v1/models", json={"name": "x", "task": "ranking"})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "task"]
        r = api.post("/api/v1/models", json={"name": model_name, "task": "regression"})
        assert r.status_code == 409
        r = api.get(f"/api/v1/models/{model_name}/versions/v1/metrics", params={"metrics": "nope"})
        assert r.status_code == 422 and r.json()["code"] == "unknown_metric"

    def test_formats_and_idempotency(self, api, model_name):
        """JSON, NDJSON, Arrow and gzip all ingest; a repeated Idempotency-Key stores once."""
        url = f"/api/v1/models/{model_name}/versions/v1/predictions"
        ts = "2026-01-05T00:00:00Z"
        r = api.post(url, content=gzip.compress(json.dumps({"rows": [GOOD]}).encode()),
                     headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        assert r.json()["stored"] == 1
        nd = b'{"id": "n1", "score": 0.1, "timestamp": "%s"}\n' % ts.encode()
        r = api.post(url, content=nd, headers={"Content-Type": "application/x-ndjson"})
        assert r.json()["stored"] == 1
        table = pa.table({"id": ["w1", "w2"], "score": [0.2, 0.8], "timestamp": [ts, ts]})
        for _ in range(3):
            r = api.post(url, content=arrow_bytes(table),
                         headers={"Content-Type": ARROW, "Idempotency-Key": "batch-1"})
            assert r.status_code == 200 and r.json()["stored"] == 2
        assert stored(api, model_name) == 4
        fb = api.post(f"/api/v1/models/{model_name}/feedback", json={"rows": [{"id": "w1", "y": 1}]})
        assert fb.json()["matched"] == 1

    def test_reference_parquet(self, api, model_name):
        buf = io.BytesIO()
        pq.write_table(pa.table({"age": [1.0, 2.0], "plan": ["a", "b"], "score": [0.1, 0.2]}), buf)
        r = api.put(f"/api/v1/models/{model_name}/versions/v1/reference", content=buf.getvalue(),
                    headers={"Content-Type": "application/vnd.apache.parquet"})
        assert r.status_code == 200, r.text
        assert r.json()["features"] == {"age": "numeric", "plan": "categorical"}


class TestLimitsAndAuth:
    """Limits give 413/422; once a key exists every /api call needs one with the right scope."""

    def test_limits(self, server_factory):
        server = server_factory("--max-body-bytes", "2000", "--max-rows", "5",
                                "--max-string-length", "10", "--max-features", "3")
        with httpx.Client(base_url=server.url) as api:
            api.post("/api/v1/models", json={"name": "m", "version": "v1", "task": "binary"})
            url = "/api/v1/models/m/versions/v1/predictions"
            row = {"id": "a", "prediction": 0.5}
            assert api.post(url, json={"rows": [row] * 6}).status_code == 413
            assert api.post(url, content=b"x" * 3000,
                            headers={"Content-Type": "application/json"}).status_code == 413
            bomb = gzip.compress(b" " * 100_000)
            assert api.post(url, content=bomb, headers={"Content-Type": "application/json",
                                                        "Content-Encoding": "gzip"}).status_code == 413
            r = api.post(url, json={"rows": [{"id": "a", "prediction": 0.5, "s": "x" * 11}]})
            assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "rows", 0, "s"]
            wide = {f"f{i}": 1 for i in range(20)} | row
            assert api.post(url, json={"rows": [wide]}).status_code == 422

    def test_keys_and_scopes(self, server_factory, tmp_path, capsys):
        db = tmp_path / "auth.duckdb"
        keys = {}
        for scope in ("ingest", "read", "admin"):
            assert main(["keys", "create", "--db", str(db), "--scope", scope]) == 0
            keys[scope] = capsys.readouterr().out.strip()
            assert keys[scope].startswith("mlp_") and "\n" not in keys[scope]
        server = server_factory(db=db)

        def call(method, path, key=None, **kw):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return httpx.request(method, server.url + path, headers=headers, **kw).status_code

        body = {"name": "m", "version": "v1", "task": "binary"}
        assert call("GET", "/healthz") == 200 and call("GET", "/readyz") == 200
        assert call("GET", "/api/v1/models") == 401
        assert call("GET", "/api/v1/models", "mlp_00000000_wrong") == 401
        assert call("POST", "/api/v1/models", keys["read"], json=body) == 403
        assert call("POST", "/api/v1/models", keys["ingest"], json=body) == 200
        assert call("GET", "/api/v1/models", keys["ingest"]) == 403
        assert call("GET", "/api/v1/models", keys["read"]) == 200
        assert call("GET", "/api/v1/keys", keys["read"]) == 403
        r = httpx.post(server.url + "/api/v1/keys", json={"scope": "read"},
                       headers={"Authorization": f"Bearer {keys['admin']}"})
        new = r.json()
        assert call("GET", "/api/v1/models", new["key"]) == 200
        assert call("DELETE", f"/api/v1/keys/{new['key_id']}", keys["admin"]) == 200
        assert call("GET", "/api/v1/models", new["key"]) == 401

        import mlpulse

        with mlpulse.connect(server.url, api_key=keys["ingest"], spool_dir=tmp_path / "sp") as p:
            model = p.model("m", version="v1")
            report = model.log_batch({"id": ["a"], "prediction": [0.4]})
            assert report.stored == 1
            with pytest.raises(mlpulse.AuthenticationError):
                model.metrics(["count"])


class TestServeCommand:
    """``mlpulse serve`` refuses an open non-loopback bind; health and docs are served."""

    def test_refuses_public_bind_without_keys(self, tmp_path, capsys):
        assert main(["serve", "--db", str(tmp_path / "x.duckdb"), "--host", "0.0.0.0"]) == 2
        assert "--allow-unauthenticated" in capsys.readouterr().err

    def test_docs_and_openapi(self, server):
        assert httpx.get(server.url + "/docs").status_code == 200
        schema = httpx.get(server.url + "/openapi.json").json()
        assert "/api/v1/models/{name}/versions/{version}/predictions" in schema["paths"]
        r = httpx.get(server.url + "/healthz")
        assert r.json()["status"] == "ok" and r.headers["x-request-id"]
