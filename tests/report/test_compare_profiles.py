"""A file comparison without timestamps is stored as bucket profiles alone (no raw rows, no
label join): its answers equal those of the same rows logged with ``log_batch`` and
``log_feedback_batch`` -- counts and confusion counts exactly, means to rounding, sketch
statistics within the KLL rank bound, the same verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpulse.report import Report, compared
from mlpulse.report.data import distributions
from mlpulse.report.files import infer_roles, profiles_only, read_table

COUNTS = ["count", "label_coverage"]
KEYS = {"binary": ["accuracy", "precision", "recall", "f1", "roc_auc"],
        "multiclass": ["accuracy", "f1_macro"], "regression": ["mae", "rmse", "r2"]}  # fmt: skip


def tables(task: str, n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def make(shift: float) -> pd.DataFrame:
        x = rng.normal(shift, 1.0, n)
        frame = pd.DataFrame({"x": x, "z": rng.normal(0, 1, n),
                              "plan": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})  # fmt: skip
        if task == "binary":
            frame["score"] = rng.random(n)
            frame["label"] = (rng.random(n) < frame["score"]).astype(float)
        elif task == "multiclass":
            frame["prediction"] = rng.choice(["p", "q", "r"], n)
            frame["label"] = np.where(rng.random(n) < 0.7, frame["prediction"], "q")
        else:
            frame["prediction"] = 2 * x
            frame["label"] = 2 * x + rng.normal(0, 1, n)
        return frame

    ref, cur = make(0.0), make(0.5)
    # rows the validation refuses, labels missing: the same rows on both paths
    pred = "score" if task == "binary" else "prediction"
    cur.loc[:9, pred] = np.nan if task != "multiclass" else None
    cur.loc[10:400, "label"] = np.nan if task != "multiclass" else None
    cur.loc[401:420, "x"] = np.nan
    return ref, cur


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_profiles_equal_the_logged_rows(task: str) -> None:
    ref, cur = tables(task)
    r, c = read_table(ref), read_table(cur)
    assert profiles_only(r, c, infer_roles(r, c))
    with compared(ref, cur) as (fast, (name, version, f_lo, f_hi)), \
            compared(ref, cur, step="1h") as (logged, (_, _, l_lo, l_hi)):  # fmt: skip
        assert f_hi - f_lo == pd.Timedelta(hours=1) and f_lo.minute == 0
        assert not fast.store.fetch_one(f"SELECT count(*) FROM {_raw(fast, name)}")[0]
        fw, lw = {"start": f_lo, "end": f_hi}, {"start": l_lo, "end": l_hi}
        keys = KEYS[task]
        a = fast.metrics(name, version, [*COUNTS, *keys], **fw)
        b = logged.metrics(name, version, [*COUNTS, *keys], **lw)
        assert int(a["n"].iloc[0]) == int(b["n"].iloc[0]) == len(cur) - 10
        assert a["label_coverage"].iloc[0] == b["label_coverage"].iloc[0]
        for m in keys:
            assert a[m].iloc[0] == pytest.approx(b[m].iloc[0], rel=1e-9, abs=1e-12), m
        da, db = fast.drift(name, version, **fw), logged.drift(name, version, **lw)
        fa, fb = da.to_pandas().set_index("column"), db.to_pandas().set_index("column")
        assert fa["drifted"].to_dict() == fb["drifted"].to_dict()
        assert fa.loc["x", "drifted"] and not fa.loc["z", "drifted"]
        # sketches merged from chunks of rows vs one sketch: a distance read from KLL
        # quantiles (Wasserstein here) moves within the sketches' rank error, a few percent
        # of its value for a large shift (seen: 0.518 vs 0.489 for the planted column)
        got = fa["statistic"].astype(float).to_numpy()
        want = fb["statistic"].astype(float).to_numpy()
        assert (np.abs(got - want) <= 0.03 + 0.1 * np.abs(want)).all(), (got, want)
        qa = fast.quality(name, version, **fw)
        qb = logged.quality(name, version, **lw)
        va = qa.to_pandas().set_index(["column", "rule"])["violations"]
        vb = qb.to_pandas().set_index(["column", "rule"])["violations"]
        pd.testing.assert_series_equal(va.sort_index(), vb.sort_index())
        ha = distributions(fast, name, version, f_lo, f_hi)
        hb = distributions(logged, name, version, l_lo, l_hi)
        assert ha["plan"] == hb["plan"]  # categorical counts: exact
        assert np.abs(np.subtract(ha["x"]["current"], hb["x"]["current"])).max() < 0.03
        if task == "binary":
            ea = fast.estimate(name, version, ["accuracy", "roc_auc"], **fw)
            eb = logged.estimate(name, version, ["accuracy", "roc_auc"], **lw)
            assert ea["n"].iloc[0] == eb["n"].iloc[0] and ea["n_labeled"].iloc[0] == eb["n_labeled"].iloc[0]
            for m in ("accuracy", "roc_auc"):
                assert ea[m].iloc[0] == pytest.approx(eb[m].iloc[0], abs=2e-3), m


def _raw(service, name: str) -> str:
    from mlpulse.store.registry import raw_table

    return raw_table(service.spec(name))


def test_the_logged_path_where_profiles_cannot_answer() -> None:
    ref, cur = tables("binary")
    r, c = read_table(ref), read_table(cur)
    roles = infer_roles(r, c)
    assert not profiles_only(r, c, roles, step="5m")  # a timeline of one instant
    times = pd.date_range("2026-01-01", periods=len(cur), freq="7s", tz="UTC")
    timed = read_table(cur.assign(timestamp=times))
    assert not profiles_only(r, timed, infer_roles(r, timed))  # windows may cut hours
    reg_r, reg_c = (read_table(t) for t in tables("regression"))
    assert not profiles_only(reg_r, reg_c, infer_roles(reg_r, reg_c))  # label drift: raw rows
    small = read_table(cur.head(1000))
    assert not profiles_only(r, small, roles)  # hypothesis tests settle on raw rows
    sparse = read_table(cur.assign(z=np.where(np.arange(len(cur)) < 900, 0.0, np.nan)))
    assert not profiles_only(r, sparse, roles)  # one column's sample is small
    empty = read_table(cur.assign(z=np.nan))
    assert profiles_only(r, empty, roles)  # ... an empty one is not compared at all
    dup = cur.assign(rid=np.arange(len(cur)) // 2)
    rd = read_table(dup)
    assert not profiles_only(r, rd, infer_roles(r, rd, id="rid"))  # repeats: quarantined
    report = Report.compare(ref, dup, id="rid")
    assert report.summary["rows"] == len(cur) // 2 - 5  # first of each id, less bad scores
