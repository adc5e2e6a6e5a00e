"""The critical probe of issue 8 against a real server, with only an ingest key.

A reference upload whose column name closes the identifier's quote and appends statements
(write a file, drop another model's raw table, plant an admin key) must be refused with a
4xx or stored under that literal name; nothing else may run. Case collisions and names that
could never be used in a URL answer 422, never 500.
"""

from __future__ import annotations

import io

import httpx
import pyarrow as pa

import mlpulse
from mlpulse.cli import main

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def arrow_body(columns: dict) -> bytes:
    table = pa.table(columns)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_reference_injection_with_an_ingest_key(server_factory, tmp_path, capsys):
    db = tmp_path / "inj.duckdb"
    keys = {}
    for scope in ("ingest", "read"):
        assert main(["keys", "create", "--db", str(db), "--scope", scope]) == 0
        keys[scope] = capsys.readouterr().out.strip()
    server = server_factory(db=db)
    api = httpx.Client(
        base_url=server.url + "/api/v1",
        headers={"Authorization": f"Bearer {keys['ingest']}"},
        timeout=30,
    )
    read = {"Authorization": f"Bearer {keys['read']}"}

    def register(name):
        body = {"name": name, "version": "v1", "task": "binary"}
        assert api.post("/models", json=body).status_code == 200

    def put_reference(name, columns):
        return api.put(
            f"/models/{name}/versions/v1/reference",
            content=arrow_body(columns),
            headers={"Content-Type": ARROW_STREAM},
        )

    register("victim")  # model 1: raw_1
    row = {"id": "r1", "prediction": 0.3, "x": 1.0}
    r = api.post("/models/victim/versions/v1/predictions", json={"rows": [row]})
    assert r.status_code == 200 and r.json()["stored"] == 1
    register("target")
    assert put_reference("target", {"x": [1.0], "prediction": [0.5]}).status_code == 200

    pwned = tmp_path / "pwned.csv"
    statements = (
        f"DOUBLE; COPY (SELECT 1) TO '{pwned}'; DROP TABLE raw_1; "
        "INSERT INTO api_keys VALUES ('deadbeef', 'h', 'admin', NULL, now(), NULL); --"
    )
    # the probe's exact shape (a reserved "__" name): refused with a clear 422
    attack = f'__x" {statements}'
    r = put_reference("target", {"x": [1.0], "prediction": [0.5], attack: [1.0]})
    assert r.status_code == 422, r.text
    assert "reserved" in r.json()["detail"] and "target" in r.json()["detail"]
    # the same without "__": stored as a literal column name, nothing else runs
    literal = f'y" {statements}'
    r = put_reference("target", {"x": [1.0], "prediction": [0.5], literal: [2.0]})
    assert r.status_code == 200, r.text
    assert literal in r.json()["features"]

    # case collisions and unusable names: 422 naming both, never a 500
    r = api.post(
        "/models/victim/versions/v1/predictions",
        json={"rows": [{"id": "r2", "prediction": 0.5, "Age": 1, "age": 2}]},
    )
    assert r.status_code == 422, r.text
    assert "'age' and 'Age'" in r.json()["detail"] or "'Age' and 'age'" in r.json()["detail"]
    r = api.post(
        "/models/victim/versions/v1/predictions", json={"rows": [{**row, "id": "r3", "X": 1}]}
    )
    assert r.status_code == 422 and "differ only in case" in r.json()["detail"]
    assert put_reference("target", {"X": [1.0], "prediction": [0.5]}).status_code == 422
    for body in (
        {"name": "..", "task": "binary"},
        {"name": "m", "version": "all", "task": "binary"},
    ):
        r = api.post("/models", json=body)
        assert r.status_code == 422, r.text

    # the victim's data, the keys and the host are intact
    r = httpx.get(
        f"{server.url}/api/v1/models/victim/versions/v1/metrics",
        params={"metrics": "count", "start": "2000-01-01", "end": "2100-01-01"},
        headers=read,
    )
    assert r.status_code == 200, r.text
    assert not pwned.exists()
    api.close()
    server.stop()  # releases the database file
    with mlpulse.connect(str(db)) as pulse:
        assert pulse.store.fetch_one("SELECT count(*) FROM raw_1") == (1,)
        assert pulse.store.fetch_one("SELECT count(*) FROM api_keys") == (2,)
        assert literal in pulse.store.table_columns("reference_2")
        assert (
            pulse.model("victim")
            .metrics(["count"], start="2000-01-01", end="2100-01-01")["n"]
            .iloc[0]
            == 1
        )
