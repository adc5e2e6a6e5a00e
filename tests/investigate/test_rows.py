"""Drill-down rows: filters, ids, quarantined rows with reasons, cursors, pages over HTTP, and
hostile column names and values (quoted identifiers, parameters, clear errors)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

import mlpulse
from mlpulse.errors import ConfigError
from mlpulse.server import ServerConfig, create_app

T0 = pd.Timestamp("2026-02-01T00:00:00Z")
W = {"start": T0, "end": T0 + pd.Timedelta("2h")}
HOSTILE = 'a"b; DROP TABLE models; --'
HTML = "<script>alert('x')</script>"


def frame(n: int = 2500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "id": [f"r{i:05d}" for i in range(n)],
        "timestamp": T0 + pd.to_timedelta(np.sort(rng.uniform(0, 7000, n)), unit="s"),
        "score": rng.uniform(size=n),
        "age": rng.integers(18, 90, n).astype(float),
        "channel": rng.choice(["android", "ios", "web"], n),
        HOSTILE: rng.choice(["x'y", HTML], n),
    })  # fmt: skip


def fill(pulse) -> mlpulse.client.pulse.Model:
    rows = frame()
    model = pulse.model("m", task="binary", prediction="score", label="label", segments=["channel"])
    model.log_batch(rows.assign(trace_id=[f"t{i}" for i in range(len(rows))]), id="id", timestamp="timestamp")
    model.log_feedback_batch(pd.DataFrame({"id": rows.id[:100], "label": 1}), id="id", label="label")
    bad = pd.DataFrame({"id": ["bad1"], "timestamp": [T0], "score": ["oops"], "channel": ["android"]})
    model.log_batch(bad, id="id", timestamp="timestamp")
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Iterator[dict]:
    local = mlpulse.connect(":memory:")
    app = create_app(ServerConfig(db=":memory:"))
    with TestClient(app) as client:
        remote = mlpulse.connect("http://testserver", transport=client._transport,
                                 spool_dir=tmp_path_factory.mktemp("spool"), compression=None)  # fmt: skip
        yield {"embedded": fill(local), "http": fill(remote), "client": client}
        remote.close()
    local.close()


@pytest.fixture(params=["embedded", "http"])
def model(request, models):
    return models[request.param]


class TestRows:
    """What the rows are and how they are chosen."""

    def test_where_and_columns(self, model) -> None:
        out = model.rows(**W, where={"channel": "android"}, limit=50)
        want = frame()
        want = want[want.channel == "android"].head(50)
        assert out.id.tolist() == want.id.tolist()
        assert list(out.columns[:8]) == ["id", "version", "timestamp", "score", "label", "label_timestamp",
                                         "latency_ms", "trace_id"]  # fmt: skip
        assert np.allclose(out.score, want.score) and out.trace_id.iloc[0].startswith("t")
        assert str(out.timestamp.dt.tz) == "UTC" and out.label.notna().sum() == want.id.isin(
            [f"r{i:05d}" for i in range(100)]).sum()  # fmt: skip

    def test_ids_lists_and_none(self, model) -> None:
        out = model.rows(**W, ids=["r00003", "r00001", "nope"])
        assert out.id.tolist() == ["r00001", "r00003"]
        both = model.rows(**W, where={"channel": ["ios", "web"], "age": 30}, limit=10_000)
        assert set(both.channel) <= {"ios", "web"} and (both.age == 30).all() and len(both)
        assert model.rows(**W, where={"label": None}, limit=5).label.isna().all()

    def test_quarantined_rows_follow_with_reason(self, model) -> None:
        out = model.rows(T0, "now", ids=["bad1", "r00000"], include_quarantined=True)
        assert out.id.tolist() == ["r00000", "bad1"]
        assert pd.isna(out.quarantine_reason.iloc[0]) and "not a number" in out.quarantine_reason.iloc[1]
        assert '"oops"' in out.payload.iloc[1]
        assert model.rows(T0, "now", where={"channel": "ios"}, ids=["bad1"], include_quarantined=True).empty

    def test_hostile_names_and_values(self, model) -> None:
        out = model.rows(**W, where={HOSTILE: HTML}, limit=10_000)
        assert len(out) and (out[HOSTILE] == HTML).all()
        assert model.rows(**W, where={HOSTILE: "x'y"}, limit=3)[HOSTILE].tolist() == ["x'y"] * 3
        assert model.rows(**W, where={"channel": "android' OR 1=1 --"}).empty


class TestPages:
    """Cursors continue exactly; the HTTP client follows pages up to the limit."""

    def test_cursor_continues(self, model) -> None:
        first = model.rows(**W, limit=7)
        second = model.rows(**W, limit=7, cursor=first.attrs["next"])
        whole = model.rows(**W, limit=14)
        assert first.id.tolist() + second.id.tolist() == whole.id.tolist()

    def test_more_than_a_page(self, models) -> None:
        local = models["embedded"].rows(**W, limit=2200)
        remote = models["http"].rows(**W, limit=2200)
        assert len(remote) == 2200 and remote.id.tolist() == local.id.tolist()
        assert remote.attrs["next"] and models["http"].rows(**W, limit=5000).attrs["next"] is None

    def test_json_page(self, models) -> None:
        body = {"start": T0.isoformat(), "end": (T0 + pd.Timedelta("2h")).isoformat(), "limit": 2}
        answer = models["client"].post("/api/v1/models/m/versions/v1/rows", json=body).json()
        assert len(answer["rows"]) == 2 and answer["next"] and answer["columns"][0] == "id"


class TestErrors:
    """Bad arguments name the model and column; over HTTP a 400/422, never a 500."""

    def test_unknown_column(self, model) -> None:
        with pytest.raises(ConfigError, match=r"model 'm': where: no column 'nope'"):
            model.rows(**W, where={"nope": 1})
        with pytest.raises(ConfigError, match="numeric"):
            model.rows(**W, where={"age": "thirty"})
        with pytest.raises(ConfigError, match="cursor"):
            model.rows(**W, cursor="not-a-cursor")
        with pytest.raises(ConfigError, match="limit"):
            model.rows(**W, limit=0)

    def test_http_status(self, models) -> None:
        client = models["client"]
        for body in ({"where": {"nope": 1}}, {"where": {HTML: 1}}, {"cursor": "e30="}, {"limit": 5000}):
            response = client.post("/api/v1/models/m/versions/v1/rows", json=body)
            assert response.status_code in (400, 422), (body, response.text)
        for path, body in (("segments", {"metric": "roc_auc"}), ("slices", {"max_conditions": 9})):
            response = client.post(f"/api/v1/models/m/versions/v1/{path}", json=body)
            assert response.status_code in (400, 422), response.text
            assert "model 'm'" in response.json()["detail"]
