"""Shared fixtures: throwaway stores, synthetic prediction rows, and scikit-learn references.

Every metric test computes its expectation independently from the raw rows it logged
(filtered by ``[start, end)`` with pandas) using scikit-learn or numpy, never from mlpulse.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import timedelta

# One BLAS/OpenMP thread, set before numpy loads OpenBLAS (and inherited by every server,
# Spark worker and script a test starts). The tests' arrays are small: on a 2-core machine
# OpenBLAS's second thread only spins, and with other processes running it turned a
# breast-cancer LogisticRegression fit (0.8 s CPU) into 40 s CPU and 150 s of wall time.
for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
# Spark's Python workers run this interpreter (the one with pyarrow and mlpulse), also when
# pytest is started as .venv/bin/pytest without the virtualenv activated
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import sklearn.metrics as skm  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import mlpulse  # noqa: E402

threadpool_limits(1)  # in case a plugin loaded numpy before this file

BASE = pd.Timestamp("2026-01-05T00:00:00Z")

BINARY_METRICS = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "positive_rate",
]
MULTICLASS_METRICS = [
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_micro",
    "f1_weighted",
]
REGRESSION_METRICS = ["mae", "mse", "rmse", "mape", "r2", "mean_error"]
COMMON_METRICS = ["count", "label_coverage", "prediction_mean"]
LATENCY_METRICS = ["latency_p50", "latency_p95", "latency_p99"]
#: Metrics estimated from score histograms: compared within 0.005, not exactly.
APPROX = {"roc_auc": 0.005, "pr_auc": 0.005}


def _sk(fn, *args, **kwargs) -> float:
    """scikit-learn's value, NaN where it raises (e.g. ROC AUC of one class)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(fn(*args, **kwargs))
        except ValueError:
            return math.nan


class Ref:
    """Synthetic data and independent reference computations (scikit-learn / numpy)."""

    BASE = BASE

    # -- data -------------------------------------------------------------------------

    @staticmethod
    def timestamps(rng: np.random.Generator, n: int, start=BASE, span=timedelta(days=2, hours=7)):
        """n random event times (microsecond resolution) in [start, start + span), unsorted."""
        micros = rng.integers(0, int(span / timedelta(microseconds=1)), size=n)
        return pd.to_datetime(start) + pd.to_timedelta(micros, unit="us")

    @classmethod
    def binary_rows(
        cls,
        n: int = 600,
        seed: int = 0,
        *,
        start=BASE,
        span=timedelta(days=2, hours=7),
        plans=("free", "pro", "team"),
        prefix: str = "r",
    ) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        label = rng.integers(0, 2, size=n)
        # informative but imperfect scores, some exactly on the threshold and the bounds
        score = np.clip(0.35 * label + rng.uniform(0, 0.65, size=n), 0.0, 1.0)
        score[rng.choice(n, size=max(1, n // 50), replace=False)] = 0.5
        score[0], score[1 % n] = 0.0, 1.0
        return pd.DataFrame(
            {
                "id": [f"{prefix}{i}" for i in range(n)],
                "ts": cls.timestamps(rng, n, start, span),
                "score": score,
                "churned": label,
                "plan": rng.choice(list(plans), size=n),
                "age": rng.normal(40, 10, size=n).round(1),
                "latency_ms": rng.lognormal(1.5, 0.6, size=n),
            }
        )

    @classmethod
    def multiclass_rows(
        cls,
        n: int = 500,
        seed: int = 0,
        classes=("cat", "dog", "eel", "fox"),
        *,
        start=BASE,
        span=timedelta(days=1, hours=5),
    ) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        label = rng.choice(list(classes), size=n)
        pred = np.where(rng.uniform(size=n) < 0.6, label, rng.choice(list(classes), size=n))
        return pd.DataFrame(
            {
                "id": [f"m{i}" for i in range(n)],
                "ts": cls.timestamps(rng, n, start, span),
                "pred": pred,
                "animal": label,
                "size": rng.uniform(0, 10, size=n),
                "latency_ms": rng.exponential(5.0, size=n),
            }
        )

    @classmethod
    def regression_rows(
        cls,
        n: int = 500,
        seed: int = 0,
        *,
        start=BASE,
        span=timedelta(days=1, hours=5),
        scale: float = 1.0,
    ) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        y = rng.normal(100, 30, size=n) * scale
        y[rng.choice(n, size=3, replace=False)] = 0.0  # MAPE's eps denominator
        pred = y + rng.normal(2, 10, size=n) * scale
        return pd.DataFrame(
            {
                "id": [f"g{i}" for i in range(n)],
                "ts": cls.timestamps(rng, n, start, span),
                "yhat": pred,
                "y": y,
                "x": rng.uniform(size=n),
                "latency_ms": rng.gamma(2.0, 3.0, size=n),
            }
        )

    @staticmethod
    def window(df: pd.DataFrame, lo, hi, col: str = "ts") -> pd.DataFrame:
        """Rows whose event time lies in [lo, hi)."""
        lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
        lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo
        hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi
        return df[(df[col] >= lo) & (df[col] < hi)]

    # -- references -------------------------------------------------------------------

    @staticmethod
    def binary(y, s, threshold: float = 0.5) -> dict[str, float]:
        y = np.asarray(y, dtype=int)
        s = np.asarray(s, dtype=float)
        if len(y) == 0:
            return dict.fromkeys(BINARY_METRICS, math.nan)
        hard = (s >= threshold).astype(int)
        return {
            "accuracy": _sk(skm.accuracy_score, y, hard),
            "precision": _sk(skm.precision_score, y, hard, zero_division=0),
            "recall": _sk(skm.recall_score, y, hard, zero_division=0),
            "f1": _sk(skm.f1_score, y, hard, zero_division=0),
            "roc_auc": _sk(skm.roc_auc_score, y, s) if len(set(y)) == 2 else math.nan,
            "pr_auc": _sk(skm.average_precision_score, y, s),
            "log_loss": _sk(skm.log_loss, y, s, labels=[0, 1]),
            "brier": _sk(skm.brier_score_loss, y, s, labels=[0, 1]),
            "positive_rate": float(np.mean(s >= threshold)),
        }

    @staticmethod
    def multiclass(y, p) -> dict[str, float]:
        y = np.asarray(y, dtype=object).astype(str)
        p = np.asarray(p, dtype=object).astype(str)
        if len(y) == 0:
            return dict.fromkeys(MULTICLASS_METRICS, math.nan)
        return {
            "accuracy": _sk(skm.accuracy_score, y, p),
            "precision_macro": _sk(skm.precision_score, y, p, average="macro", zero_division=0),
            "recall_macro": _sk(skm.recall_score, y, p, average="macro", zero_division=0),
            "f1_macro": _sk(skm.f1_score, y, p, average="macro", zero_division=0),
            "f1_micro": _sk(skm.f1_score, y, p, average="micro", zero_division=0),
            "f1_weighted": _sk(skm.f1_score, y, p, average="weighted", zero_division=0),
        }

    @staticmethod
    def regression(y, p) -> dict[str, float]:
        y = np.asarray(y, dtype=float)
        p = np.asarray(p, dtype=float)
        if len(y) == 0:
            return dict.fromkeys(REGRESSION_METRICS, math.nan)
        return {
            "mae": _sk(skm.mean_absolute_error, y, p),
            "mse": _sk(skm.mean_squared_error, y, p),
            "rmse": math.sqrt(_sk(skm.mean_squared_error, y, p)),
            "mape": _sk(skm.mean_absolute_percentage_error, y, p),
            "r2": _sk(skm.r2_score, y, p) if len(y) >= 2 else math.nan,
            "mean_error": float(np.mean(p - y)),
        }

    @classmethod
    def expected(
        cls, task: str, rows: pd.DataFrame, *, pred: str, label: str, threshold: float = 0.5
    ) -> dict[str, float]:
        """All reference metrics for the rows of one window; unlabeled rows have a NaN label."""
        labeled = rows[rows[label].notna()]
        n = len(rows)
        out: dict[str, float] = {
            "n": n,
            "n_labeled": len(labeled),
            "count": float(n),
            "label_coverage": len(labeled) / n if n else math.nan,
        }
        if task == "binary":
            out.update(cls.binary(labeled[label], labeled[pred], threshold))
            # positive_rate needs no labels: it is over every prediction of the window
            out["positive_rate"] = float(np.mean(rows[pred] >= threshold)) if n else math.nan
            out["prediction_mean"] = float(np.mean(rows[pred])) if n else math.nan
        elif task == "multiclass":
            out.update(cls.multiclass(labeled[label], labeled[pred]))
        else:
            out.update(cls.regression(labeled[label], labeled[pred]))
            out["prediction_mean"] = float(np.mean(rows[pred])) if n else math.nan
        return out

    @staticmethod
    def log_binary(model, df: pd.DataFrame, *, labels: bool = True):
        """Log a frame from ``binary_rows`` (and, optionally, every label); assert nothing was lost."""
        report = model.log_batch(df.drop(columns=["churned"]), id="id", timestamp="ts")
        assert report.received == report.stored == len(df), report
        if labels:
            fb = model.log_feedback_batch(df[["id", "churned"]], id="id", label="churned")
            assert fb.received == fb.stored == len(df), fb
        return report

    # -- assertions -------------------------------------------------------------------

    @staticmethod
    def close(actual: float, expected: float, tol: float = 1e-9) -> bool:
        if expected is None or (isinstance(expected, float) and math.isnan(expected)):
            return actual is None or (isinstance(actual, float) and math.isnan(actual))
        if actual is None or math.isnan(actual):
            return False
        return math.isclose(actual, expected, rel_tol=tol, abs_tol=tol)

    @classmethod
    def check(cls, row: pd.Series, expected: dict[str, float], names=None, where: str = "") -> None:
        """Assert every metric of one frame row equals the reference (1e-9, AUCs 0.005)."""
        names = [k for k in expected if k in row.index] if names is None else names
        problems = []
        for name in names:
            want = expected[name]
            got = row[name]
            got = float(got) if got is not None else math.nan
            tol = APPROX.get(name, 1e-9)
            if name in ("n", "n_labeled"):
                ok = int(row[name]) == int(want)
            else:
                ok = cls.close(got, float(want), tol)
            if not ok:
                problems.append(f"{name}: got {got!r}, expected {want!r} (tol {tol})")
        assert not problems, f"{where} " + "; ".join(problems)

    @staticmethod
    def rank_error(estimate: float, values, q: float, rel: float = 0.01) -> float:
        """How far the estimate's rank among ``values`` lies from ``q`` (0 if within its tie range).

        Values within ``rel`` (relative) of the estimate count as ties: a relative-error sketch
        may report any value within its accuracy of the true quantile. With 1% value slack and
        0.02 rank slack, any estimate that is really wrong still fails.
        """
        values = np.asarray(values, dtype=float)
        slack = abs(estimate) * rel
        below = float(np.mean(values < estimate - slack))
        at_or_below = float(np.mean(values <= estimate + slack))
        return max(0.0, below - q, q - at_or_below)


@pytest.fixture(scope="session")
def ref() -> type[Ref]:
    return Ref


@pytest.fixture
def pulse() -> Iterator[mlpulse.Pulse]:
    """A throwaway in-memory store, closed after the test."""
    p = mlpulse.connect(":memory:")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def binary_model(pulse):
    return pulse.model(
        "churn",
        version="v1",
        task="binary",
        prediction="score",
        label="churned",
        segments=["plan"],
    )


@pytest.fixture
def custom_metric():
    """Register custom metrics for one test and unregister them afterwards."""
    from mlpulse.metrics.custom import unregister

    names: list[str] = []

    def register(name: str, fn):
        names.append(name)
        return mlpulse.metric(name)(fn)

    yield register
    for name in names:
        unregister(name)
