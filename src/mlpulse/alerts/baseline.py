"""Thresholds derived from a baseline: the reference's band, or the previous version.

``baseline: reference``
    The metric's value on the version's reference data (the reference uploaded at
    registration, or the latest earlier version's when this one has none), with a band, as
    NannyML does, from the metric's variability over samples of the reference of the
    current window's size: :data:`RESAMPLES` bootstrap samples of ``rows`` reference rows
    (fixed seed), their standard deviation ``sd``. The reference is a sample too, so the
    band is for the *difference* of two independent samples:
    ``sd_diff = sd * sqrt(1 + rows / n_reference)``. The threshold is
    ``value - tolerance - band * sd_diff`` for ``<``/``<=`` rules and
    ``value + tolerance + band * sd_diff`` for ``>``/``>=``.

    Metrics come from the same functions as ``model.metrics()`` (the catalog's, built on the
    same profile states), so the reference value is what ``model.metrics()`` would show had
    the reference been logged as traffic. ``estimate:<metric>`` is centred on the CBPE
    estimate of the reference itself (what an unchanged window's estimate converges to; it
    can sit a little off the realised value) and banded by the spread of the estimate over
    the bootstrap samples.

    The bootstrap runs at ``m``, ``rows`` rounded to a power of two in
    [:data:`MIN_SAMPLE`, :data:`MAX_SAMPLE`], and is scaled to ``rows`` by ``sqrt(m / rows)``
    (standard errors shrink as ``1 / sqrt(rows)``); results are memoised in the store's
    ``reference_memo`` per (model, reference version, reference upload, metric, m), so a
    round of many rules reads the reference once.

``baseline: previous_version``
    The metric of the version registered just before this one over
    ``[at - baseline_window, at)``; threshold ``value -/+ tolerance`` (no band). ``count``
    is the previous version's mean count per rule window among the windows in which it
    served, so that a 1h rule compares with a typical hour.

A threshold that cannot be derived is NaN (the evaluator then does not judge the rule):
no reference, a reference without the prediction or label columns a metric needs, too few
reference rows, a metric that does not vary over the reference's samples (a perfect or
constant reference has no band), no previous version or too few of its rows. Values with no meaningful
baseline (see :func:`check_baseline`) are refused when the rule is loaded.

>>> import mlpulse, numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> score = rng.uniform(size=2000)
>>> ref = pd.DataFrame({"x": rng.normal(size=2000), "score": score,
...                     "label": (rng.uniform(size=2000) < score).astype(int)})
>>> pulse = mlpulse.connect(":memory:")
>>> model = pulse.model("churn", task="binary", reference=ref, prediction="score")
>>> band = reference_band(pulse.service, model.name, model.version, "accuracy", rows=200)
>>> round(band.value, 3), round(band.sd, 3), band.n_reference
(0.738, 0.033, 2000)
>>> round(band.threshold("<", tolerance=0.0, width=3.0), 3)
0.637
>>> pulse.close()
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._time import MICROS_PER_SECOND, from_micros
from ..errors import ConfigError, RuleError
from ..metrics.catalog import COMMON_METRICS, POSITIVE_RATE, TASK_METRICS
from ..metrics.custom import registered
from ..profiles import build_binary, build_multiclass, build_regression
from ..schema import ModelSpec
from .rules import ANALYSIS_VALUES, Rule

#: Bootstrap samples of the reference behind a band.
RESAMPLES = 200
#: Seed of the bootstrap (bands are deterministic).
SEED = 20260105
#: Bounds of the bootstrap sample size ``m`` (``rows`` rounded to a power of two).
MIN_SAMPLE, MAX_SAMPLE = 16, 512
#: Reference rows the band's bootstrap draws from at most (a uniform subsample beyond);
#: the value itself is always computed on every reference row.
MAX_BAND_ROWS = 200_000

#: Values that have no counterpart in reference data (it has no time, no latency and
#: every row is labeled), or whose own definition is already relative to the reference.
NO_REFERENCE_BASELINE = frozenset(
    {"count", "label_coverage", "latency_p50", "latency_p95", "latency_p99"}
)
#: Value prefixes with no meaningful baseline at all.
NO_BASELINE_PREFIXES = ("drift:", "quality:")


@dataclass(frozen=True)
class Band:
    """A metric's reference value and the standard deviation of ``window - reference`` for a
    window of ``rows`` rows.

    >>> band = Band(value=0.9, sd=0.01, rows=1000, n_reference=5000)
    >>> band.threshold("<", 0.02, 3.0), band.threshold(">=", 0.0, 2.0)
    (0.85, 0.92)
    """

    value: float
    sd: float
    rows: int
    n_reference: int

    def threshold(self, op: str, tolerance: float, width: float) -> float:
        margin = tolerance + width * self.sd
        return _round(self.value - margin if op in ("<", "<=") else self.value + margin)


def _round(x: float) -> float:
    # 12 significant digits: a threshold reads the same on every platform
    return float(f"{x:.12g}") if math.isfinite(x) else math.nan


def check_baseline(rule: Rule) -> None:
    """Refuse a baseline for a value that has none (raises RuleError naming the rule).

    ``drift_share``, ``drift:<column>``, ``quality_violations`` and ``quality:<column>`` are
    already judgements against the reference, so a reference or previous-version baseline
    of them would compare a test result with a test result: give a fixed threshold instead.
    ``count``, ``label_coverage`` and the latency quantiles have no reference counterpart
    (the reference has no time, no latency and labels on every row); they accept
    ``previous_version``.

    >>> from mlpulse.alerts.rules import rule_from_dict
    >>> check_baseline(rule_from_dict({"name": "a", "model": "m", "metric": "drift_share",
    ...                                "op": ">", "baseline": "reference"}))
    Traceback (most recent call last):
    ...
    mlpulse.errors.RuleError: rule 'a': field 'baseline': drift_share is a comparison with the reference already; give a fixed threshold
    """
    if rule.baseline is None:
        return
    metric = rule.metric
    if metric in ANALYSIS_VALUES or metric.startswith(NO_BASELINE_PREFIXES):
        raise RuleError(
            f"rule {rule.name!r}: field 'baseline': {metric} is a comparison with the reference "
            "already; give a fixed threshold"
        )
    if rule.baseline == "reference" and metric in NO_REFERENCE_BASELINE:
        raise RuleError(
            f"rule {rule.name!r}: field 'baseline': reference data has no {metric} (no time, "
            "no latency, every row labeled); use 'previous_version' or a fixed threshold"
        )


def baseline_threshold(
    service: Any, rule: Rule, spec: ModelSpec, version: str, at_us: int, rows: int
) -> tuple[float, float]:
    """``(threshold, baseline_value)`` of a rule with a baseline for one model version at
    ``at_us`` (microseconds), for a current value computed over ``rows`` rows (labeled rows
    for label metrics); ``(nan, nan)`` where no baseline can be derived.

    ``service`` is a :class:`mlpulse.service.Service` (not imported: the service imports the
    alerts package)."""
    nan = (math.nan, math.nan)
    if rule.baseline is None:
        return (float(rule.threshold), math.nan) if rule.threshold is not None else nan
    try:
        check_baseline(rule)
    except RuleError:
        return nan
    if rule.baseline == "reference":
        band = reference_band(service, spec.name, version, rule.metric, rows, rule.segment)
        if band is None:
            return nan
        return band.threshold(rule.op, rule.tolerance, rule.band), band.value
    value = previous_version_value(service, rule, spec, version, at_us)
    if math.isnan(value):
        return nan
    threshold = value - rule.tolerance if rule.op in ("<", "<=") else value + rule.tolerance
    return _round(threshold), value


# -- reference ----------------------------------------------------------------------------


def reference_band(
    service: Any, name: str, version: str, metric: str, rows: int, segment: str | None = None
) -> Band | None:
    """The reference value and band of ``metric`` for windows of ``rows`` rows, or None when
    the reference cannot give one (see the module docstring). With a ``segment``
    (``"column=value"``) the reference's rows of that segment are the baseline, so a slice
    is compared with the same slice of the reference."""
    if not (isinstance(rows, int | np.integer) and rows > 0):
        return None
    store = service.store
    spec = service.registry.get(name)
    found = _reference_of(store, spec, version)
    if found is None:
        return None
    ref, identity = found
    seg = _segment(service, spec, segment)
    if seg is None:
        return None
    m = sample_size(int(rows))
    # the label metrics of a task share one bootstrap (one build of the samples' states)
    family = "labels" if metric in TASK_METRICS[spec.task] else metric
    key = ("baseline_band", spec.model_id, ref, seg, spec.threshold, spec.classes, family, m)
    results = store.reference_memo.get(key, identity) if identity is not None else None
    if results is None:
        data = _reference_data(service, spec, ref, seg, identity)
        results = _bootstrap(service, spec, ref, data, family, m)
        if identity is not None:
            store.reference_memo.put(key, identity, results, size=256 + 64 * len(results))
    value, sd_m, n_ref = results.get(metric, _NONE)
    # a spread of exactly 0 (a perfect or constant reference) is no band: one error would
    # breach it, so the rule is not judged rather than paging on noise
    if not (math.isfinite(value) and math.isfinite(sd_m) and sd_m > 0 and n_ref >= 2):
        return None
    sd = sd_m * math.sqrt(m / rows) * math.sqrt(1.0 + rows / n_ref)
    return Band(value=float(value), sd=float(sd), rows=int(rows), n_reference=int(n_ref))


def _reference_of(store: Any, spec: ModelSpec, version: str) -> tuple[str, Any] | None:
    """(the version whose reference applies, its identity), or None without a reference.

    A version with its own reference is recognised from the profile cache (no query: a
    round of many rules asks this once per rule); others take ``reference_version``'s probe.
    """
    from ..drift.sources import reference_identity, reference_version

    identity = reference_identity(store, spec, version)
    if identity is not None:
        key = ("baseline_reference_rows", spec.model_id, version)
        has_rows = store.reference_memo.get(key, identity)
        if has_rows is None:
            has_rows = reference_version(store, spec, version) == version
            store.reference_memo.put(key, identity, has_rows, size=64)
        if has_rows:
            return version, identity
    ref = reference_version(store, spec, version)
    if ref is None:
        return None
    return ref, reference_identity(store, spec, ref)


def sample_size(rows: int) -> int:
    """``rows`` rounded to the nearest power of two within [MIN_SAMPLE, MAX_SAMPLE].

    >>> [sample_size(n) for n in (1, 100, 1000, 10**6)]
    [16, 128, 512, 512]
    """
    power = 2 ** round(math.log2(max(rows, 1)))
    return int(min(MAX_SAMPLE, max(MIN_SAMPLE, power)))


@dataclass(frozen=True)
class _Reference:
    """The reference's prediction and label as the ingest path would store them."""

    y_true: np.ndarray | None  # labeled rows with a valid prediction
    y_pred: np.ndarray | None  # their predictions
    raw_true: np.ndarray | None  # the same rows as custom metrics see them
    raw_pred: np.ndarray | None
    scores: np.ndarray | None  # every valid prediction (labels not needed)


def _segment(service: Any, spec: ModelSpec, segment: str | None) -> str | None:
    """The parsed segment ('' for all rows), or None when the reference cannot be cut by it
    (an unknown segment, or a reference without that column)."""
    from ..engine.query import parse_segment
    from ..store.registry import reference_table

    if not segment:
        return ""
    try:
        parsed = parse_segment(spec, segment)
    except ConfigError:
        return None
    column = parsed.split("=", 1)[0]
    return parsed if column in service.store.table_columns(reference_table(spec)) else None


def _reference_data(
    service: Any, spec: ModelSpec, ref: str, segment: str, identity: Any
) -> _Reference:
    from ..drift.sources import model_columns, reference_rows

    store = service.store
    key = ("baseline_data", spec.model_id, ref, segment, spec.classes)
    found = store.reference_memo.get(key, identity) if identity is not None else None
    if found is not None:
        return found
    columns = [c for c in model_columns(spec) if c.role != "feature"]
    table = reference_rows(store, service.registry, spec, ref, columns, segment)
    found = _clean_pairs(spec, table)
    if identity is not None:
        size = sum(a.nbytes for a in vars(found).values() if isinstance(a, np.ndarray))
        store.reference_memo.put(key, identity, found, size=size + 4096)
    return found


def _clean_pairs(spec: ModelSpec, table: pa.Table) -> _Reference:
    """Valid predictions and labels, by the rules of ``validate_predictions`` and
    ``validate_feedback`` (rows the ingest path would quarantine are left out)."""
    from ..engine.validate import to_float, to_string

    have = set(table.column_names)
    pred: np.ndarray | None = None
    pred_ok: np.ndarray | None = None
    if spec.prediction in have:
        source = table.column(spec.prediction)
        if spec.task == "multiclass":
            strings, malformed = to_string(source)
            pred = np.asarray(strings.to_numpy(zero_copy_only=False), dtype=object)
            pred_ok = _text_ok(strings, malformed, spec.classes)
        else:
            values, null, malformed = to_float(source)
            with np.errstate(invalid="ignore"):
                pred_ok = ~(null | malformed) & np.isfinite(values)
                if spec.task == "binary":
                    pred_ok &= (values >= 0.0) & (values <= 1.0)
            pred = values
    scores = pred[pred_ok] if pred is not None and pred_ok is not None else None
    if pred is None or pred_ok is None or spec.label not in have:
        return _Reference(None, None, None, None, scores)
    source = table.column(spec.label)
    if spec.task == "multiclass":
        strings, malformed = to_string(source)
        label: np.ndarray = np.asarray(strings.to_numpy(zero_copy_only=False), dtype=object)
        ok = pred_ok & _text_ok(strings, malformed, spec.classes)
    else:
        if spec.task == "binary" and (
            pa.types.is_string(source.type) or pa.types.is_large_string(source.type)
        ):
            lowered = pc.utf8_lower(pc.utf8_trim_whitespace(source))
            source = pc.replace_substring_regex(
                pc.replace_substring_regex(lowered, "^true$", "1"), "^false$", "0"
            )
        label, null, malformed = to_float(source)
        with np.errstate(invalid="ignore"):
            ok = pred_ok & ~(null | malformed) & np.isfinite(label)
            if spec.task == "binary":
                ok &= (label == 0.0) | (label == 1.0)
    y_true, y_pred = label[ok], pred[ok]
    if spec.task != "multiclass":
        # ordered by prediction: sorted bootstrap indices then give sorted scores, which
        # the state builders group fastest (the multiset of each sample is unchanged)
        order = np.argsort(y_pred, kind="stable")
        y_true, y_pred = y_true[order], y_pred[order]
    if spec.task == "binary":
        y_true = y_true.astype(np.int64)
    return _Reference(y_true, y_pred, label[ok], pred[ok], scores)


def _text_ok(
    strings: pa.Array, malformed: np.ndarray, classes: tuple[str, ...] | None
) -> np.ndarray:
    length = pc.fill_null(pc.utf8_length(strings), 0).to_numpy(zero_copy_only=False)
    ok = (np.asarray(length) > 0) & ~malformed
    if classes is not None:
        ok &= np.asarray(
            pc.is_in(strings, value_set=pa.array(list(classes))).to_numpy(zero_copy_only=False),
            bool,
        )
    return ok


_NONE = (math.nan, math.nan, 0)


def _bootstrap(
    service: Any, spec: ModelSpec, ref: str, data: _Reference, family: str, m: int
) -> dict[str, tuple[float, float, int]]:
    """metric -> ``(reference value, sd of the metric over bootstrap samples of m rows, n)``
    for the metrics of ``family`` (``labels``: every label metric of the task; else the one
    metric); empty where the reference lacks what they need."""
    rng = np.random.default_rng(SEED)
    if family.startswith("estimate:"):
        name = family[len("estimate:") :]
        return {family: _estimate_bootstrap(service, spec, ref, data, name, m, rng)}
    if family in ("prediction_mean", POSITIVE_RATE):
        x = data.scores
        if x is None or len(x) < 2 or spec.task == "multiclass":
            return {}
        if family == POSITIVE_RATE:
            if spec.task != "binary":
                return {}
            x = (x >= spec.threshold).astype(np.float64)
        idx = _indices(rng, len(x), m)
        return {family: (float(np.mean(x)), _sd(x[idx].mean(axis=1)), len(x))}
    if data.y_true is None or data.y_pred is None or len(data.y_true) < 2:
        return {}
    n = len(data.y_true)
    idx = _indices(rng, n, m)
    if family == "labels":
        whole = _states(spec, data.y_true, data.y_pred, np.zeros(n, np.int64), 1)[0]
        group = np.repeat(np.arange(RESAMPLES, dtype=np.int64), m)
        flat = idx.ravel()
        states = _states(spec, data.y_true[flat], data.y_pred[flat], group, RESAMPLES)
        return {
            name: (float(fn(whole)), _sd(np.array([fn(s) for s in states], np.float64)), n)
            for name, fn in TASK_METRICS[spec.task].items()
        }
    custom = registered().get(family)
    if custom is None or data.raw_true is None or data.raw_pred is None:
        return {}
    try:
        value = float(custom(data.raw_true, data.raw_pred))
        draws = np.array([float(custom(data.raw_true[i], data.raw_pred[i])) for i in idx])
    except Exception:  # a user's function: a failure means no baseline, not a failed round
        return {}
    return {family: (value, _sd(draws), n)}


def _indices(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """RESAMPLES x m row indices drawn with replacement from ``n`` rows (from a uniform
    subsample of MAX_BAND_ROWS rows when there are more), each sample's ascending."""
    if n > MAX_BAND_ROWS:
        pool = rng.choice(n, MAX_BAND_ROWS, replace=False)
        return np.sort(pool[rng.integers(0, MAX_BAND_ROWS, size=(RESAMPLES, m))], axis=1)
    return np.sort(rng.integers(0, n, size=(RESAMPLES, m)), axis=1)


def _sd(draws: np.ndarray) -> float:
    """Standard deviation of the finite draws (a metric undefined in a sample, say ROC AUC
    with one class, is left out); NaN with fewer than half of them finite."""
    finite = draws[np.isfinite(draws)]
    if len(finite) < len(draws) / 2:
        return math.nan
    return float(np.std(finite, ddof=1))


def _states(
    spec: ModelSpec, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, g: int
) -> list[Any]:
    """Labeled states per group, built as the ingest path builds them."""
    if spec.task == "binary":
        return build_binary(y_true, y_pred, group, g, spec.threshold)
    if spec.task == "multiclass":
        return build_multiclass(y_true, y_pred, group, g)
    return build_regression(y_true, y_pred, group, g)


def _estimate_bootstrap(
    service: Any,
    spec: ModelSpec,
    ref: str,
    data: _Reference,
    name: str,
    m: int,
    rng: np.random.Generator,
) -> tuple[float, float, int]:
    """CBPE's point estimate on the reference (the centre) and its spread over bootstrap
    samples of m reference scores, all samples at once."""
    from ..estimation.cbpe import MAX_POINTS, METRICS, _auc, _metrics
    from ..estimation.compute import calibrator

    none = _NONE
    if spec.task != "binary" or name not in METRICS or data.scores is None or len(data.scores) < 2:
        return none
    try:
        est = calibrator(service.store, service.registry, spec, ref)
    except (ConfigError, ValueError):  # no labels in the reference, or a single class
        return none
    scores = data.scores
    values, inverse = np.unique(scores, return_inverse=True)
    if len(values) > MAX_POINTS:
        values, inverse = np.unique(np.round(scores, 4), return_inverse=True)
    p = est.calibrated(values)
    positive = values >= est.threshold
    value = float(est.estimate(scores)[name].value)
    idx = _indices(rng, len(scores), m)
    draws = []
    width = len(values)
    for rows in np.array_split(np.arange(RESAMPLES), max(1, RESAMPLES * width // 2_000_000)):
        # weights per distinct score, one row per sample
        cells = (np.arange(len(rows))[:, None] * width + inverse[idx[rows]]).ravel()
        w = (
            np.bincount(cells, minlength=len(rows) * width)
            .reshape(len(rows), width)
            .astype(np.float64)
        )
        if name == "roc_auc":
            draws.append(_auc(w * p, w * (1 - p)))
        else:
            tp, fp = (w * (p * positive)).sum(1), (w * ((1 - p) * positive)).sum(1)
            fn, tn = (w * (p * ~positive)).sum(1), (w * ((1 - p) * ~positive)).sum(1)
            draws.append(_metrics(tp, fp, fn, tn)[name])
    return value, _sd(np.concatenate(draws)), len(scores)


# -- previous version ---------------------------------------------------------------------


def previous_version_value(
    service: Any, rule: Rule, spec: ModelSpec, version: str, at_us: int
) -> float:
    """The rule's value for the version registered just before ``version`` over
    ``[at - baseline_window, at)``; NaN with no previous version or too few rows."""
    versions = service.versions(spec.name)
    if version not in versions or versions.index(version) == 0:
        return math.nan
    previous = versions[versions.index(version) - 1]
    start = from_micros(at_us - int(rule.baseline_window * MICROS_PER_SECOND))
    end = from_micros(at_us)
    metric = rule.metric
    need = max(rule.min_rows or 1, 1)
    if metric.startswith("estimate:"):
        try:
            frame = service.estimate(
                spec.name,
                previous,
                metric[len("estimate:") :],
                start=start,
                end=end,
                segment=rule.segment,
            )
        except ConfigError:
            return math.nan
        column = metric[len("estimate:") :]
        rows = frame["n"]
    elif metric == "count":
        frame = service.metrics(
            spec.name,
            previous,
            ["count"],
            start=start,
            end=end,
            step=f"{int(rule.window)}s",
            segment=rule.segment,
        )
        served = frame[frame["n"] > 0]
        if int(served["n"].sum()) < need:
            return math.nan
        return float(served["count"].mean())
    else:
        frame = service.metrics(
            spec.name, previous, [metric], start=start, end=end, segment=rule.segment
        )
        column = metric
        labeled = metric not in COMMON_METRICS and metric != POSITIVE_RATE
        rows = frame["n_labeled"] if labeled else frame["n"]
    if frame.empty or int(rows.iloc[0]) < need:
        return math.nan
    value = float(frame[column].iloc[0])
    return value if math.isfinite(value) else math.nan


__all__ = [
    "Band",
    "MAX_SAMPLE",
    "MIN_SAMPLE",
    "RESAMPLES",
    "baseline_threshold",
    "check_baseline",
    "previous_version_value",
    "reference_band",
    "sample_size",
]
