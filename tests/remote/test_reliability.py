"""No data loss with a real server: kill -9 mid-stream, server down for a while, exit
while the server is down, graceful shutdown."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import mlpulse

BASE = pd.Timestamp("2026-01-05T00:00:00Z")
WINDOW = {"start": "2026-01-05", "end": "2026-01-06"}
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier", "count",
           "label_coverage", "prediction_mean", "positive_rate"]


def stream(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, size=n)
    return pd.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "ts": BASE.timestamp() + np.sort(rng.uniform(0, 7200, size=n)),  # epoch seconds, 2 h
        "score": np.clip(0.3 * label + rng.uniform(0, 0.7, size=n), 0, 1).round(4),
        "label": label,
        "age": rng.integers(18, 90, size=n).astype(float),
        "plan": rng.choice(["free", "pro"], size=n),
    })


def uninterrupted(df: pd.DataFrame) -> pd.DataFrame:
    """The same data through the embedded store in one go: the reference metrics."""
    with mlpulse.connect(":memory:") as pulse:
        model = pulse.model("m", version="v1", task="binary", prediction="score", label="label")
        model.log_batch(df.drop(columns=["label"]), id="id", timestamp="ts")
        model.log_feedback_batch(df[["id", "label"]], id="id", label="label")
        return model.metrics(METRICS, step="30m", **WINDOW)


class TestKill9:
    """kill -9 while 100,000 predictions and their feedback stream in loses nothing and
    stores nothing twice.

    What is tested is per batch: 10 chunks of 10,000 rows sent in batches of 5,000 (20
    prediction and 20 feedback batches), killed after the 4th chunk with batches in flight
    and restarted after the 7th. (It was 200,000 rows in batches of 10,000: the same batches,
    kill and restart points at twice the rows, twice the time.)"""

    def test_kill_restart_exactly_once(self, server_factory, spool_dir):
        server = server_factory("--log-level", "warning")
        df = stream(100_000)
        pulse = mlpulse.connect(server.url, spool_dir=spool_dir, batch_rows=5_000,
                                interval=0.05, max_backoff=0.3)
        model = pulse.model("m", version="v1", task="binary", prediction="score", label="label")
        ids, ts, score = df["id"].tolist(), df["ts"].tolist(), df["score"].tolist()
        age, plan, label = df["age"].tolist(), df["plan"].tolist(), df["label"].tolist()
        chunk = 10_000
        restarted = None
        for lo in range(0, len(df), chunk):
            for i in range(lo, lo + chunk):
                model.log(ids[i], {"age": age[i], "plan": plan[i]}, prediction=score[i],
                          timestamp=ts[i])
            for i in range(lo, lo + chunk):
                model.log_feedback(ids[i], label=label[i], timestamp=ts[i] + 60)
            if lo == 3 * chunk:
                time.sleep(0.3)  # let batches be in flight
                server.kill()
                killed_at = time.monotonic()
            if lo == 6 * chunk:
                time.sleep(max(0.0, 1.0 - (time.monotonic() - killed_at)))
                restarted = server_factory("--log-level", "warning", db=server.db,
                                           port=server.port)
        assert restarted is not None
        try:
            assert pulse.flush(180), "flush did not finish"
            assert pulse.dropped == 0 and pulse.pending == 0 and pulse.rejected == 0
            got = model.metrics(METRICS, step="30m", **WINDOW)
            assert got["n"].sum() == 100_000 and got["n_labeled"].sum() == 100_000
            assert model.quarantined().empty  # a batch stored twice would show duplicate ids
            pulse.close()
            want = uninterrupted(df)
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
        finally:
            restarted.stop()


class TestServerDown:
    """While the server is down the client spools without slowing the caller, and
    everything arrives when it returns; data left at exit is replayed by the next run."""

    def test_spool_and_replay(self, server_factory, spool_dir):
        server = server_factory("--log-level", "warning")
        pulse = mlpulse.connect(server.url, spool_dir=spool_dir, batch_rows=2_000,
                                interval=0.02, max_backoff=0.2)
        model = pulse.model("m", version="v1", task="binary", prediction="score", label="label")
        model.log("warm", {"age": 1.0}, prediction=0.5, timestamp=BASE.timestamp())
        assert pulse.flush(10)
        assert server.stop() in (0, -15)

        df = stream(20_000, seed=1)
        latencies = np.empty(len(df))
        for i, (rid, ts, s) in enumerate(zip(df["id"], df["ts"], df["score"], strict=True)):
            started = time.perf_counter()
            model.log(rid, {"age": 3.0}, prediction=s, timestamp=ts)
            latencies[i] = time.perf_counter() - started
        started = time.perf_counter()
        report = model.log_batch(pd.DataFrame({"id": ["b1", "b2"], "score": [0.1, 0.9],
                                               "ts": [BASE.timestamp()] * 2}), timestamp="ts")
        batch_latency = time.perf_counter() - started
        assert report.pending == 2 and report.stored == 0
        assert np.percentile(latencies, 99) < 0.001 and latencies.mean() < 0.0001
        assert batch_latency < 0.5
        assert not pulse.flush(timeout=0.5)  # nothing can be acknowledged now
        assert pulse.pending > 0 and any(spool_dir.rglob("*.mlpb"))

        # a second process logs while the server is still down, then exits: its rows stay
        # in the spool, and a third process replays them
        other = mlpulse.connect(server.url, spool_dir=spool_dir, exit_timeout=0.2, retry_for=0.3)
        late = other.model("m", version="v1", task="binary")
        for i in range(500):
            late.log(f"x{i}", {"age": 5.0}, prediction=0.4, timestamp=BASE.timestamp())
        other.close()
        assert other.pending > 0 and other.dropped == 0

        back = server_factory("--log-level", "warning", db=server.db, port=server.port)
        try:
            assert pulse.flush(60)
            third = mlpulse.connect(server.url, spool_dir=spool_dir)
            assert third.flush(60)
            counts = model.metrics(["count"], **WINDOW)
            assert counts["n"].iloc[0] == 1 + 20_000 + 2 + 500
            assert pulse.dropped == 0
            third.close()
            pulse.close()
            assert not any(spool_dir.rglob("*.mlpb"))
        finally:
            back.stop()


class TestGracefulShutdown:
    """SIGTERM ends the server cleanly with everything committed in the file."""

    def test_sigterm(self, server_factory, spool_dir):
        server = server_factory()
        with mlpulse.connect(server.url, spool_dir=spool_dir) as pulse:
            model = pulse.model("m", version="v1", task="binary", prediction="score")
            model.log_batch(stream(1000).drop(columns=["label"]), timestamp="ts")
        assert server.stop() in (0, -15)
        text = server.log.read_text()
        assert '"message": "mlpulse server stopped; database closed"' in text
        with mlpulse.connect(str(server.db)) as pulse:
            assert pulse.model("m", version="v1").metrics(["count"], **WINDOW)["n"].iloc[0] == 1000


@pytest.fixture(autouse=True)
def _no_env_spool(monkeypatch):
    monkeypatch.delenv("MLPULSE_API_KEY", raising=False)
