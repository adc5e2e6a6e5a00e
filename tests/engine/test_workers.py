"""Profiling in worker processes (mlpulse.engine.workers): the stored profiles equal those
profiled in-process, the workers stop with the service, and a worker killed mid-batch
stores nothing of the batch, says so, and the retried batch is stored once."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from mlpulse.engine.profiling import batch_keys, batch_parts
from mlpulse.engine.workers import ProfilePool
from mlpulse.errors import ConfigError, StoreError
from mlpulse.profiles.bucket import CORE, FEATURES, decode_part
from mlpulse.profiles.categorical import CategoricalState
from mlpulse.profiles.numeric import NumericState
from mlpulse.schema import OTHER_SEGMENT
from mlpulse.service import Service

T0 = datetime(2026, 3, 2, 0, 0)


def batch(n: int, seed: int, *, hours: float = 3.0, prefix: str = "r") -> pa.Table:
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, hours * 3600e6, n)).astype(np.int64)
    ts = pa.array(np.datetime64(T0, "us") + offsets.astype("timedelta64[us]"))
    score = rng.beta(2, 2, n)
    num = rng.normal(size=n)
    num[rng.random(n) < 0.05] = np.nan
    region = rng.choice(["eu", "us", "apac", "latam"], n).astype(object)
    region[rng.random(n) < 0.02] = None  # rows with no segment value
    amount = rng.exponential(50, n).round(2).astype(object)
    amount[rng.random(n) < 0.01] = "n/a"  # type errors, counted per bucket
    return pa.table(
        {
            "id": [f"{prefix}{seed}_{i}" for i in range(n)],
            "timestamp": ts,
            "score": score,
            "num": num,
            "amount": pa.array([str(a) for a in amount]),
            "region": pa.array(region.tolist(), pa.string()),
            "plan": pa.array(rng.choice(["a", "b", "c"], n)),
            "latency_ms": rng.gamma(2, 10, n),
        }
    )


def open_service(workers: int) -> Service:
    service = Service.open(":memory:", profile_workers=workers)
    service.register(
        "m",
        "v1",
        task="binary",
        prediction="score",
        label="label",
        features={
            "num": "numeric",
            "amount": "numeric",
            "region": "categorical",
            "plan": "categorical",
        },
        segments=["region"],
    )
    if service.profiler is not None:
        service.profiler.min_rows = 1  # every batch through the worker
    return service


def stored_parts(service: Service) -> dict[str, tuple[str, object]]:
    rows = service.store.fetch_all(
        "SELECT p.key, p.part, b.blob FROM profiles p JOIN profile_blobs b USING (key)"
    )
    return {key: (part, decode_part(part, blob)) for key, part, blob in rows}


def assert_state_equal(a, b, where: str) -> None:
    assert type(a) is type(b), where
    if isinstance(a, NumericState):
        for name in ("count", "nulls", "nan", "pos_inf", "neg_inf"):
            assert getattr(a, name) == getattr(b, name), (where, name)
        for name in ("min", "max", "mean", "m2"):
            np.testing.assert_allclose(
                getattr(a, name), getattr(b, name), rtol=1e-12, err_msg=where
            )
        if a.count - a.nulls - a.nan > 0:  # KLL quantiles within the sketches' rank bound
            qs = np.linspace(0.05, 0.95, 19)
            bound = a.rank_error + b.rank_error + 1 / (a.count - a.nulls - a.nan)
            ranks = np.array([b.kll.get_rank(x) for x in a.quantiles(qs)])
            assert np.all(np.abs(ranks - qs) <= bound), where
    elif isinstance(a, CategoricalState):
        assert (a.count, a.nulls) == (b.count, b.nulls), where
        assert a.counts == b.counts, where
    else:  # latency, classification states: exact
        assert a == b, where


def test_batch_keys_are_the_keys_batch_parts_returns() -> None:
    service = open_service(0)
    try:
        spec = service.registry.get("m")
        from mlpulse.engine.validate import validate_predictions

        table = batch(3_000, 1, hours=30)
        clean = validate_predictions(table, spec, "v1", id_col="id", ts_col="timestamp", now=0)
        clean_table = clean.table.sort_by("__minute")
        for admitted in ({"region": {"eu", "us", "apac", "latam"}}, {"region": {"eu"}}):
            parts = batch_parts(clean_table, spec, "v1", admitted)
            keys = batch_keys(clean_table, spec, "v1", admitted)
            assert len(keys) == len(set(keys))
            assert set(keys) == set(parts)
        assert any(k[1] == f"region={OTHER_SEGMENT}" for k in keys)
    finally:
        service.close()


def test_profiles_from_the_worker_equal_in_process_profiles() -> None:
    local, pooled = open_service(0), open_service(1)
    try:
        # three batches: new buckets, then merges into stored ones (overlapping hours),
        # with a duplicate id, type errors, NaN and rows without a segment value
        batches = [batch(3_000, 1, hours=2), batch(2_000, 2, hours=3), batch(1_500, 3, hours=1)]
        batches[2] = pa.concat_tables([batches[2], batches[0].slice(0, 1)])
        for table in batches:
            a = local.log_batch("m", "v1", table, timestamp="timestamp")
            b = pooled.log_batch("m", "v1", table, timestamp="timestamp")
            assert a == b
        assert pooled.profiler is not None and pooled.profiler.pids  # the worker did it
        ours, theirs = stored_parts(local), stored_parts(pooled)
        assert set(ours) == set(theirs) and len(ours) > 100
        for key, (part, a) in ours.items():
            b = theirs[key][1]
            if part == CORE:
                for name in ("n", "positives", "type_errors", "first_ts", "last_ts"):
                    assert getattr(a, name) == getattr(b, name), (key, name)
                assert_state_equal(a.prediction, b.prediction, key)
                assert a.latency == b.latency, key
            elif part == FEATURES:
                assert set(a) == set(b), key
                for column in a:
                    assert_state_equal(a[column], b[column], f"{key} {column}")
        start, end = T0, T0 + timedelta(hours=6)
        m1 = local.metrics(
            "m",
            "v1",
            ["count", "positive_rate", "prediction_mean"],
            start=start,
            end=end,
            step="1h",
        )
        m2 = pooled.metrics(
            "m",
            "v1",
            ["count", "positive_rate", "prediction_mean"],
            start=start,
            end=end,
            step="1h",
        )
        assert m1.equals(m2)
    finally:
        local.close()
        pooled.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes only once reaped: shutdown() joins its workers
    return True


def test_workers_stop_with_the_service() -> None:
    service = open_service(1)
    service.log_batch("m", "v1", batch(500, 1), timestamp="timestamp")
    assert service.profiler is not None
    pids = service.profiler.pids
    assert pids and all(alive(p) for p in pids)
    service.close()
    assert not any(alive(p) for p in pids)
    with pytest.raises(StoreError, match="closed"):
        service.profiler.submit(batch(10, 2), service.registry.get("m"), "v1", {}, None, {})


def test_small_batches_stay_in_process() -> None:
    service = Service.open(":memory:", profile_workers=1)
    try:
        service.register("m", "v1", task="binary", prediction="score", label="label")
        service.log_batch("m", "v1", batch(100, 1), timestamp="timestamp")
        assert service.profiler is not None and service.profiler.pids == []
    finally:
        service.close()


def count_rows(service: Service) -> tuple[int, int]:
    spec = service.registry.get("m")
    from mlpulse.store.registry import raw_table

    [(raw,)] = service.store.fetch_all(f"SELECT count(*) FROM {raw_table(spec)}")
    [(n,)] = service.store.fetch_all(
        "SELECT coalesce(sum(n), 0) FROM profiles WHERE part = 'core' AND resolution = 'day' "
        "AND segment = ''"
    )
    return raw, int(n)


def test_a_worker_killed_mid_batch_stores_nothing_and_the_retry_stores_once() -> None:
    service = open_service(1)
    try:
        service.log_batch("m", "v1", batch(500, 1), timestamp="timestamp", batch_id="first")
        before = count_rows(service)
        assert before == (500, 500)
        pool = service.profiler
        assert pool is not None
        # spread over 3 days: thousands of buckets to profile, far longer than the kill takes
        big = batch(30_000, 7, hours=72)
        outcome: list[BaseException | object] = []

        def ingest() -> None:
            try:
                outcome.append(
                    service.log_batch("m", "v1", big, timestamp="timestamp", batch_id="big")
                )
            except BaseException as exc:  # noqa: BLE001 - inspected below
                outcome.append(exc)

        thread = threading.Thread(target=ingest)
        thread.start()
        deadline = time.monotonic() + 60
        executor = pool._executor
        while time.monotonic() < deadline and not (
            executor is not None and executor._pending_work_items  # type: ignore[attr-defined]
        ):
            time.sleep(0.005)
            executor = pool._executor
        pids = pool.pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        thread.join(120)
        assert len(outcome) == 1
        error = outcome[0]
        assert isinstance(error, StoreError), error
        assert "profiling worker process stopped" in str(error) and "'m'" in str(error)
        assert "nothing of the batch was stored" in str(error)
        assert count_rows(service) == before  # the transaction rolled back
        # the retry (same batch id) gets a new worker and is stored exactly once
        report = service.log_batch("m", "v1", big, timestamp="timestamp", batch_id="big")
        assert report.stored == 30_000
        assert not set(pool.pids) & set(pids)
        again = service.log_batch("m", "v1", big, timestamp="timestamp", batch_id="big")
        assert again.stored == 30_000
        assert count_rows(service) == (30_500, 30_500)
    finally:
        service.close()


def test_an_idle_worker_killed_fails_one_batch_then_recovers() -> None:
    service = open_service(1)
    try:
        service.log_batch("m", "v1", batch(300, 1), timestamp="timestamp")
        assert service.profiler is not None
        for pid in service.profiler.pids:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        try:
            service.log_batch("m", "v1", batch(300, 2), timestamp="timestamp", batch_id="b")
        except StoreError as exc:  # the pool noticed the death at this batch
            assert "nothing of the batch was stored" in str(exc)
            assert count_rows(service) == (300, 300)
        report = service.log_batch("m", "v1", batch(300, 2), timestamp="timestamp", batch_id="b")
        assert report.stored == 300  # stored once, now or by the failed try (never half)
        assert count_rows(service) == (600, 600)
    finally:
        service.close()


def test_pool_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="profile workers"):
        ProfilePool(0)
    with pytest.raises(ConfigError, match="min_rows"):
        ProfilePool(1, min_rows=-1)


def test_the_server_profiles_in_a_worker_and_stops_it(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from mlpulse.server import ServerConfig, create_app

    with pytest.raises(ConfigError, match="profile_workers"):
        ServerConfig.load(overrides={"profile_workers": -1}, environ={})
    config = ServerConfig.load(overrides={"db": str(tmp_path / "s.duckdb")}, environ={})
    assert config.profile_workers == 1
    app = create_app(config)
    with TestClient(app) as client:
        service = app.state.service
        service.register("m", "v1", task="binary", prediction="score", label="label")
        sink = pa.BufferOutputStream()
        table = batch(2_500, 1)
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        r = client.post(
            "/api/v1/models/m/versions/v1/predictions",
            content=sink.getvalue().to_pybytes(),
            headers={"Content-Type": "application/vnd.apache.arrow.stream"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["stored"] == 2_500
        pids = service.profiler.pids
        assert pids
    assert not any(alive(p) for p in pids)


def test_workers_exit_when_their_server_is_killed(tmp_path) -> None:
    import subprocess
    import sys

    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "import numpy as np, pyarrow as pa\n"
        "from mlpulse.service import Service\n"
        "if __name__ == '__main__':\n"
        "    s = Service.open(':memory:', profile_workers=1)\n"
        "    s.register('m', 'v1', task='binary', prediction='score', label='label')\n"
        "    n = 3000\n"
        "    s.log_batch('m', 'v1', pa.table({'id': [str(i) for i in range(n)], "
        "'score': np.linspace(0, 1, n)}))\n"
        "    print(*s.profiler.pids, flush=True)\n"
        "    time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert pids and all(alive(p) for p in pids)
    finally:
        owner.kill()  # SIGKILL: no shutdown runs in the owner
        owner.wait(30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)
