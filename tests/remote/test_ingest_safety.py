"""Ingest over HTTP against a real server: every key of every row is stored, times outside
the accepted range are quarantined with the likely unit, deeply nested JSON is a 400, and
labels held for unknown ids are bounded."""

from __future__ import annotations

import json

import httpx
import pytest

import mlpulse

NDJSON = "application/x-ndjson"

ROWS = [
    {"id": "a", "score": 0.1, "timestamp": "2026-01-05T10:00:00Z"},
    {
        "id": "b",
        "score": 0.2,
        "timestamp": "2026-01-05T11:00:00Z",
        "age": 41,
        "latency_ms": 8.0,
        "trace_id": "t-b",
    },
    {
        "id": "c",
        "score": 0.3,
        "timestamp": "2026-01-05T12:00:00Z",
        "plan": "pro",
        "latency_ms": 8.0,
    },
]
WINDOW = {"start": "2026-01-05T10:00:00Z", "end": "2026-01-05T13:00:00Z"}


def register(client: httpx.Client, name: str) -> None:
    r = client.post(
        "/api/v1/models",
        json={"name": name, "version": "v1", "task": "binary", "prediction": "score", "label": "y"},
    )
    assert r.status_code == 200, r.text


@pytest.fixture
def api(server, model_name):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        register(client, model_name)
        yield client


def post_rows(api, name: str, rows: list[dict], kind: str = "json", path: str | None = None):
    path = path or f"/api/v1/models/{name}/versions/v1/predictions"
    if kind == "json":
        return api.post(path, json={"rows": rows})
    body = "\n".join(json.dumps(row) for row in rows).encode()
    return api.post(path, content=body, headers={"Content-Type": NDJSON})


def quarantine(api, name: str) -> list[dict]:
    r = api.get(f"/api/v1/models/{name}/quarantine")
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def balanced(reply: dict, stored: int, quarantined: int) -> None:
    assert reply["received"] == reply["stored"] + reply["quarantined"]
    assert (reply["stored"], reply["quarantined"]) == (stored, quarantined), reply


class TestRowsWithDifferentKeys:
    """Keys missing from the first row are kept: features, latency, trace id and event time."""

    @pytest.mark.parametrize("kind", ["json", "ndjson"])
    def test_every_key_is_stored(self, api, model_name, kind):
        r = post_rows(api, model_name, ROWS, kind)
        assert r.status_code == 200, r.text
        balanced(r.json(), 3, 0)
        base = f"/api/v1/models/{model_name}/versions/v1"
        summary = api.get(f"{base}/summary", params=WINDOW).json()
        counts = {row["column"]: row["count"] for row in summary["rows"]}
        assert counts == {"age": 1, "plan": 1}
        metrics = api.get(
            f"{base}/metrics", params={**WINDOW, "step": "1h", "metrics": "count,latency_p50"}
        ).json()
        # one row per hour: each row was stored at its own time, not at arrival
        assert [row["n"] for row in metrics["rows"]] == [1, 1, 1]
        assert [row["latency_p50"] for row in metrics["rows"]][1:] == [8.0, 8.0]

    @pytest.mark.parametrize("kind", ["json", "ndjson"])
    def test_first_row_without_a_timestamp(self, api, model_name, kind):
        rows = [{"id": "x", "score": 0.5}, *ROWS[1:]]
        r = post_rows(api, model_name, rows, kind)
        balanced(r.json(), 2, 1)
        [row] = quarantine(api, model_name)
        assert row["id"] == "x" and "missing timestamp" in row["reason"]
        metrics = api.get(
            f"/api/v1/models/{model_name}/versions/v1/metrics",
            params={**WINDOW, "step": "1h", "metrics": "count"},
        ).json()
        assert [row["n"] for row in metrics["rows"]] == [0, 1, 1]

    def test_raw_rows_hold_every_value(self, server_factory, tmp_path):
        """Checked in the database itself once the server has stopped."""
        db = tmp_path / "keys.duckdb"
        server = server_factory(db=db)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            register(client, "keys")
            for kind, suffix in (("json", "j"), ("ndjson", "n")):
                rows = [{**row, "id": row["id"] + suffix} for row in ROWS]
                balanced(post_rows(client, "keys", rows, kind).json(), 3, 0)
        server.stop()
        with mlpulse.connect(str(db)) as pulse:
            spec = pulse.model("keys").spec
            frame = (
                pulse.store.fetch_arrow(f"SELECT * FROM raw_{spec.model_id} ORDER BY __id")
                .to_pandas()
                .set_index("__id")
            )
        for suffix in "jn":
            assert frame.loc["b" + suffix, "age"] == 41
            assert frame.loc["b" + suffix, "__trace_id"] == "t-b"
            assert frame.loc["b" + suffix, "__latency_ms"] == 8.0
            assert frame.loc["c" + suffix, "plan"] == "pro"
            assert str(frame.loc["c" + suffix, "__ts"]) == "2026-01-05 12:00:00"


class TestTimestampRange:
    """A time outside the accepted range is quarantined with the reason, never stored."""

    @pytest.mark.parametrize(
        ("value", "words"),
        [
            (1_767_607_200_000, "looks like milliseconds"),
            (1_767_607_200_000_000_000, "looks like nanoseconds"),
            (1e13, "outside the accepted range"),
            (-1e13, "outside the accepted range"),
            ("+275760-09-13T00:00:00Z", "outside the accepted range"),
            ("9999-12-31T23:59:59Z", "outside the accepted range"),
        ],
    )
    @pytest.mark.parametrize("kind", ["json", "ndjson"])
    def test_out_of_range(self, api, model_name, value, words, kind):
        rows = [
            {"id": "good", "score": 0.5, "timestamp": 1_767_607_200},
            {"id": "bad", "score": 0.5, "timestamp": value},
        ]
        r = post_rows(api, model_name, rows, kind)
        assert r.status_code == 200, r.text
        balanced(r.json(), 1, 1)
        [row] = quarantine(api, model_name)
        assert row["id"] == "bad" and words in row["reason"]
        assert "'timestamp'" in row["reason"]


class TestDeepNesting:
    """Deeply nested JSON is a 400 before anything is stored (never a 500)."""

    DEEP = 100_000

    @pytest.mark.parametrize(
        ("body", "ctype"),
        [
            (
                '{"rows": [{"id": "a", "score": 0.5, "f": ' + "[" * DEEP + "]" * DEEP + "}]}",
                "application/json",
            ),
            ("[" * DEEP + "]" * DEEP, "application/json"),
            ('{"rows": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}", "application/json"),
            ('{"id": "a", "score": 0.5}\n' + "[" * DEEP + "]" * DEEP, NDJSON),
        ],
        ids=["feature", "top level", "objects", "ndjson line"],
    )
    def test_rejected(self, api, model_name, body, ctype):
        r = api.post(
            f"/api/v1/models/{model_name}/versions/v1/predictions",
            content=body.encode(),
            headers={"Content-Type": ctype},
        )
        assert r.status_code == 400, r.text
        assert "nested too deeply" in r.json()["detail"]
        metrics = api.get(
            f"/api/v1/models/{model_name}/versions/v1/metrics",
            params={"metrics": "count", "start": "2000-01-01", "end": "2100-01-01"},
        ).json()
        assert metrics["rows"][0]["n"] == 0

    def test_feedback_and_registration(self, api, model_name):
        deep = "[" * self.DEEP + "]" * self.DEEP
        r = api.post(
            f"/api/v1/models/{model_name}/feedback",
            content=deep.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400, r.text
        r = api.post(
            "/api/v1/models", content=deep.encode(), headers={"Content-Type": "application/json"}
        )
        assert 400 <= r.status_code < 500, r.text

    def test_nested_feature_value_is_422(self, api, model_name):
        rows = [{"id": "a", "score": 0.5, "f": json.loads("[" * 500 + "]" * 500)}]
        r = post_rows(api, model_name, rows)
        assert r.status_code == 422, r.text
        assert len(r.json()["detail"]) < 400


class TestHeldLabels:
    """Labels for ids with no prediction are held up to the server's cap."""

    def test_cap(self, server_factory, monkeypatch):
        monkeypatch.setenv("MLPULSE_MAX_HELD_LABELS", "2")
        server = server_factory()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            register(client, "held")
            labels = [{"id": f"u{i}", "y": 1} for i in range(3)]
            r = post_rows(client, "held", labels, path="/api/v1/models/held/feedback")
            assert r.status_code == 200, r.text
            reply = r.json()
            balanced(reply, 2, 1)
            assert reply["held"] == 2
            [row] = quarantine(client, "held")
            assert row["id"] == "u2" and row["kind"] == "feedback"
            assert "too many held labels for unknown ids (cap 2" in row["reason"]


class TestBothTransports:
    """``log`` calls and ``log_batch(list of dicts)`` with different keys keep every key, in
    process and through a real server."""

    def test_log_with_different_feature_keys(self, transport, model_name):
        model = transport.model(
            model_name, version="v1", task="binary", prediction="score", label="y"
        )
        model.log("r1", {"age": 30}, prediction=0.1, timestamp="2026-01-05T10:00:00Z")
        model.log(
            "r2", {"plan": "pro"}, prediction=0.2, timestamp="2026-01-05T11:00:00Z", latency_ms=4.0
        )
        model.log("r3", {"age": 50, "city": "Lyon"}, prediction=0.3, timestamp=1_767_610_800 + 3600)
        assert transport.flush(30)
        summary = model.summary(**WINDOW).set_index("column")
        assert summary["count"].to_dict() == {"age": 2, "plan": 1, "city": 1}
        counts = model.metrics(["count", "latency_p50"], step="1h", **WINDOW)
        assert counts["n"].tolist() == [1, 1, 1]
        assert counts["latency_p50"].iloc[1] == 4.0

    def test_log_batch_list_of_dicts(self, transport, model_name):
        model = transport.model(
            model_name, version="v1", task="binary", prediction="score", label="y"
        )
        report = model.log_batch(ROWS, id="id")
        assert (report.received, report.stored + report.pending, report.quarantined) == (3, 3, 0)
        assert transport.flush(30)
        summary = model.summary(**WINDOW).set_index("column")
        assert summary["count"].to_dict() == {"age": 1, "plan": 1}
        assert model.metrics(["count"], step="1h", **WINDOW)["n"].tolist() == [1, 1, 1]
