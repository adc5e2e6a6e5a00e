"""``mlpulse grafana-dashboard``: valid dashboard JSON of the shape Grafana imports, and
every query, with Grafana's variables substituted, answered by a real Prometheus holding
the model's series: data for the model, never for another one, whatever the model's name."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlpulse.cli import main
from mlpulse.errors import ConfigError
from mlpulse.export._promql import quote
from mlpulse.export.grafana import KEY_METRICS, SCHEMA_VERSION, dashboard, dashboard_json

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

#: Quotes, a backslash, Grafana's three variable syntaxes, braces, a newline, non-ASCII.
HOSTILE = 'churn "v2" \\ $version ${datasource} [[window]] {x}\n模型'
DECOY = "decoy"
DECOY_VERSION = "decoy-version"

#: The series of GET /metrics (docs/DESIGN.md; binding names).
SERIES = {
    "mlpulse_metric",
    "mlpulse_estimate",
    "mlpulse_predictions_total",
    "mlpulse_labels_total",
    "mlpulse_quarantined_total",
    "mlpulse_latency_seconds",
    "mlpulse_drift_statistic",
    "mlpulse_drift_detected",
    "mlpulse_quality_violations",
    "mlpulse_alert_firing",
}
#: Values Grafana would substitute (one version chosen; ``$__rate_interval`` is built in).
VARIABLES = {
    "version": "1",
    "window": "1h",
    "metric": "accuracy",
    "__rate_interval": "5m",
    "datasource": "prom",
}
# Grafana's variable syntax ($name, [[name]], ${name...}), as in its templateSrv.
GRAFANA_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?}"
)
TASKS = [None, *KEY_METRICS]


def interpolate(expr: str) -> str:
    """``expr`` as Grafana sends it; a variable it does not define is a test failure."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        assert name in VARIABLES, f"Grafana would read ${name} in {expr!r}"
        return VARIABLES[name]

    return GRAFANA_VARIABLE.sub(value, expr)


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) of every PromQL query of the dashboard: panel targets, annotations,
    and the variables' ``label_values(selector, label)`` as ``group by (label) (selector)``."""
    found = [
        (f"panel {p['title']!r} target {t['refId']}", t["expr"])
        for p in panels(board)
        for t in p["targets"]
    ]
    found += [
        (f"annotation {a['name']!r}", a["expr"])
        for a in board["annotations"]["list"]
        if "expr" in a
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"], re.S)
            assert match, variable["definition"]
            found.append((f"variable {variable['name']}", f"group by ({match[2]}) ({match[1]})"))
    return found


# --------------------------------------------------------------------------- Prometheus


def _om_string(value: str) -> str:
    """An OpenMetrics label value (escapes: backslash, double quote, newline)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _openmetrics(start: int, points: int) -> str:
    """Every /metrics series for HOSTILE (version 1) and DECOY, one sample a minute."""
    names = sorted({n for names in KEY_METRICS.values() for n in names} | {"label_coverage"})
    families: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}

    def add(family: str, kind: str, labels: dict[str, str], value: float) -> None:
        families.setdefault(family, (kind, []))[1].append((labels, value))

    for model, version in ((HOSTILE, "1"), (DECOY, DECOY_VERSION)):
        mv = {"model": model, "version": version}
        for name in names:
            for window in ("1h", "24h"):
                add("mlpulse_metric", "gauge", {**mv, "name": name, "window": window}, 0.8)
                add("mlpulse_estimate", "gauge", {**mv, "name": name, "window": window}, 0.82)
        add("mlpulse_predictions", "counter", mv, 10.0)  # per minute
        add("mlpulse_labels", "counter", mv, 6.0)
        add("mlpulse_quarantined", "counter", {"model": model}, 1.0)
        for quantile in ("0.5", "0.95", "0.99"):
            add("mlpulse_latency_seconds", "gauge", {**mv, "quantile": quantile}, 0.1)
        for column in ("age", "plan"):
            add("mlpulse_drift_statistic", "gauge", {**mv, "column": column, "method": "ks"}, 0.2)
            add("mlpulse_drift_detected", "gauge", {**mv, "column": column}, 1.0)
            add(
                "mlpulse_quality_violations",
                "gauge",
                {**mv, "column": column, "rule": "not_null"},
                2.0,
            )
        add("mlpulse_alert_firing", "gauge", {"rule": "accuracy low", "model": model}, 1.0)

    lines = []
    for family, (kind, members) in families.items():
        lines.append(f"# TYPE {family} {kind}")
        sample = f"{family}_total" if kind == "counter" else family
        for labels, value in members:
            text = ",".join(f"{k}={_om_string(v)}" for k, v in labels.items())
            for i in range(points):
                y = value * i if kind == "counter" else value
                lines.append(f"{sample}{{{text}}} {y} {start + 60 * i}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A Prometheus on 127.0.0.1 over a TSDB backfilled with the model's series."""

    def __init__(self, client: httpx.Client, at: int) -> None:
        self.client = client
        self.at = at  # the last sample's time: instant queries are evaluated there

    def query(self, expr: str) -> dict[str, Any]:
        answer = self.client.get("/api/v1/query", params={"query": expr, "time": self.at})
        return answer.json()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if PROMETHEUS is None or PROMTOOL is None:
        pytest.skip(
            "prometheus/promtool not installed (Debian: apt-get install prometheus); the "
            "dashboard's queries are checked against a real Prometheus"
        )
    root = tmp_path_factory.mktemp("prometheus")
    points = 60
    start = (int(time.time()) // 60 - 2 * points) * 60  # an hour of samples ending an hour ago
    (root / "series.om").write_text(_openmetrics(start, points), encoding="utf-8")
    backfill = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "series.om", "data"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = _free_port()
    log = (root / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.get("/-/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus did not start: {(root / 'prometheus.log').read_text()}")
            time.sleep(0.1)
        yield Prometheus(client, start + 60 * (points - 1))
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class TestQueriesOnPrometheus:
    """Each query, as Grafana would send it, parses and selects the model's series only."""

    @pytest.mark.parametrize(
        ("model", "task"), [*((HOSTILE, task) for task in TASKS), ("churn", None)]
    )
    def test_every_query(self, prometheus: Prometheus, model: str, task: str | None) -> None:
        board = dashboard(model, task=task)
        for where, expr in queries(board):
            answer = prometheus.query(interpolate(expr))
            assert answer["status"] == "success", (where, expr, answer)
            if model != HOSTILE:
                continue  # only the hostile model's series were backfilled
            result = answer["data"]["result"]
            assert result, f"{where}: no data for the model: {interpolate(expr)}"
            for series in result:
                labels = series["metric"]
                assert labels.get("model", HOSTILE) == HOSTILE, (where, labels)
                assert labels.get("version") != DECOY_VERSION, (where, labels)

    def test_any_version(self, prometheus: Prometheus) -> None:
        """With every version chosen (Grafana sends ``.*``), the decoy still stays out."""
        board = dashboard(HOSTILE, task="binary")
        for where, expr in queries(board):
            answer = prometheus.query(interpolate(expr.replace("$version", ".*")))
            assert answer["status"] == "success", (where, answer)
            for series in answer["data"]["result"]:
                assert series["metric"].get("model", HOSTILE) == HOSTILE, where

    def test_a_broken_query_is_caught(self, prometheus: Prometheus) -> None:
        """The check itself: a naively quoted name fails to parse."""
        naive = f'mlpulse_metric{{model="{HOSTILE}"}}'
        assert prometheus.query(naive)["status"] == "error"


# --------------------------------------------------------------------------- structure


class TestStructure:
    """The JSON has the fields Grafana's classic dashboard model needs."""

    @pytest.mark.parametrize("task", TASKS)
    @pytest.mark.parametrize("model", [HOSTILE, "churn", "a" * 300])
    def test_dashboard_model(self, model: str, task: str | None) -> None:
        board = json.loads(dashboard_json(model, datasource_uid="prom-1", task=task))
        assert board["schemaVersion"] == SCHEMA_VERSION
        assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"])
        assert board["title"] == f"mlpulse: {model}"
        assert board["id"] is None and isinstance(board["refresh"], str)
        assert "time_options" not in board["timepicker"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert {"h", "w", "x", "y"} <= grid.keys()
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
            covered = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not covered & cells, f"panel {panel['title']!r} overlaps another"
            cells |= covered
        for panel in panels(board):
            assert panel["type"] == "timeseries"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs))
            for target in panel["targets"]:
                assert target["expr"] and target["datasource"] == panel["datasource"]

    def test_variables(self) -> None:
        board = dashboard(HOSTILE, datasource_uid="prom-1")
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert list(variables) == ["datasource", "version", "window", "metric"]
        source = variables["datasource"]
        assert (source["type"], source["query"]) == ("datasource", "prometheus")
        assert source["current"]["value"] == "prom-1"
        selector = f"mlpulse_metric{{model={quote(HOSTILE)}}}"
        assert variables["version"]["definition"] == f"label_values({selector}, version)"
        assert variables["version"]["multi"] and variables["version"]["includeAll"]
        assert variables["window"]["definition"] == f"label_values({selector}, window)"
        assert variables["window"]["current"]["value"] == "1h"
        assert dashboard("m")["templating"]["list"][0]["current"] == {}

    def test_every_series_is_shown(self) -> None:
        """Each /metrics series appears in a query, and no other series is queried."""
        used = set()
        for _, expr in queries(dashboard("m", task="binary")):
            used |= set(re.findall(r"\b(mlpulse_[a-z_]+)\{", expr))
        assert used == SERIES

    def test_key_metrics_per_task(self) -> None:
        """With a task, each key metric has a panel with its realised and estimated value."""
        for task, names in KEY_METRICS.items():
            titles = [p["title"] for p in panels(dashboard("m", task=task))]
            for name in names:
                assert f"{name}: realised and estimated" in titles
            panel = next(p for p in panels(dashboard("m", task=task)) if names[0] in p["title"])
            series = [t["expr"].split("{")[0] for t in panel["targets"]]
            assert series == ["mlpulse_metric", "mlpulse_estimate"]

    def test_model_name_never_reaches_grafana_variables(self) -> None:
        """No query holds a ``$`` or ``[[`` of the name for Grafana to replace."""
        for _, expr in queries(dashboard(HOSTILE)):
            for match in GRAFANA_VARIABLE.finditer(expr):
                assert match.group(0) in {"$version", "$window", "$metric", "$__rate_interval"}

    def test_uid_is_stable_and_distinct(self) -> None:
        assert dashboard("churn")["uid"] == dashboard("churn")["uid"]
        assert dashboard("churn")["uid"] != dashboard("Churn")["uid"]
        assert re.fullmatch(r"mlpulse-[0-9a-f]{12}", dashboard("模型")["uid"])

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"model": ""}, "model name must be a non-empty string"),
            ({"model": "bad \udcff"}, "not valid Unicode"),
            ({"model": "m", "task": "ranking"}, "task must be one of binary"),
            ({"model": "m", "datasource_uid": ""}, "datasource uid must be a non-empty"),
        ],
    )
    def test_refused(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            dashboard(**kwargs)


class TestCli:
    """``mlpulse grafana-dashboard`` prints the dashboard or writes it to a file."""

    def test_writes_file(self, tmp_path: Path) -> None:
        path = tmp_path / "dashboard.json"
        args = ["grafana-dashboard", HOSTILE, "--datasource-uid", "p", "--task", "binary"]
        assert main([*args, "-o", str(path)]) == 0
        written = json.loads(path.read_text(encoding="utf-8"))
        assert written == dashboard(HOSTILE, datasource_uid="p", task="binary")

    def test_prints(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["grafana-dashboard", "churn"]) == 0
        assert json.loads(capsys.readouterr().out) == dashboard("churn")

    def test_error_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["grafana-dashboard", ""]) == 2
        assert "model name must be a non-empty string" in capsys.readouterr().err
