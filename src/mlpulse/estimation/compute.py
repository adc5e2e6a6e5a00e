"""``model.estimate``: label-free performance estimates per window, as a metrics frame.

Binary models get CBPE (:mod:`.cbpe`), multiclass models multiclass CBPE
(:mod:`.multiclass`), regression models direct loss estimation (:mod:`.dle`). Every frame
ends with ``estimate_warning`` and ``estimate_reason`` (:mod:`.honesty`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._time import from_micros
from ..engine.scope import Scope
from ..errors import ConfigError, UnknownMetricError
from ..schema import ModelSpec
from ..store.database import Store
from ..store.registry import Registry
from . import dle as dle_mod
from . import honesty
from . import multiclass as mc_mod
from .cbpe import CBPE, METRICS, Estimate

#: Estimable metrics per task.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": METRICS,
    "multiclass": mc_mod.METRICS,
    "regression": dle_mod.METRICS,
}
WARNING, REASON = "estimate_warning", "estimate_reason"


def _reference_table(store: Store, registry: Registry, spec: ModelSpec, version: str, roles: set):
    from ..drift.sources import model_columns, reference_identity, reference_rows, reference_version

    ref = reference_version(store, spec, version)
    if ref is None:
        raise ConfigError(
            f"model {spec.name!r}: estimation needs reference data with the prediction "
            f"{spec.prediction!r} and label {spec.label!r} columns"
        )
    cols = [c for c in model_columns(spec) if c.role in roles]
    table = reference_rows(store, registry, spec, ref, cols)
    if spec.prediction not in table.column_names or spec.label not in table.column_names:
        raise ConfigError(
            f"model {spec.name!r}: the reference lacks the prediction {spec.prediction!r} or "
            f"the label {spec.label!r} column, which estimation learns from"
        )
    return ref, reference_identity(store, spec, ref), table


def _memoised(store: Store, key: tuple, identity: Any, build, size: int) -> Any:
    found = store.reference_memo.get(key, identity) if identity is not None else None
    if found is None:
        found = build()
        if identity is not None:
            store.reference_memo.put(key, identity, found, size=size)
    return found


def calibrator(store: Store, registry: Registry, spec: ModelSpec, version: str) -> CBPE:
    """A CBPE fitted on the version's reference scores and labels (memoised on the store
    while the reference is unchanged)."""
    from ..engine.validate import to_float

    ref, identity, table = _reference_table(store, registry, spec, version, {"prediction", "label"})

    def build() -> CBPE:
        scores = to_float(table.column(spec.prediction))[0]
        labels = to_float(table.column(spec.label))[0]
        return CBPE(threshold=spec.threshold).fit(scores, labels)

    key = ("calibrator", spec.model_id, ref, spec.threshold)
    return _memoised(store, key, identity, build, table.nbytes + 4096)


def probability_columns(spec: ModelSpec, classes: Sequence[str]) -> list[str] | None:
    """The ``proba_<class>`` feature of every class, in class order, if all are there."""
    names = [f"{mc_mod.PROBA_PREFIX}{c}" for c in classes]
    numeric = {c for c, kind in spec.features.items() if kind == "numeric"}
    return names if classes and all(n in numeric for n in names) else None


def _classes(spec: ModelSpec, table: Any) -> list[str]:
    if spec.classes:
        return sorted(str(c) for c in spec.classes)
    seen: set[str] = set()
    for name in (spec.prediction, spec.label):
        seen.update(str(v) for v in table.column(name).drop_null().to_pylist())
    return sorted(seen)


def multiclass_estimator(
    store: Store, registry: Registry, spec: ModelSpec, version: str
) -> tuple[mc_mod.MulticlassCBPE, list[str] | None]:
    """Multiclass CBPE fitted on the reference, and its probability columns (or None)."""
    ref, identity, table = _reference_table(
        store, registry, spec, version, {"prediction", "label", "feature"}
    )

    def build() -> tuple[mc_mod.MulticlassCBPE, list[str] | None]:
        frame = table.to_pandas()
        frame = frame[frame[spec.label].notna() & frame[spec.prediction].notna()]
        classes = _classes(spec, table)
        proba = probability_columns(spec, classes)
        est = mc_mod.MulticlassCBPE().fit(
            frame[spec.prediction].astype(str).to_numpy(),
            frame[spec.label].astype(str).to_numpy(),
            frame[proba].to_numpy(np.float64) if proba else None,
            classes=classes,
        )
        return est, proba

    key = ("multiclass-cbpe", spec.model_id, ref)
    return _memoised(store, key, identity, build, table.nbytes + 4096)


def loss_estimator(store: Store, registry: Registry, spec: ModelSpec, version: str) -> dle_mod.DLE:
    """DLE fitted on the version's reference features, predictions and labels (memoised)."""
    ref, identity, table = _reference_table(
        store, registry, spec, version, {"prediction", "label", "feature"}
    )

    def build() -> dle_mod.DLE:
        frame = table.to_pandas()
        features = frame[[c for c in spec.features if c in frame.columns]]
        categorical = [c for c, kind in spec.features.items() if kind == "categorical"]
        return dle_mod.DLE().fit(
            features,
            pd.to_numeric(frame[spec.prediction], errors="coerce").to_numpy(np.float64),
            pd.to_numeric(frame[spec.label], errors="coerce").to_numpy(np.float64),
            categorical=categorical,
        )

    key = ("dle", spec.model_id, ref)
    return _memoised(store, key, identity, build, table.nbytes * 4 + 65536)


def compute_estimate(
    store: Store,
    registry: Registry,
    scope: Scope,
    names: Sequence[str] | str | None,
    *,
    mode: str = "sketch",
    band: bool = False,
) -> pd.DataFrame:
    """window_start, window_end, n, n_labeled, <metrics> (and <metric>_lower/_upper with
    ``band=True``), estimate_warning, estimate_reason; the band is always in
    ``frame.attrs["band"]``."""
    from ..engine.query import WindowQuery
    from ..profiles.bucket import CORE, LABELED

    spec = scope.spec
    estimable = TASK_METRICS[spec.task]
    if isinstance(names, str):
        names = [names]
    names = list(names) if names is not None else list(estimable)
    for name in names:
        if name not in estimable:
            raise UnknownMetricError(
                f"model {spec.name!r} ({spec.task}): cannot estimate {name!r}; estimable: "
                f"{', '.join(estimable)}"
            )
    if mode not in ("sketch", "exact"):
        raise ConfigError(f"mode must be 'sketch' or 'exact', got {mode!r}")
    bounds = scope.bounds
    decode = {LABELED} if spec.task == "binary" else set()
    merged = WindowQuery(store, registry, spec).merged(
        bounds, [CORE, LABELED], versions=scope.versions, segment=scope.segment_key, decode=decode
    )
    counts = [int(m[f"n_{CORE}"]) for m in merged]
    labeled_counts = [int(m[f"n_{LABELED}"]) for m in merged]
    if spec.task == "binary":
        results, checks, level = _binary(store, registry, scope, mode, merged, labeled_counts)
    elif spec.task == "multiclass":
        results, checks, level = _multiclass(store, registry, scope)
    else:
        results, checks, level = _regression(store, registry, scope)
    drift = honesty.drift_reasons(store, registry, scope, bounds, counts, mode)
    reasons = [honesty.combine(d, c) for d, c in zip(drift, checks, strict=True)]

    data: dict[str, Any] = {
        "window_start": pd.to_datetime([from_micros(lo) for lo, _ in bounds], utc=True),
        "window_end": pd.to_datetime([from_micros(hi) for _, hi in bounds], utc=True),
        "n": np.asarray(counts, dtype=np.int64),
        "n_labeled": np.asarray(labeled_counts, dtype=np.int64),
    }
    lower = {m: [r[m].lower for r in results] for m in names}
    upper = {m: [r[m].upper for r in results] for m in names}
    for m in names:
        data[m] = np.asarray([r[m].value for r in results], dtype=np.float64)
    cols = ["window_start", "window_end", "n", "n_labeled", *names]
    if band:
        for m in names:
            data[f"{m}_lower"] = np.asarray(lower[m], dtype=np.float64)
            data[f"{m}_upper"] = np.asarray(upper[m], dtype=np.float64)
        cols += [f"{m}_{side}" for m in names for side in ("lower", "upper")]
    data[WARNING] = np.asarray([bool(r) for r in reasons], dtype=bool)
    data[REASON] = pd.Series(reasons, dtype="str")
    cols += [WARNING, REASON]
    frame = pd.DataFrame(data, columns=cols)
    frame.attrs["band"] = {m: (lower[m], upper[m]) for m in names}
    frame.attrs["level"] = level
    return frame


def _realised(name: str, task: str, state: Any, metric: Any) -> tuple[float, float, float]:
    """A labeled state's metric and its 95% confidence interval (NaN bounds where the
    metric has none)."""
    from ..metrics import confidence

    lower, upper = confidence.interval(name, task, None, state, state.n, state.n, 0.95)
    return float(metric(state)), lower, upper


def _nan_estimates(metrics: Sequence[str]) -> dict[str, Estimate]:
    return {m: Estimate(math.nan, math.nan, math.nan) for m in metrics}


def _binary(store, registry, scope, mode, merged, labeled_counts):
    from ..drift.samples import NumericSample
    from ..drift.sources import Column, window_rows, window_states
    from ..metrics.builtin import BINARY_METRICS
    from ..profiles.bucket import LABELED
    from ..profiles.classification import N_SCORE_BINS

    spec, versions, seg, bounds = scope.spec, scope.versions, scope.segment_key, scope.bounds
    est = calibrator(store, registry, spec, scope.version)
    states = window_states(store, registry, spec, bounds, versions, seg) if mode == "sketch" else []
    pred = Column(spec.prediction, "numeric", "prediction")
    results, checks = [], []
    for i, (lo, hi) in enumerate(bounds):
        if mode == "exact":
            table = window_rows(store, registry, spec, [pred], lo, hi, versions, seg)
            scores = (
                table.column(spec.prediction).to_numpy(zero_copy_only=False).astype(np.float64)
                if table.num_rows
                else np.zeros(0)
            )
            results.append(est.estimate(scores))
        else:
            state = states[i].get(spec.prediction)
            if state is None or state.count == 0:
                results.append(est.estimate(np.zeros(0)))
            else:
                sample = NumericSample.from_state(state)
                results.append(est.estimate(sample.values, sample.weights))
        labeled = merged[i][LABELED]
        if labeled is None or labeled_counts[i] < honesty.MIN_LABELED:
            checks.append("")
            continue
        # the estimator on exactly the labeled rows, against what they realised
        values, pos, neg = labeled.score_table()
        scores = (
            np.asarray(values, dtype=np.float64)
            if labeled.exact is not None
            else (np.asarray(values, dtype=np.float64) + 0.5) / N_SCORE_BINS
        )
        on_labeled = est.estimate(scores, (pos + neg).astype(np.float64))
        realised = {m: _realised(m, "binary", labeled, BINARY_METRICS[m]) for m in METRICS}
        checks.append(
            honesty.disagreement(realised, on_labeled, labeled_counts[i], est.n_reference)
        )
    return results, checks, est.level


def _window_frame(store, registry, scope, lo: int, hi: int, columns: list) -> pd.DataFrame:
    from ..drift.sources import window_rows

    spec = scope.spec
    table = window_rows(store, registry, spec, columns, lo, hi, scope.versions, scope.segment_key)
    return table.to_pandas()


def _multiclass(store, registry, scope):
    from ..drift.sources import Column
    from ..metrics.builtin import MULTICLASS_METRICS
    from ..profiles.classification import MulticlassState

    spec = scope.spec
    est, proba = multiclass_estimator(store, registry, spec, scope.version)
    columns = [
        *(Column(c, "numeric", "feature") for c in proba or ()),
        Column(spec.prediction, "categorical", "prediction"),
        Column(spec.label, "categorical", "label"),
    ]
    results, checks = [], []
    for lo, hi in scope.bounds:
        frame = _window_frame(store, registry, scope, lo, hi, columns)
        if frame.empty or spec.prediction not in frame:
            results.append(_nan_estimates(mc_mod.METRICS))
            checks.append("")
            continue
        frame = frame[frame[spec.prediction].notna()]
        predicted = frame[spec.prediction].astype(str).to_numpy()
        probabilities = frame[proba].to_numpy(np.float64) if proba else None
        results.append(est.estimate(predicted, probabilities))
        labeled = frame[frame[spec.label].notna()] if spec.label in frame else frame.iloc[:0]
        if len(labeled) < honesty.MIN_LABELED:
            checks.append("")
            continue
        on_labeled = est.estimate(
            labeled[spec.prediction].astype(str).to_numpy(),
            labeled[proba].to_numpy(np.float64) if proba else None,
        )
        state = MulticlassState()
        state.update(
            labeled[spec.label].astype(str).to_numpy(dtype=object),
            labeled[spec.prediction].astype(str).to_numpy(dtype=object),
        )
        realised = {
            m: _realised(m, "multiclass", state, MULTICLASS_METRICS[m]) for m in mc_mod.METRICS
        }
        checks.append(honesty.disagreement(realised, on_labeled, len(labeled), est.n_reference))
    return results, checks, est.level


def _regression(store, registry, scope):
    from ..drift.sources import Column
    from ..metrics.builtin import REGRESSION_METRICS
    from ..profiles.regression import RegressionState

    spec = scope.spec
    est = loss_estimator(store, registry, spec, scope.version)
    columns = [
        *(Column(c, kind, "feature") for c, kind in spec.features.items()),
        Column(spec.prediction, "numeric", "prediction"),
        Column(spec.label, "numeric", "label"),
    ]
    results, checks = [], []
    for lo, hi in scope.bounds:
        frame = _window_frame(store, registry, scope, lo, hi, columns)
        if frame.empty or spec.prediction not in frame:
            results.append(_nan_estimates(dle_mod.METRICS))
            checks.append("")
            continue
        prediction = pd.to_numeric(frame[spec.prediction], errors="coerce").to_numpy(np.float64)
        results.append(est.estimate(frame, prediction))
        label = (
            pd.to_numeric(frame[spec.label], errors="coerce").to_numpy(np.float64)
            if spec.label in frame
            else np.full(len(frame), np.nan)
        )
        has = np.isfinite(label) & np.isfinite(prediction)
        if has.sum() < honesty.MIN_LABELED:
            checks.append("")
            continue
        on_labeled = est.estimate(frame.loc[has], prediction[has])
        state = RegressionState()
        state.update(label[has], prediction[has])
        realised = {
            m: _realised(m, "regression", state, REGRESSION_METRICS[m]) for m in dle_mod.METRICS
        }
        checks.append(honesty.disagreement(realised, on_labeled, int(has.sum()), est.n_reference))
    return results, checks, est.level


__all__ = [
    "CBPE",
    "REASON",
    "TASK_METRICS",
    "WARNING",
    "calibrator",
    "compute_estimate",
    "loss_estimator",
    "multiclass_estimator",
]
