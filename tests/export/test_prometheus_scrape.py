"""A real Prometheus (Debian package ``prometheus``) scrapes a real ``mlpulse serve``: the
scrape is healthy, and PromQL over the stored samples answers the model's accuracy that
``model.metrics`` gives for the same trailing hour."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mlpulse
from _server import ServerProcess, free_port
from mlpulse._time import from_micros, now_micros

from .test_prometheus_exporter import MINUTE, rows

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
pytestmark = pytest.mark.skipif(
    not Path(PROMETHEUS).exists(),
    reason="the prometheus binary is absent (apt-get install -y prometheus)",
)


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    """``check()``'s first truthy answer, polled while ``proc`` runs (its log on failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited: {log.read_text()[-2000:]}")
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``mlpulse serve`` over a demo-like database: ``churn`` (binary, with a reference)
    with 400 predictions in the last 40 minutes, 300 of them labeled."""
    db = tmp_path / "pulse.duckdb"
    now = now_micros()
    pulse = mlpulse.connect(str(db))
    reference = rows(800, 1, now, within=60 * MINUTE).drop(columns=["id", "timestamp", "latency_ms"])
    model = pulse.model("churn", version="v1", task="binary", reference=reference,
                        prediction="score", label="y")  # fmt: skip
    frame = rows(400, 2, now, within=40 * MINUTE)
    model.log_batch(frame.drop(columns=["y"]), id="id", timestamp="timestamp")
    model.log_feedback_batch(frame[["id", "y"]].iloc[:300], id="id", label="y")
    pulse.close()
    server = ServerProcess(db, "--log-level", "warning").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def prometheus(tmp_path: Path, served: str) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: mlpulse\n    static_configs:\n"
        f"      - targets: ['{served.removeprefix('http://')}']\n"
    )
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out, stderr=out,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 15,
                   "prometheus", proc, log)  # fmt: skip
        yield url, proc, log
    finally:
        stop(proc)


def query(prometheus: str, promql: str) -> list[dict]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_promql_accuracy_equals_model_metrics(prometheus, served: str) -> None:
    prometheus, proc, log = prometheus
    promql = 'mlpulse_metric{model="churn",name="accuracy",window="1h"}'
    started = time.monotonic()
    result = wait_until(lambda: query(prometheus, promql), 20, "a scraped sample", proc, log)
    assert len(result) == 1 and result[0]["metric"]["version"] == "v1"
    scraped = float(result[0]["value"][1])
    # the same window from the server, now (the rows lie 1-40 minutes back: the trailing
    # hour holds all of them for the whole test, so the moving window changes nothing)
    remote = mlpulse.connect(served)
    try:
        now = now_micros()
        expected = remote.model("churn").metrics(
            ["accuracy", "count"], start=from_micros(now - 60 * MINUTE), end=from_micros(now)
        )
    finally:
        remote.close()
    assert expected["count"].item() == 400
    assert scraped == pytest.approx(expected["accuracy"].item(), abs=1e-12)
    # the scrape is healthy and the counters arrived
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")]
    [total] = query(prometheus, 'mlpulse_predictions_total{model="churn"}')
    assert float(total["value"][1]) == 400
    [labels] = query(prometheus, 'mlpulse_labels_total{model="churn"}')
    assert float(labels["value"][1]) == 300
    p99 = query(prometheus, 'mlpulse_latency_seconds{model="churn",quantile="0.99"}')
    assert len(p99) == 1 and 0 < float(p99[0]["value"][1]) < 1
    assert time.monotonic() - started < 25
