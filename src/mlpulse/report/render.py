"""Render a :class:`~mlpulse.report.data.ReportData` as one self-contained HTML file.

Jinja2 with autoescaping: every name (model, column, category, rule) is escaped by the
template engine; the charts' data travels as JSON in a ``<script type="application/json">``
block through Jinja's ``tojson`` (``<``, ``>``, ``&`` and quotes escaped), read by a few lines
of plain JavaScript. plotly.js is inlined from the installed plotly wheel; a Content
Security Policy forbids every network request, so the file opens the same offline.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ..display import charts, plotly_js
from ..display.notebook import number
from .data import ReportData


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("mlpulse.report", "templates"),
        autoescape=select_autoescape(["html"], default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = number
    # a NaN would make the embedded JSON unreadable: fail here instead
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "allow_nan": False}
    return env


_ENVIRONMENT: Environment | None = None


def environment() -> Environment:
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        _ENVIRONMENT = _env()
    return _ENVIRONMENT


def _first(frame: pd.DataFrame | None, column: str) -> float:
    if frame is None or column not in frame.columns or not len(frame):
        return math.nan
    try:
        return float(frame[column].iloc[0])
    except (TypeError, ValueError):
        return math.nan


def summary(data: ReportData) -> dict[str, Any]:
    """The verdicts on top of the report (also ``Report.summary``)."""
    n = int(_first(data.overall, "n")) if len(data.overall) else 0
    n_labeled = int(_first(data.overall, "n_labeled")) if len(data.overall) else 0
    key = data.metrics[0]
    out: dict[str, Any] = {
        "rows": n,
        "labeled": n_labeled,
        "label_coverage": n_labeled / n if n else math.nan,
        "key_metric": key,
        "key_value": _first(data.overall, key),
        "key_estimate": _first(data.estimate_overall, key),
        "metrics": {m: _first(data.overall, m) for m in data.metrics},
        "estimates": {m: _first(data.estimate_overall, m) for m in data.metrics
                      if data.estimate_overall is not None and m in data.estimate_overall},
        "dataset_drift": None,
        "drifted_columns": [],
        "drift_share": math.nan,
        "columns": 0,
        "quality_violations": None,
        "quality_rules_violated": 0,
        "quality_rules": 0,
    }  # fmt: skip
    if data.drift is not None:
        out["dataset_drift"] = bool(data.drift.dataset_drift)
        out["drifted_columns"] = list(data.drift.drifted_columns)
        out["drift_share"] = float(data.drift.share_drifted)
        out["columns"] = len(data.drift.columns)
    if data.quality is not None:
        frame = data.quality.to_pandas()
        bad = frame[frame["violations"] > 0]
        out["quality_violations"] = int(bad["violations"].sum())
        out["quality_rules_violated"] = len(bad[["column", "rule"]].drop_duplicates())
        out["quality_rules"] = len(frame[["column", "rule"]].drop_duplicates())
    return out


def render(data: ReportData) -> str:
    """The report as one HTML document (plotly.js and every chart's data inside)."""
    from .. import __version__

    figures: dict[str, dict[str, Any]] = {}
    if data.timeline is not None and len(data.timeline):
        figures["volume"] = charts.volume_figure(data.timeline, title="Predictions per window")
        figures["performance"] = charts.metrics_figure(
            data.timeline, data.metrics, estimate=data.estimate,
            title="Performance over time (dashed: label-free estimate)",
        )  # fmt: skip
    columns: list[dict[str, Any]] = []
    if data.drift is not None:
        figures["drift"] = charts.drift_figure(data.drift.columns, title="Drift evidence by column")
        ordered = sorted(data.drift.columns, key=lambda c: (not c.drifted, c.p_value
                         if not math.isnan(c.p_value) else 1.0))  # fmt: skip
        for i, c in enumerate(ordered):
            dist = data.distributions.get(c.column)
            fig_id = f"hist{i}"
            if dist is not None:
                figures[fig_id] = charts.histogram_figure(dist)
            columns.append({
                "name": c.column, "kind": c.kind, "method": c.method, "statistic": c.statistic,
                "p_value": c.p_value, "threshold": c.threshold, "drifted": c.drifted,
                "n_reference": c.n_reference, "n_current": c.n_current,
                "figure": fig_id if dist is not None else None,
                "categories": dist.get("categories") if dist else None,
            })  # fmt: skip
    quality_rows: list[dict[str, Any]] = []
    if data.quality is not None:
        frame = data.quality.to_pandas()
        bad = frame[frame["violations"] > 0]
        quality_rows = bad.to_dict("records")
        if len(bad):
            figures["quality"] = charts.quality_figure(frame)
    overall = []
    for m in data.metrics:
        overall.append({
            "name": m, "value": _first(data.overall, m),
            "estimate": _first(data.estimate_overall, m),
        })  # fmt: skip
    return environment().get_template("report.html").render(
        data=data,
        summary=summary(data),
        overall=overall,
        columns=columns,
        quality_rows=quality_rows,
        figures=figures,
        plotly=Markup(plotly_js()),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        version=__version__,
        window=f"{number(data.start)} to {number(data.end)} UTC",
    )
