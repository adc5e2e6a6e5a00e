"""The embedded store persists everything, is owned by one process, and is migrated."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import mlpulse
from mlpulse.errors import StoreError, StoreLockedError

BINARY = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "positive_rate",
    "count",
    "label_coverage",
    "prediction_mean",
    "latency_p50",
]


class TestPersistence:
    """Reopening a file restores models, versions, schema, labels, quarantine and metrics."""

    def test_reopen_restores_everything(self, tmp_path, ref):
        path = str(tmp_path / "pulse.duckdb")
        df = ref.binary_rows(n=300, seed=71)
        with mlpulse.connect(path) as pulse:
            model = pulse.model(
                "churn",
                version="v1",
                task="binary",
                prediction="score",
                label="churned",
                threshold=0.4,
                segments=["plan"],
            )
            pulse.model("churn", version="v2")
            ref.log_binary(model, df.iloc[:250], labels=False)
            model.log_feedback_batch(df[["id", "churned"]].iloc[:200], id="id", label="churned")
            model.log_feedback_batch(
                df[["id", "churned"]].iloc[250:], id="id", label="churned"
            )  # held
            model.log_batch(
                {"id": ["bad"], "ts": ["2026-01-05T00:00:00Z"], "score": [9.0]}, timestamp="ts"
            )
            before = model.metrics(
                BINARY, start="2026-01-05T04:33:21Z", end="2026-01-07T02:07:09Z", step="5h"
            )
            before_seg = model.metrics(
                BINARY, start="2026-01-05", end="2026-01-08", segment="plan=pro"
            )
        with mlpulse.connect(path) as pulse:
            assert pulse.models() == ["churn"]
            model = pulse.model("churn", version="v1")
            spec = model.spec
            assert (spec.task, spec.threshold, spec.segments) == ("binary", 0.4, ("plan",))
            assert set(spec.features) == {"plan", "age"}
            assert model.versions() == ["v1", "v2"]
            after = model.metrics(
                BINARY, start="2026-01-05T04:33:21Z", end="2026-01-07T02:07:09Z", step="5h"
            )
            pd.testing.assert_frame_equal(before, after)
            pd.testing.assert_frame_equal(
                before_seg,
                model.metrics(BINARY, start="2026-01-05", end="2026-01-08", segment="plan=pro"),
            )
            assert model.quarantined()["id"].tolist() == ["bad"]
            # held feedback survived the restart and applies when the predictions arrive
            model.log_batch(df.drop(columns=["churned"]).iloc[250:], id="id", timestamp="ts")
            final = df.assign(churned=df["churned"].where((df.index < 200) | (df.index >= 250)))
            frame = model.metrics(BINARY, start="2026-01-05", end="2026-01-08")
            ref.check(
                frame.iloc[0],
                ref.expected("binary", final, pred="score", label="churned", threshold=0.4),
            )
            # duplicate ids are still detected after a restart
            again = model.log_batch(df.drop(columns=["churned"]).iloc[:5], id="id", timestamp="ts")
            assert (again.stored, again.quarantined) == (0, 5)

    def test_registration_seen_by_a_later_process(self, tmp_path):
        path = str(tmp_path / "shared.duckdb")
        code = textwrap.dedent(f"""
            import mlpulse
            with mlpulse.connect({path!r}) as p:
                m = p.model("fraud", version="v3", task="regression", prediction="yhat", label="y")
                m.log_batch({{"id": ["a", "b"], "ts": ["2026-01-05T00:00:00Z"] * 2, "yhat": [1.0, 3.0]}}, timestamp="ts")
        """)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        with mlpulse.connect(path) as pulse:
            model = pulse.model("fraud")
            assert model.version == "v3" and model.spec.task == "regression"
            frame = model.metrics(
                ["count", "prediction_mean"], start="2026-01-05", end="2026-01-06"
            )
            assert frame["n"].iloc[0] == 2 and frame["prediction_mean"].iloc[0] == 2.0


class TestLocking:
    """A second process opening a file in use gets StoreLockedError with a clear message."""

    def test_second_process_is_refused(self, tmp_path):
        path = str(tmp_path / "locked.duckdb")
        code = textwrap.dedent(f"""
            import sys, mlpulse
            from mlpulse.errors import StoreLockedError
            try:
                mlpulse.connect({path!r})
            except StoreLockedError as exc:
                print("LOCKED", exc)
                sys.exit(0)
            except Exception as exc:
                print("OTHER", type(exc).__name__, exc)
                sys.exit(2)
            print("OPENED")
            sys.exit(1)
        """)
        with mlpulse.connect(path) as pulse:
            pulse.model("m", task="binary")
            result = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
            )
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "LOCKED" in out
        assert path in out or "locked.duckdb" in out
        assert str(os.getpid()) in out  # names the owner
        assert "http" in out.lower()  # suggests connecting over HTTP
        assert issubclass(StoreLockedError, StoreError)

    def test_names_the_owning_servers_url(self, tmp_path):
        """A server notes its URL beside the file: the refusal names that URL (issue 9:
        it always suggested port 8765)."""
        from mlpulse.store.database import note_server

        path = str(tmp_path / "served.duckdb")
        code = textwrap.dedent(f"""
            import mlpulse
            try:
                mlpulse.connect({path!r})
            except mlpulse.errors.StoreLockedError as exc:
                print(exc)
        """)
        with mlpulse.connect(path):
            note = note_server(path, "http://127.0.0.1:9123")
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
            ).stdout
        os.unlink(note)
        assert "mlpulse.connect('http://127.0.0.1:9123')" in out and "8765" not in out

    def test_file_is_free_after_close(self, tmp_path):
        path = str(tmp_path / "free.duckdb")
        mlpulse.connect(path).close()
        code = f"import mlpulse; mlpulse.connect({path!r}).close(); print('ok')"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0 and "ok" in result.stdout, result.stderr


class TestMigrations:
    """A new store records migration 1; reopening does not re-apply it."""

    def test_migration_table(self, tmp_path):
        path = str(tmp_path / "m.duckdb")
        with mlpulse.connect(path) as pulse:
            rows = pulse.store.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
            assert rows[0] == (1,)
            assert pulse.store.schema_version() >= 1
        with mlpulse.connect(path) as pulse:
            again = pulse.store.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
            assert again == rows

    def test_memory_store_is_migrated(self, pulse):
        assert pulse.store.fetch_one(
            "SELECT count(*) FROM schema_migrations WHERE version = 1"
        ) == (1,)


class TestConnectTarget:
    """connect() honours MLPULSE_DB, defaults to ./mlpulse.duckdb, and accepts path-like targets."""

    def test_env_var(self, tmp_path, monkeypatch):
        target = tmp_path / "env" / "from_env.duckdb"
        monkeypatch.setenv("MLPULSE_DB", str(target))
        monkeypatch.chdir(tmp_path)
        with mlpulse.connect() as pulse:
            pulse.model("m", task="binary")
        assert target.exists()
        assert not (tmp_path / "mlpulse.duckdb").exists()
        monkeypatch.delenv("MLPULSE_DB")
        with mlpulse.connect(str(target)) as pulse:
            assert pulse.models() == ["m"]

    def test_default_file(self, tmp_path, monkeypatch):
        monkeypatch.delenv("MLPULSE_DB", raising=False)
        monkeypatch.chdir(tmp_path)
        with mlpulse.connect() as pulse:
            pulse.model("m", task="binary")
        assert (tmp_path / "mlpulse.duckdb").exists()

    def test_pathlike(self, tmp_path):
        with mlpulse.connect(tmp_path / "p.duckdb") as pulse:
            assert pulse.models() == []

    def test_memory_stores_are_independent(self):
        with mlpulse.connect(":memory:") as a, mlpulse.connect(":memory:") as b:
            a.model("only_a", task="binary")
            assert b.models() == []

    def test_unusable_path(self, tmp_path):
        bad = tmp_path / "dir.duckdb"
        bad.mkdir()
        with pytest.raises(StoreError):
            mlpulse.connect(str(bad))
