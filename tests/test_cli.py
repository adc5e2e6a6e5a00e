"""The ``mlpulse`` command line: the demo's report and the version command."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from mlpulse.cli import main

ROW = re.compile(r"^│ (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) │(.*)│$")


def _mlpulse(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mlpulse`` script (``python -m mlpulse.cli`` if it is not there)."""
    script = Path(sys.executable).with_name("mlpulse")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mlpulse.cli"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300, check=False
    )


def _rows(stdout: str) -> list[dict[str, float | str]]:
    """The hourly rows of the demo's table, parsed."""
    names = ["n", "coverage", "accuracy", "f1", "roc_auc", "p50", "p95", "p99", "charges"]
    rows = []
    for line in stdout.splitlines():
        match = ROW.match(line.strip())
        if not match:
            continue
        cells = [cell.strip() for cell in match.group(2).split("│")]
        row: dict[str, float | str] = {"window": match.group(1)}
        for name, cell in zip(names, cells, strict=True):
            row[name] = float(cell.replace(",", "").rstrip("%"))
        rows.append(row)
    return rows


class TestDemo:
    """``mlpulse demo`` simulates a model in production and prints an hourly report."""

    def test_same_seed_same_report(self, tmp_path: Path) -> None:
        """Two runs with one seed print byte-identical reports, with plausible values."""
        db = tmp_path / "demo.duckdb"
        args = ("demo", "--duration", "1h", "--rate", "60", "--quiet", "--db", str(db))
        first = _mlpulse(*args)
        assert first.returncode == 0, first.stderr
        assert db.exists()
        second = _mlpulse(*args)  # deletes the first run's database and starts over
        assert second.returncode == 0, second.stderr

        rows = _rows(first.stdout)
        assert [row["window"] for row in rows] == ["2026-01-01 00:00"]
        (row,) = rows
        assert row["n"] == 3600
        assert 10.0 < row["coverage"] < 100.0  # labels due after the end are still in flight
        for name in ("accuracy", "f1", "roc_auc"):
            assert 0.0 <= row[name] <= 1.0
        assert row["accuracy"] > 0.5 and row["roc_auc"] > 0.5
        assert 0.0 < row["p50"] <= row["p95"] <= row["p99"] < 1000.0
        assert 30.0 < row["charges"] < 120.0
        assert str(db.resolve()) in first.stdout.replace("\n", "")

        assert first.stdout == second.stdout

    def test_drift_costs_accuracy(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """After the drift point the feature's mean rises and accuracy falls."""
        db = tmp_path / "demo.duckdb"
        status = main(["demo", "--duration", "2h", "--rate", "40", "--quiet", "--db", str(db)])
        out = capsys.readouterr().out
        assert status == 0
        before, after = _rows(out)
        assert (before["window"], after["window"]) == ("2026-01-01 00:00", "2026-01-01 01:00")
        assert before["n"] + after["n"] == 4800
        assert before["coverage"] > after["coverage"]  # the second hour's labels are in flight
        assert after["charges"] > before["charges"] + 15.0
        assert after["accuracy"] < before["accuracy"] - 0.1

    def test_bad_duration_is_one_line_on_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad option value exits with status 2 and a one-line message."""
        assert main(["demo", "--duration", "soon", "--db", ":memory:"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "soon" in err

    def test_refuses_to_delete_other_files(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--db`` never deletes a file that is not a DuckDB database."""
        precious = tmp_path / "notes.txt"
        precious.write_text("keep me\n")
        assert main(["demo", "--quiet", "--db", str(precious)]) == 2
        assert precious.read_text() == "keep me\n"
        assert "not a DuckDB database" in capsys.readouterr().err


class TestVersion:
    """``mlpulse version`` prints the installed version."""

    def test_version(self) -> None:
        """The script prints ``mlpulse <version>`` and exits 0."""
        result = _mlpulse("version")
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"mlpulse {version('mlpulse')}\n"
