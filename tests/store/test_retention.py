"""Retention tiers: raw rows move to the Parquet lake (or are deleted), minute and hour
profiles roll off, the file shrinks, and every old window answers as before."""

from __future__ import annotations

import multiprocessing
import os
from unittest import mock

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

import mlpulse
from mlpulse import metric
from mlpulse.errors import ConfigError
from mlpulse.store import lake
from mlpulse.store.retention import RetentionPolicy, maintain

START = pd.Timestamp("2026-01-01", tz="UTC")
DAYS = 12
NOW = START + pd.Timedelta(days=DAYS)
SETTINGS = {"raw_retention": "5d", "profile_retention": {"minute": "2d", "hour": "8d"}}
METRICS = ["count", "label_coverage", "accuracy", "roc_auc", "log_loss", "latency_p95"]


def rows(n: int = 6_000, seed: int = 3, names: tuple[str, str] = ("ios", "web")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    score = 1 / (1 + np.exp(-x + rng.normal(scale=0.8, size=n)))
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": START + pd.to_timedelta(np.sort(rng.uniform(0, DAYS * 86400, n)), unit="s"),
            "x": x,
            "channel": rng.choice(list(names), n),
            "score": score,
            "latency_ms": rng.gamma(2.0, 10.0, n),
            "y": (rng.uniform(size=n) < score).astype(int),
        }
    )


def fill(pulse, data: pd.DataFrame, name: str = "churn"):
    """Predictions, then labels for the first 80 %: each day's labels arrive together at
    01:00 the next day (simulated arrival clock: ``__received_at`` of the audit log)."""
    model = pulse.model(name, task="binary", prediction="score", label="y", segments=["channel"])
    model.log_batch(data.drop(columns="y"), timestamp="ts")
    labeled = data.iloc[: int(len(data) * 0.8)]
    for day, part in labeled.groupby(labeled["ts"].dt.floor("D")):
        arrival = (day + pd.Timedelta(days=1, hours=1)).tz_localize(None).to_pydatetime()
        with mock.patch("mlpulse.engine.ingest._naive_now", return_value=arrival):
            model.log_feedback_batch({"id": part["id"], "y": part["y"]})
    return model


#: The raw retention's cut-off at NOW (5d, whole UTC days): feedback received before it leaves.
CUTOFF = NOW - pd.Timedelta(days=5)


def audit(store, paths: list[str]) -> tuple[list[tuple], list[tuple]]:
    """``(__id, __label, __received_at)`` of the feedback audit rows in ``paths`` (lake files)
    and in the file, sorted."""
    select = "SELECT __id, __label, __received_at FROM "
    archived = duckdb.sql(f"{select} read_parquet({paths!r})").fetchall() if paths else []
    hot = store.fetch_all(f"{select} feedback_1")
    return sorted(archived), sorted(hot)


def queries(model) -> list[pd.DataFrame]:
    """Aligned and unaligned windows over every tier (raw, lake, hour-only, day-only)."""
    return [
        model.metrics(METRICS, start=START, end=NOW, step="1d"),
        model.metrics(METRICS, start=START, end=NOW, step="5h"),
        model.metrics(["count", "accuracy"], start="2026-01-01T03:17:41", end=NOW, step="7h"),
        model.metrics(["count", "accuracy"], start="2026-01-02T05:00:10",
                      end="2026-01-02T05:00:50"),
        model.metrics(["count", "accuracy"], start=START, end=NOW, step="1d", segment="channel=ios"),
        model.drift(start="2026-01-02T03:10", end="2026-01-04T07:00",
                    against={"start": "2026-01-05", "end": "2026-01-07"}, mode="exact").to_pandas(),
    ]  # fmt: skip


@metric("retention_accuracy")
def _accuracy(y_true, y_pred) -> float:
    return float(np.mean(y_true == (y_pred >= 0.5)))


@pytest.fixture(scope="module")
def maintained(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lake") / "pulse.duckdb")
    data = rows()
    pulse = mlpulse.connect(path, **SETTINGS)
    model = fill(pulse, data)
    before = queries(model)
    custom = model.metrics(["retention_accuracy"], start=START, end=NOW, step="2d")
    pulse.service.store.checkpoint()
    size = os.path.getsize(path)
    report = pulse.maintain(now=NOW)
    yield pulse, model, data, before, custom, size, report
    pulse.close()


class TestParquetLake:
    """Raw rows past the retention move to Parquet; every old window answers as before."""

    def test_report_and_tiers(self, maintained) -> None:
        pulse, model, data, *_rest, report = maintained
        old = int((data["ts"] < NOW - pd.Timedelta(days=5)).sum())
        assert report["archived_rows"] == old and report["deleted_rows"] == 0
        assert report["lake_files"] >= 7 and report["profile_parts_deleted"] > 0
        assert report["raw_retention"] == "5d" and report["minute_retention"] == "2d"
        store = pulse.service.store
        assert store.fetch_one("SELECT count(*) FROM raw_1")[0] == len(data) - old
        assert (
            store.fetch_one(
                "SELECT count(*) FROM profiles WHERE resolution = 'minute' AND bucket < ?",
                [int((NOW - pd.Timedelta(days=2)).value // 1000)],
            )[0]
            == 0
        )
        assert (
            store.fetch_one(
                "SELECT count(*) FROM profiles WHERE resolution = 'hour' AND bucket < ?",
                [int((NOW - pd.Timedelta(days=8)).value // 1000)],
            )[0]
            == 0
        )

    def test_lake_holds_the_rows_once(self, maintained) -> None:
        pulse, model, data, *_rest = maintained
        store = pulse.service.store
        found = lake.files(store, model.spec)
        paths = [p for p, _c, _v in found]
        assert all("/model=churn/version=v1/date=2026-01-0" in p for p in paths)
        ids = duckdb.sql(f"SELECT __id FROM read_parquet({paths!r})").fetchnumpy()["__id"]
        hot = store.fetch_arrow("SELECT __id FROM raw_1").column(0).to_pylist()
        assert len(ids) == len(set(ids)) and not set(ids) & set(hot)
        assert sorted([*ids, *hot]) == sorted(data["id"])

    def test_old_windows_unchanged(self, maintained) -> None:
        _pulse, model, _data, before, custom, *_rest = maintained
        for old, new in zip(before, queries(model), strict=True):
            pd.testing.assert_frame_equal(old, new)
        again = model.metrics(["retention_accuracy"], start=START, end=NOW, step="2d")
        pd.testing.assert_frame_equal(custom, again)

    def test_metrics_match_sklearn(self, maintained) -> None:
        _pulse, model, data, *_rest = maintained
        lo, hi = (
            pd.Timestamp("2026-01-02T05:30", tz="UTC"),
            pd.Timestamp("2026-01-03T01:10", tz="UTC"),
        )
        frame = model.metrics(["accuracy", "roc_auc", "count"], start=lo, end=hi)
        labeled = data.iloc[: int(len(data) * 0.8)]
        inside = labeled[(labeled.ts >= lo) & (labeled.ts < hi)]
        assert frame["count"].item() == ((data.ts >= lo) & (data.ts < hi)).sum()
        assert frame["accuracy"].item() == pytest.approx(
            accuracy_score(inside.y, inside.score >= 0.5), abs=1e-12
        )
        assert frame["roc_auc"].item() == pytest.approx(
            roc_auc_score(inside.y, inside.score), abs=2e-3
        )

    def test_file_is_smaller(self, maintained) -> None:
        pulse, *_rest, size, report = maintained
        assert report["compacted"] is True
        assert os.path.getsize(pulse.path) < 0.7 * size

    def test_feedback_audit_log_moves_to_the_lake(self, maintained) -> None:
        """Audit rows received before the cut-off are in feedback files, once; the rest stay."""
        pulse, model, data, *_rest, report = maintained
        labeled = data.iloc[: int(len(data) * 0.8)]
        arrival = labeled["ts"].dt.floor("D") + pd.Timedelta(days=1, hours=1)
        old = labeled[arrival < CUTOFF]
        assert 0 < len(old) < len(labeled)
        assert report["archived_feedback_rows"] == len(old)
        assert report["deleted_feedback_rows"] == 0
        store = pulse.service.store
        found = [p for p, _c, _v in lake.files(store, model.spec, kind=lake.FEEDBACK)]
        assert found and all("/model=churn/feedback/date=2026-01-0" in p for p in found)
        archived, hot = audit(store, found)
        naive = CUTOFF.tz_localize(None)
        assert all(at < naive for _i, _l, at in archived)
        assert sorted(i for i, _l, _a in archived) == sorted(old["id"])
        first = [row for row in hot if row[2] < pd.Timestamp("2026-06-01")]  # the fill's
        assert all(at >= naive for _i, _l, at in first)
        assert sorted(i for i, _l, _a in [*archived, *first]) == sorted(labeled["id"])
        labels = dict(zip(labeled["id"], labeled["y"].astype(float), strict=True))
        assert all(label == labels[i] for i, label, _a in archived)
        # the current label of an archived row's prediction is still on its raw row
        raw = [p for p, _c, _v in lake.files(store, model.spec)]
        on_rows = dict(
            duckdb.sql(f"SELECT __id, __label FROM read_parquet({raw!r})").fetchall()
            + store.fetch_all("SELECT __id, __label FROM raw_1")
        )
        assert all(on_rows[i] == labels[i] for i in old["id"])

    def test_raw_readers_never_see_feedback_files(self, maintained) -> None:
        pulse, model, data, *_rest = maintained
        store = pulse.service.store
        kinds = dict(store.fetch_all("SELECT kind, count(*) FROM lake_files GROUP BY kind"))
        assert set(kinds) == {"raw", "feedback"}
        raw = lake.files(store, model.spec)
        assert len(raw) == kinds["raw"] and not any("/feedback/" in p for p, _c, _v in raw)
        source = lake.raw_source(store, model.spec, None, None)
        assert "read_parquet" in source and "/feedback/" not in source
        # a Hive glob of the raw layout does not match the feedback folder either
        root = pulse.path + ".lake"
        globbed = duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{root}/model=*/version=*/date=*/*.parquet')"
        ).fetchall()[0][0]
        assert globbed == int((data["ts"] < CUTOFF).sum())
        assert model.metrics(["count"], start=START, end=NOW)["count"].item() == len(data)

    def test_late_label_after_roll_off(self, maintained) -> None:
        """A label for a hot row whose minute profile is gone rebuilds its hour exactly."""
        _pulse, model, data, *_rest = maintained
        lo, hi = NOW - pd.Timedelta(days=4), NOW - pd.Timedelta(days=3)  # raw kept, minutes gone
        unlabeled = data.iloc[int(len(data) * 0.8) :]
        target = unlabeled[(unlabeled.ts >= lo) & (unlabeled.ts < hi)]
        model.log_feedback_batch({"id": target["id"], "y": target["y"]})
        labeled = pd.concat([data.iloc[: int(len(data) * 0.8)], target])
        inside = labeled[(labeled.ts >= lo) & (labeled.ts < hi)]
        for step in ("1h", "1d"):
            frame = model.metrics(
                ["accuracy", "count", "label_coverage"], start=lo, end=hi, step=step
            )
            assert frame["accuracy"].iloc[0] == pytest.approx(
                accuracy_score(*_first(inside, lo, step)), abs=1e-12
            )
        day = model.metrics(["accuracy"], start=lo, end=hi)
        assert day["accuracy"].item() == pytest.approx(
            accuracy_score(inside.y, inside.score >= 0.5), abs=1e-12
        )


def _first(frame: pd.DataFrame, lo: pd.Timestamp, step: str):
    part = frame[frame.ts < lo + pd.to_timedelta(step.replace("d", "D"))]
    return part.y, part.score >= 0.5


class TestDeleteMode:
    """raw_archive='delete': rows go, aligned windows still answer, raw-only ones say why."""

    def test_delete(self, tmp_path) -> None:
        path = str(tmp_path / "pulse.duckdb")
        with mlpulse.connect(path, raw_archive="delete", **SETTINGS) as pulse:
            model = fill(pulse, rows(2_000))
            before = model.metrics(METRICS, start=START, end=NOW, step="1d")
            received = pulse.service.store.fetch_all("SELECT __received_at FROM feedback_1")
            report = pulse.maintain(now=NOW)
            assert report["deleted_rows"] > 0 and report["archived_rows"] == 0
            old = sum(at < CUTOFF.tz_localize(None) for (at,) in received)
            assert 0 < old < len(received)
            assert report["deleted_feedback_rows"] == old
            assert report["archived_feedback_rows"] == report["lake_files"] == 0
            left = pulse.service.store.fetch_all("SELECT __received_at FROM feedback_1")
            assert sorted(left) == sorted(r for r in received if r[0] >= CUTOFF.tz_localize(None))
            assert not os.path.exists(path + ".lake")
            pd.testing.assert_frame_equal(
                before, model.metrics(METRICS, start=START, end=NOW, step="1d")
            )
            with pytest.raises(
                ConfigError, match=r"churn.*2026-01-02T05:00.*deleted by the raw retention"
            ):
                model.metrics(["count"], start="2026-01-02T05:00:10", end="2026-01-03")
            with pytest.raises(ConfigError, match="custom metric 'retention_accuracy'"):
                model.metrics(["retention_accuracy"], start=START, end=NOW)


class TestPolicy:
    """Settings are checked with a clear message."""

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"raw_archive": "s3"}, "raw_archive"),
            ({"raw_retention": "soon"}, "raw_retention"),
            ({"profile_retention": {"second": "1d"}}, "unknown resolution"),
            ({"profile_retention": {"day": "30d"}}, "kept forever"),
            ({"profile_retention": {"minute": "30d", "hour": "2d"}}, "at least as long"),
        ],
    )
    def test_bad_settings(self, kwargs, match) -> None:
        with pytest.raises(ConfigError, match=match):
            mlpulse.connect(":memory:", **kwargs)

    def test_never(self) -> None:
        policy = RetentionPolicy.parse("never", "parquet", {"minute": "never", "hour": "never"})
        assert policy.raw is None and policy.minute is None and policy.hour is None
        with mlpulse.connect(":memory:", raw_retention="never") as pulse:
            fill(pulse, rows(300))
            assert pulse.maintain(now=NOW)["archived_rows"] == 0

    def test_names_are_safe_paths(self, tmp_path) -> None:
        path = str(tmp_path / "pulse.duckdb")
        name, version = "x'\"; DROP TABLE t; --%2F\u00e9 " + "m" * 150, "..."
        with mlpulse.connect(path, **SETTINGS) as pulse:
            model = pulse.model(name, version, task="binary", prediction="score", label="y")
            model.log_batch(rows(500).drop(columns=["y", "channel"]), timestamp="ts")
            pulse.maintain(now=NOW)
            found = lake.files(pulse.service.store, model.spec)
            assert found
            root = os.path.realpath(path + ".lake")
            for file, _cols, stored in found:
                assert os.path.realpath(file).startswith(root + os.sep) and stored == version
            assert (
                model.metrics(["count"], start=START, end="2026-01-01T00:00:30")["count"].item()
                >= 0
            )


class TestMigration:
    """A lake written before migration 8 (no ``kind`` column) reads as raw files."""

    def test_old_manifest_is_raw(self, tmp_path) -> None:
        path = str(tmp_path / "pulse.duckdb")
        with mlpulse.connect(path, **SETTINGS) as pulse:
            model = pulse.model("churn", task="binary", prediction="score", label="y")
            model.log_batch(rows(400).drop(columns=["y", "channel"]), timestamp="ts")
            pulse.maintain(now=NOW)
            before = model.metrics(["count"], start=START, end="2026-01-01T00:00:30")
        with duckdb.connect(path) as conn:  # as migration 7 left it
            conn.execute("ALTER TABLE lake_files DROP COLUMN kind")
            conn.execute("DELETE FROM schema_migrations WHERE version = 8")
        with mlpulse.connect(path, **SETTINGS) as pulse:
            store = pulse.service.store
            assert store.fetch_all("SELECT DISTINCT kind FROM lake_files") == [("raw",)]
            model = pulse.model("churn")
            assert lake.files(store, model.spec)
            after = model.metrics(["count"], start=START, end="2026-01-01T00:00:30")
            pd.testing.assert_frame_equal(before, after)


def _maintain_in_child(path: str, step: str | None) -> None:
    """Run maintenance in a forked process (modules already imported: quick), to be killed
    with SIGKILL at ``step``."""
    if step:
        os.environ["MLPULSE_CRASH_AT"] = step
    pulse = mlpulse.connect(path, **SETTINGS)
    maintain(pulse.service.store, pulse.service.retention, now=NOW, compact=True)
    pulse.close()
    os._exit(0)


STEPS = ["lake-written", "lake-renamed", "archive-before-commit",
         "feedback:lake-written", "feedback:lake-renamed", "feedback:archive-before-commit",
         "profiles-before-commit", "compact-copied", "compact-swapped"]  # fmt: skip


class TestCrashSafety:
    """kill -9 at each step of maintenance loses and duplicates nothing; a re-run finishes."""

    def test_kill_at_each_step_then_rerun(self, tmp_path) -> None:
        path = str(tmp_path / "pulse.duckdb")
        data = rows(1_500, seed=9)
        with mlpulse.connect(path, **SETTINGS) as pulse:
            model = fill(pulse, data)
            before = model.metrics(METRICS, start=START, end=NOW, step="1d")
            logged = audit(pulse.service.store, [])[1]
        # each run is killed the first time it reaches its step (a real SIGKILL: no
        # cleanup, no checkpoint), so each starts from what the last one left
        fork = multiprocessing.get_context("fork")
        for step in [*STEPS, None]:
            child = fork.Process(target=_maintain_in_child, args=(path, step))
            child.start()
            child.join(300)
            assert child.exitcode == (-9 if step else 0), step
            with mlpulse.connect(path, **SETTINGS) as pulse:
                model = pulse.model("churn")
                store = pulse.service.store
                paths = [p for p, _c, _v in lake.files(store, model.spec)]
                archived = (duckdb.sql(f"SELECT __id FROM read_parquet({paths!r})")
                            .fetchnumpy()["__id"].tolist() if paths else [])  # fmt: skip
                hot = store.fetch_arrow("SELECT __id FROM raw_1").column(0).to_pylist()
                assert sorted([*archived, *hot]) == sorted(data["id"]), step
                feedback = [p for p, _c, _v in lake.files(store, model.spec, kind=lake.FEEDBACK)]
                in_lake, in_file = audit(store, feedback)
                assert sorted([*in_lake, *in_file]) == logged, step
                after = model.metrics(METRICS, start=START, end=NOW, step="1d")
                pd.testing.assert_frame_equal(before, after)
        assert archived and in_lake and not os.path.exists(path + ".compact")
        on_disk = {os.path.join(d, f) for d, _s, fs in os.walk(path + ".lake") for f in fs}
        assert on_disk == {*paths, *feedback}  # leftovers of the killed runs were swept
