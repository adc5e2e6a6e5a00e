"""Aligned windows (issue 11): a relative start is moved down to a whole multiple of the step
since the epoch (UTC), once, in ``Scope``; ``align=False`` keeps it as given; absolute starts
and step-less queries are never moved. Checked in process and over HTTP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

import mlpulse
from mlpulse._time import DAY, HOUR, MINUTE, aligned_start, from_micros, is_relative, to_micros
from mlpulse.engine.scope import Scope
from mlpulse.schema import ModelSpec
from mlpulse.server import ServerConfig, create_app

SPEC = ModelSpec(name="m", task="binary")


def scope(**kw) -> Scope:
    return Scope(SPEC, "v1", ["v1"], **kw)


class TestScope:
    @pytest.mark.parametrize("step, width", [("1h", HOUR), ("15m", 15 * MINUTE), ("1d", DAY),
                                             ("90s", 90 * 1_000_000), ("7d", 7 * DAY)])
    def test_relative_start_on_step_multiples(self, step, width) -> None:
        s = scope(start="-3d", end="now", step=step)
        starts = np.array([lo for lo, _ in s.bounds])
        assert (starts % width == 0).all()
        assert (np.diff(starts) == width).all()
        assert s.span == (s.bounds[0][0], s.bounds[-1][1])
        # the first window holds the asked start; the last ends at now (partial)
        now = to_micros("now")
        assert s.bounds[0][0] <= now - 3 * DAY < s.bounds[0][0] + width
        assert 0 <= now - s.bounds[-1][1] < 60 * 1_000_000
        assert s.bounds[-1][1] - s.bounds[-1][0] <= width

    def test_day_windows_start_at_utc_midnight(self) -> None:
        first = from_micros(scope(start="-2d", step="1d").bounds[0][0])
        assert (first.hour, first.minute, first.second, first.microsecond) == (0, 0, 0, 0)

    def test_align_false_keeps_the_start(self) -> None:
        s = scope(start="-3h", step="1h", align=False)
        lo, hi = s.bounds[0]
        assert hi - lo == HOUR and len(s.bounds) == 3
        assert abs(lo - (to_micros("now") - 3 * HOUR)) < 60 * 1_000_000

    @pytest.mark.parametrize("start", ["2026-01-01T00:30:00Z", pd.Timestamp("2026-01-01T00:30Z"),
                                       1767227400.0])
    def test_absolute_start_not_moved(self, start) -> None:
        s = scope(start=start, end="2026-01-01T03:00Z", step="1h")
        assert from_micros(s.bounds[0][0]).minute == 30 and len(s.bounds) == 3

    def test_no_step_not_moved(self) -> None:
        s = scope(start="-90m", end="now")
        assert len(s.bounds) == 1 and s.bounds == [s.span]
        assert s.span[0] % MINUTE != 0 or s.span[0] % HOUR != 0  # not moved to a boundary

    def test_helpers(self) -> None:
        assert is_relative(" -5m ") and is_relative("+1h") and not is_relative("-1x")
        assert aligned_start("-1h", 5 * HOUR + 7, "1h", align=False) == 5 * HOUR + 7
        assert aligned_start("-1h", 5 * HOUR + 7, None) == 5 * HOUR + 7
        assert aligned_start("-1h", -HOUR - 7, "1h") == -2 * HOUR  # before 1970 too


@pytest.fixture(scope="module")
def transports(tmp_path_factory):
    """A model with rows over the last six hours, on both transports."""
    rng = np.random.default_rng(0)
    now = pd.Timestamp.now(tz="UTC")
    rows = pd.DataFrame({
        "id": [f"r{i}" for i in range(600)],
        "score": rng.uniform(size=600),
        "x": rng.normal(size=600),
        "timestamp": now - pd.to_timedelta(rng.uniform(60, 6 * 3600, 600), unit="s"),
    })
    ref = pd.DataFrame({"x": rng.normal(size=300), "score": rng.uniform(size=300)})
    ref["label"] = (rng.uniform(size=300) < ref.score).astype(int)
    local = mlpulse.connect(":memory:")
    app = create_app(ServerConfig(db=":memory:"))
    with TestClient(app) as client:
        remote = mlpulse.connect("http://testserver", transport=client._transport,
                                 spool_dir=tmp_path_factory.mktemp("spool"), compression=None)
        models = {}
        for name, pulse in (("embedded", local), ("http", remote)):
            model = pulse.model("m", task="binary", prediction="score", label="label",
                                reference=ref)
            model.log_batch(rows)
            models[name] = model
        yield models
        remote.close()
    local.close()


@pytest.mark.parametrize("transport", ["embedded", "http"])
class TestQueries:
    """Every windowed query takes ``align``, in process and over HTTP."""

    CALLS = {
        "metrics": lambda m, **kw: m.metrics(["count"], **kw),
        "summary": lambda m, **kw: m.summary(**kw),
        "drift": lambda m, **kw: m.drift(**kw).windows,
        "quality": lambda m, **kw: m.quality(**kw).windows,
    }

    @pytest.mark.parametrize("query", list(CALLS))
    def test_aligned_by_default(self, transports, transport, query) -> None:
        call = self.CALLS[query]
        model = transports[transport]
        aligned = call(model, start="-6h", step="1h")
        starts = pd.DatetimeIndex(aligned.window_start.unique())
        assert len(starts) == 7 and ((starts.minute == 0) & (starts.second == 0)).all()
        assert (starts.microsecond == 0).all()
        loose = call(model, start="-6h", step="1h", align=False)
        starts = pd.DatetimeIndex(loose.window_start.unique())
        assert len(starts) == 6 and (starts.microsecond != 0).any()
        if query in ("metrics", "drift"):
            assert aligned.n.sum() == loose.n.sum() == 600

    def test_estimate(self, transports, transport) -> None:
        model = transports[transport]
        frame = model.estimate("accuracy", start="-6h", step="2h")
        assert (pd.DatetimeIndex(frame.window_start).hour % 2 == 0).all()
        assert len(model.estimate("accuracy", start="-6h", step="2h", align=False)) == 3


def test_route_parameter(transports) -> None:
    """``?align=false`` on the GET routes, ``"align": false`` in the POST bodies."""
    app = create_app(ServerConfig(db=":memory:"))
    with TestClient(app) as client:
        client.post("/api/v1/models", json={"name": "m", "task": "binary", "prediction": "score"})
        base = "/api/v1/models/m/versions/v1"
        r = client.get(f"{base}/metrics", params={"start": "-3h", "step": "1h", "align": "false",
                                                 "metrics": "count"})
        assert r.status_code == 200, r.text
        r = client.get(f"{base}/metrics", params={"start": "-3h", "step": "1h", "align": "maybe"})
        assert r.status_code == 422
        r = client.post(f"{base}/quality", json={"start": "-3h", "step": "1h", "align": False})
        assert r.status_code == 200, r.text
