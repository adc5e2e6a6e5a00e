"""What a report shows, gathered from a :class:`~mlpulse.service.Service`: the window's
metrics and label-free estimates (overall and over time), drift, quality, and reference vs
current distributions binned from the profiles' sketches (never raw rows).

>>> from mlpulse.drift.samples import Counts, NumericSample
>>> import numpy as np
>>> d = distribution(NumericSample.from_values(np.arange(100.0)),
...                  NumericSample.from_values(np.arange(50.0, 150.0)), bins=4)
>>> d["kind"], len(d["x"]), round(sum(d["reference"]), 6), round(sum(d["current"]), 6)
('numeric', 4, 1.0, 1.0)
>>> c = distribution(Counts({"a": 3, "b": 1}), Counts({"a": 1, "c": 1}))
>>> c["x"], c["reference"], c["current"]
(['a', 'c', 'b'], [0.75, 0.0, 0.25], [0.5, 0.5, 0.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._time import from_micros, parse_duration
from ..drift.report import DriftReport
from ..drift.samples import Counts, NumericSample
from ..errors import MlpulseError

#: The metrics a report leads with, per task (the first is the key SLI).
KEY_METRICS = {
    "binary": ["accuracy", "f1", "roc_auc"],
    "multiclass": ["accuracy", "f1_macro"],
    "regression": ["mae", "rmse", "r2"],
}
#: Steps a report's timeline may take, finest first.
STEPS = ["1m", "5m", "15m", "30m", "1h", "2h", "6h", "12h", "1d", "7d", "30d"]
#: Most windows on a report's time axis.
MAX_POINTS = 60
#: Bins of a numeric histogram; categories shown before the rest is pooled.
BINS = 30
TOP_CATEGORIES = 20
OTHER_LABEL = "(other)"


@dataclass
class ReportData:
    """Everything one report renders; ``notes`` say what could not be computed and why."""

    model: str
    version: str
    task: str
    start: pd.Timestamp
    end: pd.Timestamp
    step: str | None
    metrics: list[str]
    overall: pd.DataFrame
    timeline: pd.DataFrame | None = None
    estimate: pd.DataFrame | None = None
    estimate_overall: pd.DataFrame | None = None
    drift: DriftReport | None = None
    quality: Any = None  # QualityReport
    distributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str = ""


def auto_step(lo_us: int, hi_us: int) -> str | None:
    """The finest step that puts at most :data:`MAX_POINTS` windows on ``[lo, hi)``; None
    when the span holds fewer than two windows of the finest step."""
    span = hi_us - lo_us
    for step in STEPS:
        width = parse_duration(step)
        if span / width <= MAX_POINTS:
            return step if span >= 2 * width else None
    return STEPS[-1]


def distribution(ref: Any, cur: Any, *, bins: int = BINS, top: int = TOP_CATEGORIES) -> dict | None:
    """Reference and current shares of one column, from samples of profiles
    (:class:`NumericSample` from a KLL sketch, or :class:`Counts`).

    Numeric: ``bins`` equal bins between the lower 1% and upper 99% quantiles of both sides
    (the tails fold into the end bins). Categorical: the ``top`` categories by pooled share,
    the rest as ``(other)``."""
    if ref is None or cur is None or ref.n == 0 or cur.n == 0:
        return None
    if isinstance(ref, NumericSample) and isinstance(cur, NumericSample):
        q = np.array([0.01, 0.99])
        lo = float(min(ref.quantiles(q)[0], cur.quantiles(q)[0]))
        hi = float(max(ref.quantiles(q)[1], cur.quantiles(q)[1]))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return None
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        inner = edges[1:-1]

        def shares(sample: NumericSample) -> list[float]:
            cdf = np.concatenate([[0.0], sample.cdf(inner, side="left"), [1.0]])
            return np.diff(cdf).clip(0, 1).tolist()

        width = (hi - lo) / bins
        return {
            "kind": "numeric",
            "x": [float(f"{v:.6g}") for v in (edges[:-1] + width / 2)],
            "width": float(f"{width:.6g}"),
            "edges": [float(lo), float(hi)],
            "reference": shares(ref),
            "current": shares(cur),
            "n_reference": int(ref.n),
            "n_current": int(cur.n),
        }
    if isinstance(ref, Counts) and isinstance(cur, Counts):
        pooled: dict[str, float] = {}
        for side in (ref, cur):
            for k, v in side.counts.items():
                pooled[k] = pooled.get(k, 0.0) + v / side.n
        names = sorted(pooled, key=lambda k: (-pooled[k], k))
        shown, rest = names[:top], names[top:]
        out_ref = (ref.vector(shown) / ref.n).tolist()
        out_cur = (cur.vector(shown) / cur.n).tolist()
        if rest:
            shown = [*shown, OTHER_LABEL]
            out_ref.append(float(ref.vector(rest).sum() / ref.n))
            out_cur.append(float(cur.vector(rest).sum() / cur.n))
        return {
            "kind": "categorical",
            "x": shown,
            "width": None,
            "reference": out_ref,
            "current": out_cur,
            "n_reference": int(ref.n),
            "n_current": int(cur.n),
            "categories": len(names),
        }
    return None


def distributions(service: Any, name: str, version: str, start: Any, end: Any,
                  segment: Any = None) -> dict[str, dict[str, Any]]:
    """Column -> :func:`distribution` of the reference against ``[start, end)``, from the
    reference's profile and the window's merged profiles."""
    from ..drift.sources import (
        model_columns,
        reference_states,
        reference_version,
        state_sample,
        window_states,
    )

    scope = service.scope(name, version, start=start, end=end, segment=segment)
    spec = scope.spec
    ref_version = reference_version(service.store, spec, version)
    if ref_version is None:
        return {}
    ref = reference_states(service.store, service.registry, spec, ref_version)
    [cur] = window_states(service.store, service.registry, spec, [scope.span], scope.versions,
                          scope.segment_key)  # fmt: skip
    out = {}
    for column in model_columns(spec):
        d = distribution(state_sample(ref.get(column.name), column),
                         state_sample(cur.get(column.name), column))  # fmt: skip
        if d is not None:
            out[column.name] = d
    return out


def _try(notes: list[str], what: str, call: Any) -> Any:
    try:
        return call()
    except MlpulseError as exc:
        notes.append(f"{what}: {exc}")
        return None


def collect(
    service: Any,
    name: str,
    version: str,
    *,
    start: Any,
    end: Any,
    step: Any = "auto",
    segment: Any = None,
    metrics: list[str] | None = None,
    source: str = "",
) -> ReportData:
    """Gather a report of ``name``/``version`` over ``[start, end)`` (``step="auto"``: a
    timeline of at most :data:`MAX_POINTS` windows; None: no timeline)."""
    spec = service.spec(name)
    scope = service.scope(name, version, start=start, end=end, segment=segment)
    lo, hi = scope.span
    if step == "auto":
        step = auto_step(lo, hi)
    start_t, end_t = from_micros(lo), from_micros(hi)
    key = list(metrics) if metrics else KEY_METRICS[spec.task]
    notes: list[str] = []
    window = {"start": start_t, "end": end_t, "segment": segment}
    overall = service.metrics(name, version, ["count", "label_coverage", *key], **window)
    data = ReportData(
        model=name, version=version, task=spec.task, start=pd.Timestamp(start_t),
        end=pd.Timestamp(end_t), step=step, metrics=key, overall=overall, notes=notes,
        source=source,
    )  # fmt: skip
    estimable = [m for m in key if m in ESTIMABLE.get(spec.task, ())]
    if estimable:
        data.estimate_overall = _try(
            notes, "estimate", lambda: service.estimate(name, version, estimable, **window)
        )
    if step is not None:
        data.timeline = service.metrics(name, version, key, step=step, **window)
        if estimable and data.estimate_overall is not None:
            data.estimate = _try(
                notes, "estimate over time",
                lambda: service.estimate(name, version, estimable, step=step, band=True, **window),
            )  # fmt: skip
    n = int(overall["n"].iloc[0]) if len(overall) else 0
    if n:
        data.drift = _try(notes, "drift", lambda: service.drift(name, version, **window))
        data.quality = _try(notes, "quality", lambda: service.quality(name, version, **window))
        if data.drift is not None:
            data.distributions = distributions(service, name, version, start_t, end_t, segment)
    else:
        notes.append("no predictions in the window: no drift or quality")
    return data


#: Metrics the label-free estimator (CBPE) gives, per task (binary models only).
ESTIMABLE = {"binary": ("accuracy", "precision", "recall", "f1", "roc_auc")}
