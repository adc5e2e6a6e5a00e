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

        # the hourly report is byte-identical; in the alerts below it, values that come from
        # KLL sketches (drift statistics) vary in the third decimal run to run (KLL compacts
        # at random), so numbers are compared masked; rules, states and times exactly
        hourly, _, alerts = first.stdout.partition("alerts (")
        hourly2, _, alerts2 = second.stdout.partition("alerts (")
        assert hourly == hourly2
        number = re.compile(r"\d+\.\d+")
        assert number.sub("N", alerts) == number.sub("N", alerts2)

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


def _user_database(path: Path) -> int:
    """A database with one model and 3 stored rows, as a user's or a server's would be."""
    import mlpulse

    pulse = mlpulse.connect(str(path))
    model = pulse.model("precious", task="binary", prediction="score", label="y")
    report = model.log_batch(
        [{"id": f"p{i}", "score": 0.5, "timestamp": "2026-01-05T00:00:00Z"} for i in range(3)],
        id="id",
        timestamp="timestamp",
    )
    pulse.close()
    return report.stored


def _stored(path: Path) -> int:
    import mlpulse

    pulse = mlpulse.connect(str(path))
    try:
        frame = pulse.model("precious").metrics(["count"], start="2026-01-05", end="2026-01-06")
        return int(frame["n"].iloc[0])
    finally:
        pulse.close()


SMALL = ("--duration", "10m", "--rate", "10", "--quiet")


class TestDemoDatabase:
    """``mlpulse demo --db X`` replaces only a database an earlier demo made, never one
    another process has open, and any other DuckDB database only with ``--force`` (it used
    to delete whatever DuckDB file was at X, a running server's included)."""

    def test_refuses_a_database_it_did_not_create(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        db = tmp_path / "prod.duckdb"
        assert _user_database(db) == 3
        assert main(["demo", *SMALL, "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "did not create" in err and "--force" in err
        assert _stored(db) == 3

    def test_replaces_its_own_database(self, tmp_path: Path) -> None:
        import duckdb

        db = tmp_path / "demo.duckdb"
        assert main(["demo", *SMALL, "--seed", "1", "--db", str(db)]) == 0
        assert main(["demo", *SMALL, "--seed", "2", "--db", str(db)]) == 0
        conn = duckdb.connect(str(db), read_only=True)
        try:
            assert conn.execute("SELECT seed FROM mlpulse_demo").fetchall() == [(2,)]
        finally:
            conn.close()

    def test_refuses_a_database_another_process_has_open(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Even the demo's own database, even with --force: the owner's writes would be lost."""
        db = tmp_path / "demo.duckdb"
        assert main(["demo", *SMALL, "--db", str(db)]) == 0
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time, mlpulse; p = mlpulse.connect(sys.argv[1]); "
             "print('ready', flush=True); time.sleep(120)", str(db)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
            size = db.stat().st_size
            for force in ((), ("--force",)):
                assert main(["demo", *SMALL, *force, "--db", str(db)]) == 2
                err = capsys.readouterr().err
                assert f"in use by process {holder.pid}" in err, err
                assert db.exists() and db.stat().st_size == size
        finally:
            holder.kill()
            holder.wait(30)

    def test_force_replaces_an_unlocked_database(self, tmp_path: Path) -> None:
        db = tmp_path / "scratch.duckdb"
        assert _user_database(db) == 3
        assert main(["demo", *SMALL, "--force", "--db", str(db)]) == 0
        import mlpulse
        from mlpulse.errors import UnknownModelError

        pulse = mlpulse.connect(str(db))
        try:
            assert pulse.model("churn").metrics(["count"], start="2026-01-01", end="2026-01-02")[
                "n"
            ].iloc[0] == 100
            with pytest.raises(UnknownModelError):
                pulse.model("precious").metrics(["count"])
        finally:
            pulse.close()

    def test_refuses_a_stray_wal_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A .wal without its database may be the only copy of acknowledged writes."""
        wal = tmp_path / "demo.duckdb.wal"
        wal.write_bytes(b"unreplayed writes")
        assert main(["demo", *SMALL, "--db", str(tmp_path / "demo.duckdb")]) == 2
        assert "without its database" in capsys.readouterr().err
        assert wal.read_bytes() == b"unreplayed writes"

    def test_help_shows_one_percent_sign(self) -> None:
        """Argparse formats no description, so "%%" was printed as is."""
        result = _mlpulse("demo", "--help")
        assert result.returncode == 0
        text = " ".join(result.stdout.split())
        assert "about 3% corrected later" in text and "%%" not in text


class TestVersion:
    """``mlpulse version`` prints the installed version."""

    def test_version(self) -> None:
        """The script prints ``mlpulse <version>`` and exits 0."""
        result = _mlpulse("version")
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"mlpulse {version('mlpulse')}\n"
