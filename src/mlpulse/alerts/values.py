"""The value a rule judges: one number of one model over the window ending at evaluation time.

Rules that read the same model, version, segment and window at the same time share one
query per analysis: one ``metrics()`` call for every metric they name, one drift report, one
quality report, one estimate, so a round of many rules costs a few queries per model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._time import from_micros
from ..errors import MlpulseError
from ..metrics.catalog import UNLABELED

#: How many rows back a value by default: a window with none is not judged.
DEFAULT_MIN_ROWS = 1


@dataclass(frozen=True)
class Value:
    """A rule's value and the rows behind it (labeled rows for label metrics); ``note``
    says why there is no value."""

    value: float
    rows: int
    note: str | None = None


def kind(metric: str) -> str:
    """Which analysis computes ``metric``: metrics, drift, quality or estimate."""
    if metric == "drift_share" or metric.startswith("drift:"):
        return "drift"
    if metric == "quality_violations" or metric.startswith("quality:"):
        return "quality"
    if metric.startswith("estimate:"):
        return "estimate"
    return "metrics"


def group_values(
    service: Any,
    model: str,
    version: str,
    segment: str | None,
    window_us: int,
    at_us: int,
    metrics: Iterable[str],
) -> dict[str, Value]:
    """Values of ``metrics`` for ``model``/``version``/``segment`` over ``[at - window, at)``."""
    wanted = sorted(set(metrics))
    start, end = from_micros(at_us - window_us), from_micros(at_us)
    out: dict[str, Value] = {}
    plain = [m for m in wanted if kind(m) == "metrics"]
    common: dict[str, Any] = {"start": start, "end": end, "segment": segment}
    try:
        frame = service.metrics(model, version, ["count", *[m for m in plain if m != "count"]], **common)
    except MlpulseError as exc:
        frame = None
        counts_note = str(exc)
        if len(plain) > 1:  # isolate the metric the error is about
            for m in plain:
                out.update(group_values(service, model, version, segment, window_us, at_us, [m]))
            plain = []
    n = n_labeled = 0
    if frame is not None and len(frame):
        n, n_labeled = int(frame["n"].iloc[0]), int(frame["n_labeled"].iloc[0])
    for m in plain:
        if frame is None:
            out[m] = Value(math.nan, 0, counts_note)
            continue
        rows = n if m in UNLABELED else n_labeled
        out[m] = Value(_number(frame[m].iloc[0]), rows)
    by_kind: dict[str, list[str]] = {}
    for m in wanted:
        by_kind.setdefault(kind(m), []).append(m)
    if "drift" in by_kind:
        out.update(_drift(service, model, version, common, by_kind["drift"], n))
    if "quality" in by_kind:
        out.update(_quality(service, model, version, common, by_kind["quality"], n))
    if "estimate" in by_kind:
        out.update(_estimate(service, model, version, common, by_kind["estimate"]))
    return out


def _drift(service: Any, model: str, version: str, common: dict[str, Any], names: list[str], n: int) -> dict[str, Value]:
    if n == 0:
        return {m: Value(math.nan, 0, "no rows in the window") for m in names}
    try:
        report = service.drift(model, version, **common)
    except MlpulseError as exc:
        return {m: Value(math.nan, n, str(exc)) for m in names}
    by_column = {c.column: c for c in report.columns}
    out = {}
    for m in names:
        if m == "drift_share":
            out[m] = Value(float(report.share_drifted), n)
            continue
        column = m[len("drift:") :]
        found = by_column.get(column)
        if found is None:
            out[m] = Value(math.nan, n, f"model {model!r} has no drift column {column!r}")
        else:
            out[m] = Value(_number(found.statistic), n)
    return out


def _quality(service: Any, model: str, version: str, common: dict[str, Any], names: list[str], n: int) -> dict[str, Value]:
    if n == 0:
        return {m: Value(math.nan, 0, "no rows in the window") for m in names}
    try:
        frame = service.quality(model, version, **common).to_pandas()
    except MlpulseError as exc:
        return {m: Value(math.nan, n, str(exc)) for m in names}
    out = {}
    for m in names:
        if m == "quality_violations":
            out[m] = Value(float(frame["violations"].sum()), n)
            continue
        column = m[len("quality:") :]
        rows = frame[frame["column"] == column]
        if rows.empty:
            out[m] = Value(math.nan, n, f"model {model!r} has no quality rules on column {column!r}")
        else:
            out[m] = Value(float(rows["violations"].sum()), n)
    return out


def _estimate(service: Any, model: str, version: str, common: dict[str, Any], names: list[str]) -> dict[str, Value]:
    metrics = [m[len("estimate:") :] for m in names]
    try:
        frame = service.estimate(model, version, metrics, **common)
    except MlpulseError as exc:
        return {m: Value(math.nan, 0, str(exc)) for m in names}
    n = int(frame["n"].iloc[0]) if len(frame) else 0
    return {
        m: Value(_number(frame[name].iloc[0]) if len(frame) else math.nan, n)
        for m, name in zip(names, metrics, strict=True)
    }


def _number(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return out


__all__ = ["DEFAULT_MIN_ROWS", "Value", "group_values", "kind"]
