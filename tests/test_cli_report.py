"""``mlpulse report`` and ``mlpulse check``: both forms (a database window, two files),
exit statuses 0 / 1 / 2, and JUnit XML a CI server can read."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from mlpulse.cli import main
from mlpulse.service import Service

BASE = pd.Timestamp("2026-01-01T00:00:00Z")


def frames(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def make(shift: float) -> pd.DataFrame:
        score = rng.random(n)
        return pd.DataFrame({"age": rng.normal(40 + shift, 5, n), "plan": rng.choice(["a", "b"], n),
                             "score": score, "label": (rng.random(n) < score).astype(int)})  # fmt: skip

    return make(0.0), make(6.0)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    ref, cur = frames()
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path / "ref.parquet", tmp_path / "cur.csv"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    ref, cur = frames()
    path = tmp_path / "pulse.duckdb"
    service = Service.open(str(path))
    service.register("churn", "v1", task="binary", reference=ref, prediction="score",
                     label="label", recommended_rules=False)  # fmt: skip
    rows = cur.drop(columns="label").assign(id=[str(i) for i in range(len(cur))],
                                            timestamp=pd.date_range(BASE, periods=len(cur), freq="6s"))  # fmt: skip
    service.log_batch("churn", "v1", rows)
    service.log_feedback_batch("churn", pd.DataFrame({"id": rows["id"], "label": cur["label"]}),
                               label="label")  # fmt: skip
    service.close()
    return path


class TestReport:
    def test_files(self, files, tmp_path: Path, capsys) -> None:
        out = tmp_path / "r.html"
        assert main(["report", "--reference", str(files[0]), "--current", str(files[1]),
                     "-o", str(out)]) == 0  # fmt: skip
        line = capsys.readouterr().out
        assert line.startswith(f"wrote {out}") and "1,500 rows" in line
        assert "1 of 4 columns drifted" in line
        html = out.read_text()
        assert html.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in html

    def test_db(self, db, tmp_path: Path, capsys) -> None:
        out = tmp_path / "r.html"
        assert main(["report", "--db", str(db), "--model", "churn", "--start", "2026-01-01",
                     "--end", "2026-01-01T03:00:00Z", "-o", str(out)]) == 0  # fmt: skip
        assert "estimated" in capsys.readouterr().out
        assert 'data-figure="performance"' in out.read_text()

    def test_bad_input_exits_2(self, files, tmp_path: Path, capsys) -> None:
        assert main(["report", "--reference", str(files[0]), "-o", str(tmp_path / "x")]) == 2
        assert "give both --reference and --current" in capsys.readouterr().err
        assert main(["report", "--db", str(tmp_path / "none.duckdb"), "--model", "m"]) == 2
        assert "no database file" in capsys.readouterr().err


SUITE = """
model: churn
window: {start: "2026-01-01", end: "2026-01-01T03:00:00Z"}
conditions:
  - accuracy >= 0.6
  - quality_violations >= 0
  - drift:plan == false
"""


class TestCheck:
    def test_pass_on_db_and_junit(self, db, tmp_path: Path, capsys) -> None:
        suite = tmp_path / "suite.yaml"
        suite.write_text(SUITE)
        junit = tmp_path / "out.xml"
        assert main(["check", str(suite), "--db", str(db), "--junit", str(junit)]) == 0
        out = capsys.readouterr().out
        assert "3 passed, 0 failed" in out
        root = ET.parse(junit).getroot()
        assert root.tag == "testsuites" and root.get("failures") == "0"
        assert len(root.find("testsuite").findall("testcase")) == 3

    def test_fail_on_files_exits_1(self, files, tmp_path: Path, capsys) -> None:
        suite = tmp_path / "suite.yaml"
        suite.write_text("conditions: [drift_share < 0.1, 'drift:age == false', accuracy > 0.5]")
        args = ["check", str(suite), "--reference", str(files[0]), "--current", str(files[1])]
        assert main([*args, "--json"]) == 1
        import json

        result = json.loads(capsys.readouterr().out)
        assert result["ok"] is False
        assert [c["passed"] for c in result["conditions"]] == [False, False, True]
        assert main(args) == 1
        assert "FAIL" in capsys.readouterr().out

    def test_bad_suite_exits_2_naming_the_condition(self, db, tmp_path: Path, capsys) -> None:
        suite = tmp_path / "suite.yaml"
        suite.write_text("model: churn\nconditions: [accuracy >= 0.6, accurcy >= 0.6]")
        assert main(["check", str(suite), "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert "condition 2 'accurcy >= 0.6'" in err and "has no metric 'accurcy'" in err
