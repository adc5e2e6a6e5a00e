"""Segment ranking: which values of a segment column moved a metric between two windows.

A metric that is a ratio of sums over rows, ``M = Σy / Σx`` (accuracy: ``y`` = correct,
``x`` = labeled; MAE: ``y`` = absolute error, ``x`` = labeled; F1: ``y`` = 2·TP, ``x`` =
2·TP + FP + FN), is the share-weighted mean of its segments' values, ``M = Σ_s w_s m_s`` with
``w_s = X_s / X``. Its change between the baseline (primed) and the current window splits
exactly into one term per segment::

    contribution_s = w'_s (m_s - m'_s)            # rate: the segment itself got worse
                   + (w_s - w'_s) (m_s - M')      # mix: it grew, and it is off the baseline

and ``Σ_s contribution_s = M - M'`` (the ``M'`` term sums to zero because the shares do).
Written with sums only, ``(Y_s - M' X_s) / X - (Y'_s - M' X'_s) / X'``, it also holds for a
segment present in one window only. Rows whose segment value is missing form their own
segment (``value`` None), so the sum is the total change of the whole window.

Each segment's change is tested: a two-proportion z-test for proportion metrics (Fisher's
exact test when an expected cell count is under 5), Welch's t-test for means of per-row
values, a Wald z-test on the ratio with delta-method variances for F1, and for ``count`` the
exact conditional binomial test of two Poisson rates (window lengths taken into account).

Metrics that are not ratios of row sums (ROC AUC, RMSE, R², macro averages, latency
quantiles) have no exact additive split over segments: asking for them raises
:class:`~mlpulse.errors.ConfigError` naming the decomposable ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from .._time import from_micros, to_micros
from ..drift.sources import reference_version
from ..errors import ConfigError, UnknownMetricError
from ..metrics.catalog import metric_names
from ..schema import OTHER_SEGMENT, ModelSpec
from ..store.rows import reference_columns_of, window_columns

if TYPE_CHECKING:
    from ..engine.scope import Scope
    from ..store.database import Store
    from ..store.registry import Registry

PROPORTION, MEAN, RATIO, COUNT = "proportion", "mean", "ratio", "count"
_EPS = float(np.finfo(np.float64).eps)

#: Metric -> (tasks, kind) of the metrics whose change splits exactly over segments.
DECOMPOSABLE: dict[str, tuple[tuple[str, ...], str]] = {
    "accuracy": (("binary", "multiclass"), PROPORTION),
    "f1_micro": (("multiclass",), PROPORTION),
    "precision": (("binary",), PROPORTION),
    "recall": (("binary",), PROPORTION),
    "positive_rate": (("binary",), PROPORTION),
    "f1": (("binary",), RATIO),
    "log_loss": (("binary",), MEAN),
    "brier": (("binary",), MEAN),
    "mae": (("regression",), MEAN),
    "mse": (("regression",), MEAN),
    "mape": (("regression",), MEAN),
    "mean_error": (("regression",), MEAN),
    "prediction_mean": (("binary", "regression"), MEAN),
    "label_coverage": (("binary", "multiclass", "regression"), PROPORTION),
    "count": (("binary", "multiclass", "regression"), COUNT),
}
#: Metrics judged against the previous window even when a reference exists: the reference
#: is a sample of labeled data, not traffic.
_WINDOW_ONLY = ("count", "label_coverage")

COLUMNS = [
    "segment", "value", "rows", "rows_against", "share", "share_against", "metric",
    "metric_against", "change", "contribution", "p_value",
]  # fmt: skip


def decomposable(task: str) -> list[str]:
    return [m for m, (tasks, _kind) in DECOMPOSABLE.items() if task in tasks]


def check_metric(spec: ModelSpec, metric: Any) -> str:
    """The metric's kind; raises for a metric the task lacks or that has no additive split."""
    if not isinstance(metric, str):
        raise ConfigError(f"model {spec.name!r}: metric must be a metric name, not {metric!r}")
    entry = DECOMPOSABLE.get(metric)
    if entry is not None and spec.task in entry[0]:
        return entry[1]
    known = decomposable(spec.task)
    if metric not in metric_names(spec.task):
        raise UnknownMetricError(
            f"model {spec.name!r} ({spec.task}): no metric {metric!r}; segments can rank "
            f"{', '.join(known)}"
        )
    raise ConfigError(
        f"model {spec.name!r}: {metric!r} is not a ratio of sums over rows, so its change has "
        f"no exact split over segments; segments can rank {', '.join(known)}"
    )


def segment_columns(spec: ModelSpec, segment: Any) -> list[str]:
    """The segment columns asked for (every declared one for None)."""
    if not spec.segments:
        raise ConfigError(f"model {spec.name!r} declares no segment columns (segments=[...])")
    if segment is None:
        return list(spec.segments)
    asked = [segment] if isinstance(segment, str) else list(segment)
    for column in asked:
        if column not in spec.segments:
            raise ConfigError(
                f"model {spec.name!r}: {column!r} is not a segment column; segments: "
                f"{', '.join(spec.segments)}"
            )
    return asked


def row_terms(spec: ModelSpec, metric: str, pred: np.ndarray, label: np.ndarray):
    """Per-row ``(x, y)`` with ``metric = Σy / Σx`` (``count``: x = y = 1)."""
    n = len(pred)
    ones = np.ones(n)
    if metric == "count":
        return ones, ones
    if spec.task == "multiclass":
        labeled = pd.notna(label)
        if metric == "label_coverage":
            return ones, labeled.astype(float)
        correct = labeled & (pred.astype(object) == label.astype(object))
        return labeled.astype(float), correct.astype(float)
    labeled = ~np.isnan(label)
    if metric == "label_coverage":
        return ones, labeled.astype(float)
    if metric == "prediction_mean":
        present = ~np.isnan(pred)
        return present.astype(float), np.where(present, pred, 0.0)
    y_true = np.where(labeled, label, 0.0)
    if spec.task == "regression":
        p = np.where(labeled, pred, 0.0)
        err = p - y_true
        value = {
            "mae": np.abs(err),
            "mse": err * err,
            "mape": np.abs(err) / np.maximum(np.abs(y_true), _EPS),
            "mean_error": err,
        }[metric]
        return labeled.astype(float), np.where(labeled, value, 0.0)
    with np.errstate(invalid="ignore"):
        positive = pred >= spec.threshold  # NaN is never positive
    if metric == "positive_rate":
        return ones, positive.astype(float)
    truth = labeled & (y_true == 1)
    if metric == "accuracy":
        return labeled.astype(float), (labeled & (positive == truth)).astype(float)
    if metric == "precision":
        x = labeled & positive
        return x.astype(float), (x & truth).astype(float)
    if metric == "recall":
        return truth.astype(float), (truth & positive).astype(float)
    if metric == "f1":
        tp = truth & positive
        fp_or_fn = labeled & (truth != positive)
        return (2.0 * tp + fp_or_fn), 2.0 * tp
    clipped = np.clip(np.nan_to_num(pred), 0.0, 1.0)
    if metric == "log_loss":
        p_true = np.where(truth, clipped, 1.0 - clipped)
        value = -np.log(np.clip(p_true, _EPS, 1.0 - _EPS))
    else:  # brier
        value = (y_true - clipped) ** 2
    return labeled.astype(float), np.where(labeled, value, 0.0)


class _Side:
    """One window's per-row terms and segment values."""

    def __init__(self, spec: ModelSpec, metric: str, pred: Any, label: Any, segments: dict) -> None:
        if spec.task == "multiclass":
            pred_a = np.asarray(pred, dtype=object)
            label_a = np.asarray(label, dtype=object)
        else:
            pred_a = np.asarray(
                pd.to_numeric(pd.Series(pred, dtype=object), errors="coerce"), float
            )
            label_a = np.asarray(
                pd.to_numeric(pd.Series(label, dtype=object), errors="coerce"), float
            )
        self.x, self.y = row_terms(spec, metric, pred_a, label_a)
        self.segments = segments
        self.n = len(self.x)


def _pooled(values: Any, admitted: set[str]) -> np.ndarray:
    """Segment values as stored in profiles: beyond the admitted ones, ``__other__``."""
    series = pd.Series(values, dtype=object)
    present = series.notna()
    text = series.where(~present, series.astype(str))
    keep = text.isin(admitted) | ~present
    return np.asarray(text.where(keep, OTHER_SEGMENT), dtype=object)


def _aggregate(side: _Side, codes: np.ndarray, groups: int, kind: str) -> dict[str, np.ndarray]:
    x, y = side.x, side.y
    X = np.bincount(codes, weights=x, minlength=groups)
    Y = np.bincount(codes, weights=y, minlength=groups)
    N = np.bincount(codes, weights=(x > 0).astype(float), minlength=groups)
    out = {"X": X, "Y": Y, "N": N}
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == MEAN:
            mean = np.where(N > 0, Y / np.where(N > 0, N, 1), 0.0)
            dev = np.where(x > 0, y - mean[codes], 0.0)
            ss = np.bincount(codes, weights=dev * dev, minlength=groups)
            out["var"] = np.where(N > 1, ss / np.maximum(N - 1, 1), np.nan)
        elif kind == RATIO:
            r = np.where(X > 0, Y / np.where(X > 0, X, 1), 0.0)
            resid = y - r[codes] * x
            n_eff = np.maximum(N, 1)
            out["var"] = np.where(
                (X > 0) & (N > 1),
                np.bincount(codes, weights=resid * resid, minlength=groups)
                * n_eff
                / np.maximum(N - 1, 1)
                / np.where(X > 0, X, 1) ** 2,
                np.nan,
            )
    return out


def two_proportion(k1: np.ndarray, n1: np.ndarray, k0: np.ndarray, n0: np.ndarray) -> np.ndarray:
    """Two-sided p-values: pooled two-proportion z-test, Fisher's exact test where an
    expected cell count is under 5; NaN where a side has no rows."""
    k1, n1, k0, n0 = (np.asarray(a, float) for a in (k1, n1, k0, n0))
    p = np.full(len(k1), np.nan)
    ok = (n1 > 0) & (n0 > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (k1 + k0) / (n1 + n0)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
        z = (k1 / n1 - k0 / n0) / se
        expected = np.minimum.reduce(
            [n1 * pooled, n1 * (1 - pooled), n0 * pooled, n0 * (1 - pooled)]
        )
    z_ok = ok & (se > 0)
    p[z_ok] = 2 * stats.norm.sf(np.abs(z[z_ok]))
    p[ok & (se == 0)] = 1.0  # both sides all 0 or all 1: no difference
    small = ok & (se > 0) & (expected < 5)
    for i in np.flatnonzero(small):  # at most one test per segment value (<= 51)
        table = [[k1[i], n1[i] - k1[i]], [k0[i], n0[i] - k0[i]]]
        p[i] = stats.fisher_exact(np.asarray(table, dtype=np.int64)).pvalue
    return p


def welch(
    m1: np.ndarray, v1: np.ndarray, n1: np.ndarray, m0: np.ndarray, v0: np.ndarray, n0: np.ndarray
) -> np.ndarray:
    """Two-sided p-values of Welch's t-test from means, variances (ddof=1) and sizes; NaN
    with fewer than 2 rows on a side. Zero variance on both sides: 1 for equal means, else 0."""
    m1, v1, n1, m0, v0, n0 = (np.asarray(a, float) for a in (m1, v1, n1, m0, v0, n0))
    p = np.full(len(m1), np.nan)
    ok = (n1 > 1) & (n0 > 1) & np.isfinite(v1) & np.isfinite(v0)
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = v1 / n1, v0 / n0
        se2 = a + b
        t = (m1 - m0) / np.sqrt(se2)
        df = se2 * se2 / (a * a / (n1 - 1) + b * b / (n0 - 1))
    test = ok & (se2 > 0)
    p[test] = 2 * stats.t.sf(np.abs(t[test]), df[test])
    flat = ok & (se2 == 0)
    p[flat] = np.where(m1[flat] == m0[flat], 1.0, 0.0)
    return p


def wald(r1: np.ndarray, v1: np.ndarray, r0: np.ndarray, v0: np.ndarray) -> np.ndarray:
    """Two-sided p-values of a z-test on two ratio estimates with delta-method variances."""
    p = np.full(len(r1), np.nan)
    se2 = v1 + v0
    ok = np.isfinite(se2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (r1 - r0) / np.sqrt(se2)
    test = ok & (se2 > 0)
    p[test] = 2 * stats.norm.sf(np.abs(z[test]))
    flat = ok & (se2 == 0)
    p[flat] = np.where(r1[flat] == r0[flat], 1.0, 0.0)
    return p


def poisson_rates(k1: np.ndarray, t1: float, k0: np.ndarray, t0: float) -> np.ndarray:
    """Two-sided exact conditional test that two counts over lengths t1, t0 share a rate."""
    p = np.full(len(k1), np.nan)
    if t1 <= 0 or t0 <= 0:
        return p
    share = t1 / (t1 + t0)
    for i in range(len(k1)):  # one exact test per segment value (<= 51)
        n = int(k1[i] + k0[i])
        p[i] = stats.binomtest(int(k1[i]), n, share).pvalue if n else 1.0
    return p


def _column_frame(
    spec: ModelSpec,
    column: str,
    kind: str,
    cur: _Side,
    base: _Side,
    lengths: tuple[float, float],
) -> pd.DataFrame:
    values = np.concatenate([cur.segments[column], base.segments[column]])
    codes_all, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    names = list(uniques) + [None]
    codes_all = np.where(codes_all < 0, len(uniques), codes_all)
    groups = len(names)
    codes_cur, codes_base = codes_all[: cur.n], codes_all[cur.n :]
    a = _aggregate(cur, codes_cur, groups, kind)
    b = _aggregate(base, codes_base, groups, kind)
    total_x, total_bx = a["X"].sum(), b["X"].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == COUNT:
            metric, metric_b = a["N"], b["N"]
            contribution = a["N"] - b["N"]
            p_value = poisson_rates(a["N"], lengths[0], b["N"], lengths[1])
        else:
            metric = np.where(a["X"] > 0, a["Y"] / a["X"], np.nan)
            metric_b = np.where(b["X"] > 0, b["Y"] / b["X"], np.nan)
            baseline = b["Y"].sum() / total_bx if total_bx else math.nan
            contribution = (a["Y"] - baseline * a["X"]) / total_x - (
                b["Y"] - baseline * b["X"]
            ) / total_bx
            if not (total_x and total_bx):
                contribution = np.full(groups, np.nan)
            if kind == PROPORTION:
                p_value = two_proportion(a["Y"], a["X"], b["Y"], b["X"])
            elif kind == MEAN:
                p_value = welch(metric, a["var"], a["N"], metric_b, b["var"], b["N"])
            else:
                p_value = wald(metric, a["var"], metric_b, b["var"])
        share = a["X"] / total_x if total_x else np.full(groups, np.nan)
        share_b = b["X"] / total_bx if total_bx else np.full(groups, np.nan)
    frame = pd.DataFrame(
        {
            "segment": column,
            "value": pd.Series(names, dtype="str"),  # missing: NaN, as over Arrow
            "rows": a["N"].astype(np.int64),
            "rows_against": b["N"].astype(np.int64),
            "share": share,
            "share_against": share_b,
            "metric": np.asarray(metric, float),
            "metric_against": np.asarray(metric_b, float),
            "change": np.asarray(metric, float) - np.asarray(metric_b, float),
            "contribution": np.asarray(contribution, float),
            "p_value": p_value,
        }
    )
    # a segment with no rows on either side of this metric's denominator is not a segment
    seen = np.bincount(codes_cur, minlength=groups) + np.bincount(codes_base, minlength=groups)
    return frame[seen > 0]


def _side_from_window(
    store: Store, registry: Registry, spec: ModelSpec, metric: str, lo: int, hi: int,
    versions: Sequence[str], columns: list[str],
) -> _Side:  # fmt: skip
    table = window_columns(store, spec, lo, hi, versions, ["__prediction", "__label", *columns])
    segments = {
        c: _pooled(table.column(c).to_pylist(), registry.segment_values(spec, c)) for c in columns
    }
    return _Side(
        spec, metric, table.column("__prediction").to_pylist(), table.column("__label").to_pylist(),
        segments,
    )  # fmt: skip


def _side_from_reference(
    store: Store, registry: Registry, spec: ModelSpec, metric: str, version: str, columns: list[str]
) -> _Side | None:
    found = reference_version(store, spec, version)
    if found is None:
        return None
    value_type = "VARCHAR" if spec.task == "multiclass" else "DOUBLE"
    wanted = {"__prediction": (spec.prediction, value_type), "__label": (spec.label, value_type)}
    wanted |= {f"__segment_{i}": (c, "VARCHAR") for i, c in enumerate(columns)}
    table = reference_columns_of(store, spec, found, wanted)
    if table is None or table.column("__label").null_count == table.num_rows:
        return None
    segments = {
        c: _pooled(table.column(f"__segment_{i}").to_pylist(), registry.segment_values(spec, c))
        for i, c in enumerate(columns)
    }
    return _Side(
        spec, metric, table.column("__prediction").to_pylist(), table.column("__label").to_pylist(),
        segments,
    )  # fmt: skip


def _window_bounds(spec: ModelSpec, against: dict) -> tuple[int, int]:
    if set(against) != {"start", "end"}:
        raise ConfigError(
            f"model {spec.name!r}: against must be 'reference', 'previous' or "
            f"{{'start': ..., 'end': ...}}, got keys {sorted(map(str, against))}"
        )
    lo, hi = to_micros(against["start"]), to_micros(against["end"])
    if hi < lo:
        raise ConfigError(f"model {spec.name!r}: against window ends before it starts")
    return lo, hi


def compute_segments(
    store: Store,
    registry: Registry,
    scope: Scope,
    metric: str,
    against: Any = None,
    segment: Any = None,
) -> pd.DataFrame:
    """Rank segment values by their contribution to the metric's change (module docstring).

    ``against``: None (the version's reference when it has labels and predictions and the
    metric is about them, else the previous window of the same length), ``"reference"``,
    ``"previous"`` or ``{"start": ..., "end": ...}``.
    """
    spec = scope.spec
    kind = check_metric(spec, metric)
    columns = segment_columns(spec, segment)
    lo, hi = scope.span
    previous = (lo - (hi - lo), lo)
    base: _Side | None = None
    described: Any
    if isinstance(against, dict):
        alo, ahi = _window_bounds(spec, against)
        described = {"start": from_micros(alo).isoformat(), "end": from_micros(ahi).isoformat()}
    elif against is None or against == "reference":
        alo, ahi = previous
        if metric not in _WINDOW_ONLY:
            base = _side_from_reference(store, registry, spec, metric, scope.version, columns)
        if base is None and against == "reference":
            raise ConfigError(
                f"model {spec.name!r}: version {scope.version!r} has no reference with the "
                f"columns {spec.prediction!r}, {spec.label!r} and {', '.join(map(repr, columns))}"
                + (
                    f"; {metric!r} compares windows: use against='previous'"
                    if metric in _WINDOW_ONLY
                    else ""
                )
            )
        described = "reference" if base is not None else "previous"
    elif against == "previous":
        alo, ahi = previous
        described = "previous"
    else:
        raise ConfigError(
            f"model {spec.name!r}: against must be None, 'reference', 'previous' or "
            f"{{'start': ..., 'end': ...}}, got {against!r}"
        )
    if described == "reference" and kind == COUNT:  # pragma: no cover - excluded above
        raise ConfigError("count compares windows")
    cur = _side_from_window(store, registry, spec, metric, lo, hi, scope.versions, columns)
    if base is None:
        base = _side_from_window(store, registry, spec, metric, alo, ahi, scope.versions, columns)
    lengths = (float(hi - lo), float(ahi - alo))
    frames = [_column_frame(spec, c, kind, cur, base, lengths) for c in columns]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    order = np.lexsort((frame["value"].fillna("").astype(str).to_numpy(), frame["segment"].to_numpy(),
                        -np.nan_to_num(frame["contribution"].abs().to_numpy(), nan=-1.0)))  # fmt: skip
    frame = frame.iloc[order].reset_index(drop=True)
    frame["rows"] = frame["rows"].astype(np.int64)
    frame["rows_against"] = frame["rows_against"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == COUNT:
            total, total_b = float(cur.n), float(base.n)
        else:
            x, bx = cur.x.sum(), base.x.sum()
            total = float(cur.y.sum() / x) if x else math.nan
            total_b = float(base.y.sum() / bx) if bx else math.nan
    frame.attrs = {
        "metric": metric,
        "against": described,
        "total": _finite(total),
        "total_against": _finite(total_b),
        "change": _finite(total - total_b),
    }
    return frame[COLUMNS]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = [
    "COLUMNS",
    "DECOMPOSABLE",
    "check_metric",
    "compute_segments",
    "decomposable",
    "row_terms",
    "segment_columns",
    "two_proportion",
    "welch",
]
