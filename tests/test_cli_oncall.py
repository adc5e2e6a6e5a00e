"""``mlpulse status``, ``mlpulse metrics`` and ``mlpulse drift``: the same frames as the
Python API, as tables or JSON, over a database file or a running server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlpulse
from _server import ServerProcess
from mlpulse.cli import main
from mlpulse.service import Service

BASE = pd.Timestamp("2026-01-01T00:00:00Z")
HOSTILE = "[bold]x[/bold]<script>"
END = "2026-01-01T03:00:00Z"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 1800
    score = rng.random(n)
    ref = pd.DataFrame({HOSTILE: rng.normal(size=n), "score": score,
                        "y": (rng.random(n) < score).astype(int)})  # fmt: skip
    path = tmp_path / "pulse.duckdb"
    service = Service.open(str(path))
    service.register("churn", "v1", task="binary", reference=ref, prediction="score", label="y")
    cur = ref.drop(columns="y").assign(id=[str(i) for i in range(n)],
                                       timestamp=pd.date_range(BASE, periods=n, freq="6s"))  # fmt: skip
    cur[HOSTILE] = cur[HOSTILE] + 2.0
    service.log_batch("churn", "v1", cur)
    service.log_feedback_batch("churn", pd.DataFrame({"id": cur["id"], "y": ref["y"]}), label="y")
    service.register("reg", "v1", task="regression", prediction="p", label="t")
    service.close()
    return path


def test_metrics_json_equals_the_api(db, capsys) -> None:
    args = ["metrics", "churn", "--db", str(db), "--start", "2026-01-01", "--end", END,
            "--step", "1h", "--metrics", "accuracy,roc_auc"]  # fmt: skip
    assert main([*args, "--json"]) == 0
    got = pd.DataFrame(json.loads(capsys.readouterr().out))
    with mlpulse.connect(str(db)) as pulse:
        want = pulse.model("churn").metrics(["accuracy", "roc_auc"], start="2026-01-01", end=END,
                                            step="1h")  # fmt: skip
    assert got["accuracy"].tolist() == pytest.approx(want["accuracy"].tolist(), abs=1e-9)
    assert got["n"].tolist() == want["n"].tolist()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "roc_auc" in out and out.count("2026-01-01 0") >= 3


def test_drift_table_shows_names_as_written(db, capsys) -> None:
    assert main(["drift", "churn", "--db", str(db), "--start", "2026-01-01", "--end", END]) == 0
    out = capsys.readouterr().out
    assert "dataset drift" in out and HOSTILE in out  # not read as rich markup


def test_status_over_db_and_url(db, capsys) -> None:
    args = ["status", "--window", "3h", "--end", END, "--json"]
    assert main([*args, "--db", str(db)]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    churn = rows["churn"]
    assert churn["predictions"] == 1800 and churn["label_coverage"] == 1.0
    assert churn["drifted"] == HOSTILE and churn["key_metric"] == "accuracy"
    assert 0.4 < churn["estimate"] < 0.9
    assert rows["reg"]["predictions"] == 0 and rows["reg"]["key_metric"] == "mae"

    server = ServerProcess(db).start()
    url = server.url
    try:
        assert main([*args, "--url", url]) == 0
        remote = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
        for name, row in rows.items():
            # the server evaluates the recommended alert rules as it runs: alerts may differ
            for key in ("predictions", "value", "label_coverage", "drifted"):
                assert remote[name][key] == row[key], (name, key)
            # estimates read KLL sketches (randomised) built in each process: within ~1e-3
            assert remote[name]["estimate"] == pytest.approx(row["estimate"], abs=0.01, nan_ok=True)
    finally:
        server.stop()
