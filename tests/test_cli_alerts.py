"""``mlpulse alerts``: ``test`` replays rules at a time without storing anything; ``load``,
``rules``, ``evaluate`` and ``list`` work on a database file, or on a running server with
``--url`` (a server owns its file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _server import ServerProcess
from mlpulse.cli import main
from mlpulse.service import Service

BASE = pd.Timestamp("2026-01-01T00:00:00Z")
RULES = """
rules:
  - {name: acc-low, model: churn, metric: accuracy, window: 1h, op: "<", threshold: 0.6,
     for: 10m, min_rows: 50, labels: {severity: page}}
  - {name: vol, model: "*", metric: count, window: 1h, op: "==", threshold: 0}
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A churn classifier whose labels flip at 05:00 (accuracy ~0.75 -> ~0.25)."""
    path = tmp_path / "pulse.duckdb"
    service = Service.open(str(path))
    service.register("churn", task="binary", prediction="score", label="y")
    rng = np.random.default_rng(0)
    n = 2000
    ts = pd.date_range(BASE, periods=n, freq="18s")
    score = rng.random(n)
    y = (rng.random(n) < score).astype(int)
    y = np.where(ts >= BASE + pd.Timedelta("5h"), 1 - y, y)
    rows = pd.DataFrame({"id": [str(i) for i in range(n)], "timestamp": ts, "score": score})
    service.log_batch("churn", "v1", rows)
    service.log_feedback_batch("churn", pd.DataFrame({"id": rows.id, "y": y}), label="y")
    service.close()
    return path


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def table(out: str) -> dict[str, list[str]]:
    """Rows of a printed table by their first cell."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[0]:
            rows[cells[0]] = cells
    return rows


def test_test_replays_without_storing(db, rules, capsys) -> None:
    assert main(["alerts", "test", str(rules), "--db", str(db), "--at", "2026-01-01T05:20Z"]) == 0
    rows = table(capsys.readouterr().out)
    # rule, model, version, metric, value, op, threshold, rows, state, started_at, note
    assert rows["acc-low"][1:5] == ["churn", "v1", "accuracy", "0.53"]
    assert rows["acc-low"][8] == "pending" and rows["acc-low"][9] == "2026-01-01 05:12:30"
    assert rows["vol"][8] == "inactive" and rows["vol"][4] == "200"
    assert main(["alerts", "test", str(rules), "--db", str(db), "--at", "2026-01-01T06:00Z"]) == 0
    rows = table(capsys.readouterr().out)
    assert rows["acc-low"][8] == "firing" and rows["acc-low"][4] == "0.24"
    service = Service.open(str(db))
    try:  # a dry run: no rule, alert, cursor or notification stored
        assert service.rules().empty and service.alerts().empty
        assert service.store.fetch_one("SELECT count(*) FROM alert_cursors")[0] == 0
    finally:
        service.close()


def test_mistakes_exit_2_with_the_reason(db, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: x, model: churn, metric: acuracy, op: '<', threshold: 1}\n")
    assert main(["alerts", "test", str(bad), "--db", str(db)]) == 2
    assert "rule 'x': field 'metric': model 'churn' (binary) has no metric 'acuracy'" in capsys.readouterr().err
    bad.write_text("rules:\n  - {name: x, model: churn, metric: accuracy, op: '<'}\n")
    assert main(["alerts", "load", str(bad), "--db", str(db)]) == 2
    assert "field 'threshold'" in capsys.readouterr().err
    missing = tmp_path / "typo.duckdb"
    assert main(["alerts", "list", "--db", str(missing)]) == 2
    assert "no database file" in capsys.readouterr().err and not missing.exists()
    assert main(["alerts", "test", str(tmp_path / "nope.yaml"), "--db", str(db)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_load_rules_evaluate_list(db, rules, capsys) -> None:
    assert main(["alerts", "load", str(rules), "--db", str(db)]) == 0
    assert "stored 2 rules: acc-low, vol" in capsys.readouterr().out
    assert main(["alerts", "rules", "--db", str(db)]) == 0
    assert set(table(capsys.readouterr().out)) >= {"acc-low", "vol"}
    for at in ("2026-01-01T05:30Z", "2026-01-01T06:00Z"):
        assert main(["alerts", "evaluate", "--db", str(db), "--at", at]) == 0
    assert table(capsys.readouterr().out)["acc-low"][8] == "firing"
    assert main(["alerts", "list", "--db", str(db), "--state", "firing"]) == 0
    rows = table(capsys.readouterr().out)
    assert rows["1"][1:4] == ["acc-low", "churn", "firing"]
    assert main(["alerts", "list", "--db", str(db), "--state", "resolved"]) == 0
    assert "(none)" in capsys.readouterr().out


def test_url_reaches_a_running_server(db, rules, capsys) -> None:
    server = ServerProcess(db, "--eval-interval", "1h").start()
    url = server.url
    try:
        assert main(["alerts", "list", "--db", str(db)]) == 2  # the server owns the file
        assert "server" in capsys.readouterr().err
        assert main(["alerts", "load", str(rules), "--url", url]) == 0
        assert main(["alerts", "evaluate", "--url", url, "--at", "2026-01-01T06:00Z"]) == 0
        assert main(["alerts", "list", "--url", url]) == 0
        out = capsys.readouterr().out
        # one evaluation 1h apart from the (never) previous: pending; the server's own loop
        # (every hour) ran at its start, before the rules existed
        assert "stored 2 rules" in out and table(out)["1"][1:4] == ["acc-low", "churn", "pending"]
    finally:
        server.stop()
