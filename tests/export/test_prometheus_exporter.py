"""``GET /metrics`` and the exporter behind it: every series of DESIGN.md with the values the
service (and scikit-learn) gives for the same window, valid under prometheus-client's strict
OpenMetrics parser and its text parser whatever the names hold, one broken model never
breaking a scrape, the read-key rule, and figures kept between scrapes."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from mlpulse._time import from_micros, now_micros
from mlpulse.errors import ConfigError
from mlpulse.export import prometheus
from mlpulse.export.prometheus import MetricsExporter, encode, model_families, parse_windows
from mlpulse.server import ServerConfig, create_app
from mlpulse.server.keys import KeyStore
from mlpulse.service import Service

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
MINUTE = 60_000_000
#: the series DESIGN.md names (binding)
DESIGN_SERIES = {
    "mlpulse_metric": {"model", "version", "name", "window"},
    "mlpulse_estimate": {"model", "version", "name", "window"},
    "mlpulse_predictions_total": {"model", "version"},
    "mlpulse_labels_total": {"model", "version"},
    "mlpulse_quarantined_total": {"model"},
    "mlpulse_latency_seconds": {"model", "version", "quantile"},
    "mlpulse_drift_statistic": {"model", "version", "column", "method"},
    "mlpulse_drift_detected": {"model", "version", "column"},
    "mlpulse_quality_violations": {"model", "version", "column", "rule"},
    "mlpulse_alert_firing": {"rule", "model"},
}


def rows(n: int, seed: int, now: int, *, within: int, prefix: str = "r") -> pd.DataFrame:
    """Binary predictions at random instants of ``[now - within, now - 1 min)``."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, size=n)
    score = np.clip(0.3 * label + rng.uniform(0, 0.7, size=n), 0, 1)
    ts = now - MINUTE - rng.integers(0, within - MINUTE, size=n)
    return pd.DataFrame({
        "id": [f"{prefix}{i}" for i in range(n)],
        "timestamp": pd.to_datetime(ts, unit="us", utc=True),
        "score": score,
        "y": label,
        "plan": rng.choice(["free", "pro"], size=n),
        "age": rng.normal(40, 10, size=n),
        "latency_ms": rng.lognormal(2.0, 0.5, size=n),
    })  # fmt: skip


def log(service: Service, model: str, frame: pd.DataFrame, labeled: int | None = None) -> None:
    service.log_batch(model, "v1", frame.drop(columns=["y"]))
    feedback = frame[["id", "y"]].iloc[: len(frame) if labeled is None else labeled]
    service.log_feedback_batch(model, feedback, label="y")


@pytest.fixture
def fleet() -> Iterator[tuple[Service, int, pd.DataFrame]]:
    """``churn``: binary with a reference, 300 labeled rows in the last 50 minutes and 200
    (labeled) 2-5 hours ago, 5 quarantined rows and 3 held labels; ``fresh``: binary, no
    reference, no labels; ``price``: regression."""
    service = Service.open(":memory:")
    now = now_micros()
    reference = rows(1000, 1, now, within=60 * MINUTE).drop(columns=["id", "timestamp", "latency_ms"])
    service.register("churn", "v1", task="binary", reference=reference, prediction="score",
                     label="y", recommended_rules=False)  # fmt: skip
    recent = rows(300, 2, now, within=50 * MINUTE)
    older = rows(200, 3, now - 2 * 60 * MINUTE, within=3 * 60 * MINUTE, prefix="o")
    log(service, "churn", pd.concat([recent, older], ignore_index=True))
    bad = rows(5, 4, now, within=30 * MINUTE, prefix="bad").assign(score="not a number")
    service.log_batch("churn", "v1", bad.drop(columns=["y"]).astype({"score": object}))
    service.log_feedback_batch("churn", pd.DataFrame({"id": ["h1", "h2", "h3"], "y": [1, 0, 1]}),
                               label="y")  # fmt: skip
    service.register("fresh", "v1", task="binary", prediction="score", label="y")
    service.log_batch("fresh", "v1", rows(50, 5, now, within=20 * MINUTE).drop(columns=["y"]))
    service.register("price", "v1", task="regression", prediction="score", label="y")
    log(service, "price", rows(80, 6, now, within=40 * MINUTE))
    yield service, now, pd.concat([recent, older], ignore_index=True)
    service.close()


def samples(text: str, openmetrics: bool = True) -> dict[tuple[str, frozenset], float]:
    """Parse an exposition (strictly) into {(sample name, labels): value}."""
    parse = parse_openmetrics if openmetrics else parse_text
    out: dict[tuple[str, frozenset], float] = {}
    for family in parse(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(found: dict, name: str, /, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def series(found: dict, name: str, /, **labels: str) -> dict[frozenset, float]:
    """Samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return {k[1]: v for k, v in found.items() if k[0] == name and want <= k[1]}


def scrape(service: Service, windows=("1h", "24h"), now: int | None = None, **kw) -> dict:
    body, _ = encode(model_families(service, parse_windows(windows), now=now, **kw), OPENMETRICS)
    return samples(body.decode())


class TestValues:
    """Each series carries what the service answers for the same window and instant."""

    def test_metrics_equal_service_and_sklearn(self, fleet) -> None:
        service, now, frame = fleet
        found = scrape(service, now=now)
        for window, length in (("1h", 60 * MINUTE), ("24h", 24 * 60 * MINUTE)):
            start, end = from_micros(now - length), from_micros(now)
            expected = service.metrics("churn", "v1", None, start=start, end=end).iloc[0]
            got = series(found, "mlpulse_metric", model="churn", version="v1", window=window)
            names = {dict(k)["name"]: v for k, v in got.items()}
            assert set(names) == {m for m in expected.index[4:] if not math.isnan(expected[m])}
            for name, v in names.items():
                assert v == pytest.approx(float(expected[name]), rel=1e-12), (window, name)
            # and independently: scikit-learn on the rows of the window
            inside = frame[frame["timestamp"] >= pd.Timestamp(start)]
            assert names["count"] == len(inside)
            assert names["accuracy"] == pytest.approx(
                skm.accuracy_score(inside["y"], inside["score"] >= 0.5), abs=1e-12)  # fmt: skip
        assert value(found, "mlpulse_metric", model="churn", version="v1", name="count",
                     window="1h") == 300  # fmt: skip

    def test_latency_quantiles_in_seconds(self, fleet) -> None:
        service, now, _ = fleet
        found = scrape(service, now=now)
        expected = service.metrics("churn", "v1", ["latency_p50", "latency_p95", "latency_p99"],
                                   start=from_micros(now - 60 * MINUTE), end=from_micros(now))  # fmt: skip
        for quantile, name in (("0.5", "latency_p50"), ("0.95", "latency_p95"), ("0.99", "latency_p99")):
            got = value(found, "mlpulse_latency_seconds", model="churn", version="v1", quantile=quantile)
            assert got == pytest.approx(expected[name].item() / 1000.0, rel=1e-12)
            assert 0.001 < got < 0.2  # lognormal(2, 0.5) milliseconds, in seconds

    def test_totals_quarantine_held_labels(self, fleet) -> None:
        service, now, _ = fleet
        found = scrape(service, now=now)
        assert value(found, "mlpulse_predictions_total", model="churn", version="v1") == 500
        assert value(found, "mlpulse_labels_total", model="churn", version="v1") == 500
        assert value(found, "mlpulse_predictions_total", model="fresh", version="v1") == 50
        assert value(found, "mlpulse_labels_total", model="fresh", version="v1") == 0
        assert value(found, "mlpulse_quarantined_total", model="churn") == len(
            service.quarantined("churn"))  # fmt: skip
        assert value(found, "mlpulse_quarantined_total", model="churn") == 5
        assert value(found, "mlpulse_server_held_labels", model="churn") == 3

    def test_estimates_drift_quality_over_the_shortest_window(self, fleet) -> None:
        service, now, _ = fleet
        found = scrape(service, now=now)
        start, end = from_micros(now - 60 * MINUTE), from_micros(now)
        estimate = service.estimate("churn", "v1", None, start=start, end=end).iloc[0]
        got = series(found, "mlpulse_estimate", model="churn", window="1h")
        assert {dict(k)["name"]: v for k, v in got.items()} == pytest.approx(
            {m: float(estimate[m]) for m in estimate.index[4:]
             if m not in ("estimate_warning", "estimate_reason")}, rel=1e-12)  # fmt: skip
        drift = service.drift("churn", "v1", start=start, end=end).to_pandas()
        assert len(drift) >= 3
        # KLL sketches compact at random: two sketch-mode drift calls agree within the
        # sketch's error, not exactly, so the verdict is compared where it is clear-cut
        for r in drift.itertuples():
            assert value(found, "mlpulse_drift_statistic", model="churn", version="v1",
                         column=r.column, method=r.method) == pytest.approx(r.statistic, abs=0.02)  # fmt: skip
            detected = value(found, "mlpulse_drift_detected", model="churn", version="v1",
                             column=r.column)  # fmt: skip
            assert detected in (0.0, 1.0)
            if not r.threshold / 5 < r.p_value < r.threshold * 5:
                assert detected == float(r.drifted), r.column
        quality = service.quality("churn", "v1", start=start, end=end).to_pandas()
        for r in quality.itertuples():
            assert value(found, "mlpulse_quality_violations", model="churn", version="v1",
                         column=r.column, rule=r.rule) == r.violations  # fmt: skip

    def test_no_nan_no_estimate_without_reference(self, fleet) -> None:
        """``fresh`` has no labels (accuracy is NaN: left out) and no reference."""
        service, now, _ = fleet
        body, _ = encode(model_families(service, parse_windows(["1h"]), now=now), OPENMETRICS)
        assert b"NaN" not in body
        found = samples(body.decode())
        names = {dict(k)["name"] for k in series(found, "mlpulse_metric", model="fresh")}
        assert "count" in names and "prediction_mean" in names and "accuracy" not in names
        assert not series(found, "mlpulse_estimate", model="fresh")
        assert not series(found, "mlpulse_drift_statistic", model="fresh")
        # without reference data nor constraints there is no quality rule to export
        quality = service.quality("fresh", "v1", start=from_micros(now - 60 * MINUTE),
                                  end=from_micros(now)).to_pandas()  # fmt: skip
        assert len(series(found, "mlpulse_quality_violations", model="fresh")) == len(quality) == 0

    def test_regression_metrics_by_task(self, fleet) -> None:
        service, now, _ = fleet
        found = scrape(service, now=now)
        names = {dict(k)["name"] for k in series(found, "mlpulse_metric", model="price", window="1h")}
        assert {"mae", "rmse", "r2", "count"} <= names and "accuracy" not in names
        assert not series(found, "mlpulse_estimate", model="price")

    def test_a_window_without_rows_has_count_zero_only(self, fleet) -> None:
        """An hour after the last prediction of ``fresh``, its 30m window is empty: count 0,
        as ``metrics()`` says, and no other series of that window."""
        service, now, _ = fleet
        later = now + 60 * MINUTE
        found = scrape(service, windows=["30m", "24h"], now=later)
        got = series(found, "mlpulse_metric", model="fresh", window="30m")
        assert {dict(k)["name"]: v for k, v in got.items()} == {"count": 0.0}
        expected = service.metrics("fresh", "v1", ["count"], start=from_micros(later - 30 * MINUTE),
                                   end=from_micros(later))  # fmt: skip
        assert expected["count"].item() == 0
        assert value(found, "mlpulse_metric", model="fresh", version="v1", name="count",
                     window="24h") == 50  # fmt: skip
        assert not series(found, "mlpulse_latency_seconds", model="fresh")

    def test_alert_states(self, fleet) -> None:
        service, now, _ = fleet
        service.load_rules([
            {"name": "churn-busy", "model": "churn", "metric": "count", "window": "1h",
             "op": ">", "threshold": 1},
            {"name": "churn-slow", "model": "churn", "metric": "count", "window": "1h",
             "op": ">", "threshold": 1, "for": "1h"},
            {"name": "churn-quiet", "model": "churn", "metric": "count", "window": "1h",
             "op": "<", "threshold": 1},
        ])  # fmt: skip
        service.evaluate(at=from_micros(now))
        found = scrape(service, now=now)
        assert value(found, "mlpulse_alert_firing", rule="churn-busy", model="churn") == 1
        assert value(found, "mlpulse_alert_firing", rule="churn-slow", model="churn") == 0
        assert not series(found, "mlpulse_alert_firing", rule="churn-quiet")

    def test_every_design_series_is_there(self, fleet) -> None:
        service, now, _ = fleet
        service.load_rules([{"name": "r", "model": "churn", "metric": "count", "window": "1h",
                             "op": ">", "threshold": 1}])  # fmt: skip
        service.evaluate(at=from_micros(now))
        found = scrape(service, now=now)
        for name, labels in DESIGN_SERIES.items():
            keys = [k for (n, k) in found if n == name]
            assert keys, name
            assert all({label for label, _ in k} == labels for k in keys), name


HOSTILE = ['a"b', "back\\slash", "br{a}ces", 'q"}{\\n', "sp ace=,#", "ünï ☃ 模型", "x\\\"y"]


class TestHostileNames:
    """Label values are user data: quotes, backslashes, braces and newlines are escaped, and
    both parsers read every name back exactly."""

    def test_model_and_column_names_round_trip(self) -> None:
        service = Service.open(":memory:")
        now = now_micros()
        try:
            for i, name in enumerate(HOSTILE):
                reference = rows(200, i, now, within=60 * MINUTE).rename(columns={"plan": name})
                reference = reference.drop(columns=["id", "timestamp", "latency_ms"])
                service.register(name, name, task="binary", reference=reference,
                                 prediction="score", label="y", recommended_rules=False)  # fmt: skip
                frame = rows(40, 10 + i, now, within=30 * MINUTE).rename(columns={"plan": name})
                service.log_batch(name, name, frame.drop(columns=["y"]))
                service.log_feedback_batch(name, frame[["id", "y"]], label="y")
            service.load_rules([{"name": f"rule {n}", "model": n, "metric": "count",
                                 "window": "1h", "op": ">", "threshold": 1} for n in HOSTILE])  # fmt: skip
            service.evaluate(at=from_micros(now))
            families = model_families(service, parse_windows(["1h"]), now=now)
            for accept, openmetrics in ((OPENMETRICS, True), (None, False)):
                body, _ = encode(families, accept)
                found = samples(body.decode(), openmetrics=openmetrics)
                for name in HOSTILE:
                    assert value(found, "mlpulse_metric", model=name, version=name, name="count",
                                 window="1h") == 40  # fmt: skip
                    assert value(found, "mlpulse_quality_violations", model=name, version=name,
                                 column=name, rule="allowed") == 0  # fmt: skip
                    assert value(found, "mlpulse_alert_firing", rule=f"rule {name}", model=name) == 1
                    assert series(found, "mlpulse_drift_detected", model=name, column=name)
        finally:
            service.close()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20),
                    min_size=1, max_size=5, unique=True))  # fmt: skip
    def test_any_label_value_round_trips(self, values: list[str]) -> None:
        family = GaugeMetricFamily("mlpulse_metric", "doc", labels=["model"])
        for i, v in enumerate(values):
            family.add_metric([v], float(i))
        for accept, openmetrics in ((OPENMETRICS, True), (None, False)):
            body, _ = encode([family], accept)
            found = samples(body.decode(), openmetrics=openmetrics)
            assert {dict(k)["model"]: v for (_n, k), v in found.items()} == {
                v: float(i) for i, v in enumerate(values)}  # fmt: skip


class TestFailures:
    """One model failing leaves the others' series; the failure is counted and logged once."""

    def test_a_failing_model_is_left_out(self, fleet, monkeypatch, caplog) -> None:
        service, now, _ = fleet
        drift = service.drift

        def broken(name, *args, **kwargs):
            if name == "churn":
                raise RuntimeError("disk on fire")
            return drift(name, *args, **kwargs)

        monkeypatch.setattr(service, "drift", broken)
        exporter = MetricsExporter(["1h"], refresh=0)
        with caplog.at_level(logging.WARNING, logger="mlpulse.export"):
            exporter.snapshot(service)
            snap = exporter.snapshot(service)
        assert snap is not None
        body, _ = encode(snap.families, OPENMETRICS)
        found = samples(body.decode())
        assert value(found, "mlpulse_scrape_errors_total", model="churn", part="drift") == 2
        assert not series(found, "mlpulse_drift_statistic", model="churn")
        assert series(found, "mlpulse_metric", model="churn", name="accuracy")
        assert series(found, "mlpulse_estimate", model="churn")
        lines = [r for r in caplog.records if "disk on fire" in r.getMessage()]
        assert len(lines) == 1 and "'churn'" in lines[0].getMessage()

    def test_bad_windows(self) -> None:
        for bad in ("", "1h,soon", "-5m", ["1h", "0s"]):
            with pytest.raises(ConfigError, match="window|duration"):
                parse_windows(bad)
        assert [w.label for w in parse_windows("30m, 6h ,30m")] == ["30m", "6h"]


class TestExporterCache:
    """Figures are kept ``refresh`` seconds; stale ones are served while new ones compute."""

    def test_kept_then_recomputed_in_the_background(self, fleet, monkeypatch) -> None:
        service, now, _ = fleet
        monkeypatch.setattr(prometheus, "DUTY", 0.0)  # refresh alone decides here
        exporter = MetricsExporter(["1h"], refresh=0.5)
        exporter.start()
        try:
            first = exporter.snapshot(service, wait=30)
            assert first is not None
            assert exporter.snapshot(service) is first  # fresh: the same figures
            more = rows(7, 9, now_micros(), within=5 * MINUTE, prefix="n")
            log(service, "churn", more)
            time.sleep(0.6)
            assert exporter.snapshot(service) is first  # stale: served while recomputing
            deadline = time.monotonic() + 30
            while (snap := exporter.snapshot(service)) is first and time.monotonic() < deadline:
                time.sleep(0.05)
            assert snap is not first and snap is not None
            found = samples(encode(snap.families, OPENMETRICS)[0].decode())
            assert value(found, "mlpulse_predictions_total", model="churn", version="v1") == 507
        finally:
            assert exporter.stop(10)
        assert exporter._worker is None

    def test_recomputed_no_sooner_than_four_computations(self) -> None:
        """A slow fleet is not recomputed back to back: figures that took 3 s to compute are
        served 12 s, even with ``refresh`` 1 s (at most a quarter of a core)."""
        exporter = MetricsExporter(["1h"], refresh=1)
        assert exporter.max_age(prometheus.Snapshot([], time.monotonic(), 3.0)) == 12.0
        assert exporter.max_age(prometheus.Snapshot([], time.monotonic(), 0.01)) == 1.0
        with pytest.raises(ConfigError, match="refresh"):
            MetricsExporter(["1h"], refresh=float("nan"))


@pytest.fixture
def app_service(fleet):
    service, now, _ = fleet
    return service


def client(service: Service, **settings) -> TestClient:
    return TestClient(create_app(ServerConfig(db=":memory:", metrics_refresh=0, **settings), service))


class TestRoute:
    """``GET /metrics`` over HTTP: formats, the read-key rule, and the server's own series."""

    def test_formats(self, app_service) -> None:
        with client(app_service) as api:
            text = api.get("/metrics")
            assert text.status_code == 200
            assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
            plain = samples(text.text, openmetrics=False)
            om = api.get("/metrics", headers={"Accept": OPENMETRICS})
            assert om.headers["content-type"].startswith("application/openmetrics-text")
            assert om.text.endswith("# EOF\n")
            found = samples(om.text)
        assert value(found, "mlpulse_predictions_total", model="churn", version="v1") == 500
        assert value(plain, "mlpulse_predictions_total", model="churn", version="v1") == 500
        assert value(found, "mlpulse_server_info", version=__import__("mlpulse").__version__) == 1

    def test_server_series(self, app_service, tmp_path) -> None:
        rows_ = {"rows": [{"id": "h1", "score": 0.9, "age": 30.0}, {"id": "h2", "score": 0.1}]}
        with client(app_service) as api:
            assert api.post("/api/v1/models/churn/versions/v1/predictions", json=rows_).status_code == 200
            assert api.get("/api/v1/models/nope/versions/v1/metrics").status_code == 404
            api.get("/no/such/path")
            found = samples(api.get("/metrics", headers={"Accept": OPENMETRICS}).text)
        route = "/api/v1/models/{name}/versions/{version}/predictions"
        assert value(found, "mlpulse_server_http_requests_total", method="POST", route=route,
                     status="200") == 1  # fmt: skip
        assert value(found, "mlpulse_server_http_requests_total", method="GET",
                     route="/api/v1/models/{name}/versions/{version}/metrics", status="404") == 1  # fmt: skip
        assert value(found, "mlpulse_server_http_requests_total", method="GET", route="unmatched",
                     status="404") == 1  # fmt: skip
        assert value(found, "mlpulse_server_ingest_rows_total", kind="predictions") == 2
        # the two held labels met their predictions
        assert value(found, "mlpulse_server_held_labels", model="churn") == 1
        assert value(found, "mlpulse_server_scrape_duration_seconds") > 0
        assert value(found, "mlpulse_server_database_size_bytes") == 0  # in memory

    def test_database_size(self, tmp_path) -> None:
        path = str(tmp_path / "pulse.duckdb")
        with TestClient(create_app(ServerConfig(db=path))) as api:
            found = samples(api.get("/metrics", headers={"Accept": OPENMETRICS}).text)
        assert value(found, "mlpulse_server_database_size_bytes") > 0

    def test_read_key_needed_once_keys_exist(self, app_service) -> None:
        keys = KeyStore(app_service.store)
        read, ingest = keys.create("read"), keys.create("ingest")
        with client(app_service) as api:
            assert api.get("/metrics").status_code == 401
            assert api.get("/metrics", headers={"Authorization": f"Bearer {ingest}"}).status_code == 403
            ok = api.get("/metrics", headers={"Authorization": f"Bearer {read}"})
            assert ok.status_code == 200 and "mlpulse_metric{" in ok.text
        with client(app_service, metrics_public=True) as api:
            assert api.get("/metrics").status_code == 200
            assert api.get("/api/v1/models").status_code == 401  # only /metrics is public

    def test_first_scrape_waits_then_figures_are_kept(self, app_service) -> None:
        app = create_app(ServerConfig(db=":memory:", metrics_refresh=60), app_service)
        with TestClient(app) as api:
            first = samples(api.get("/metrics", headers={"Accept": OPENMETRICS}).text)
            assert value(first, "mlpulse_predictions_total", model="churn", version="v1") == 500
            app_service.log_batch("churn", "v1", rows(3, 8, now_micros(), within=5 * MINUTE,
                                                      prefix="z").drop(columns=["y"]))  # fmt: skip
            again = samples(api.get("/metrics", headers={"Accept": OPENMETRICS}).text)
            assert value(again, "mlpulse_predictions_total", model="churn", version="v1") == 500
            assert value(again, "mlpulse_server_scrape_age_seconds") >= 0
        assert app.state.metrics_exporter._worker is None  # stopped with the app


class TestSettings:
    """``metrics_*`` settings from flags, ``MLPULSE_*`` variables and TOML."""

    def test_sources(self, tmp_path) -> None:
        config = ServerConfig.load(environ={"MLPULSE_METRICS_WINDOWS": "30m,6h",
                                            "MLPULSE_METRICS_PUBLIC": "true"})  # fmt: skip
        assert config.metrics_windows == ("30m", "6h") and config.metrics_public
        toml = tmp_path / "server.toml"
        toml.write_text('[server]\nmetrics_windows = ["5m", "1d"]\nmetrics_refresh = 0\n')
        config = ServerConfig.load(str(toml), environ={})
        assert config.metrics_windows == ("5m", "1d") and config.metrics_refresh == 0
        assert ServerConfig().metrics_windows == ("1h", "24h") and not ServerConfig().metrics_public
        with pytest.raises(ConfigError, match="metrics window 'soon'"):
            ServerConfig.load(environ={"MLPULSE_METRICS_WINDOWS": "1h,soon"})
        with pytest.raises(ConfigError, match="metrics_refresh"):
            ServerConfig.load(overrides={"metrics_refresh": -1}, environ={})

    def test_serve_flags(self, monkeypatch) -> None:
        from mlpulse import cli

        seen = {}
        monkeypatch.setattr("mlpulse.server.run.serve", lambda config: seen.setdefault("c", config))
        assert cli.main(["serve", "--db", ":memory:", "--metrics-public", "--metrics-windows",
                         "15m,2h", "--metrics-refresh", "2.5"]) == 0  # fmt: skip
        config = seen["c"]
        assert config.metrics_public and config.metrics_windows == ("15m", "2h")
        assert config.metrics_refresh == 2.5
