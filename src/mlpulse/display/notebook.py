"""Notebook HTML (``_repr_html_``) for metrics frames, drift and quality reports.

Templates are Jinja2 with autoescaping on: a model, column or category name is data and is
escaped wherever it appears. Charts are inline SVG (no JavaScript), so they show in
Jupyter, VS Code, GitHub's notebook viewer and exported HTML alike.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from .charts import FRAME_KEYS, drift_score, metric_columns
from .svg import BLUE, ORANGE, RED, bar, sparkline

_ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                   lstrip_blocks=True)  # fmt: skip


def number(value: Any) -> str:
    """A cell: 4 significant digits, '' for missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


_ENV.filters["num"] = number

_STYLE = """<style>
.mlp {font-family: system-ui, sans-serif; font-size: 13px}
.mlp table {border-collapse: collapse}
.mlp th, .mlp td {padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee}
.mlp th:first-child, .mlp td:first-child {text-align: left}
.mlp .bad {color: #d62728; font-weight: 600}
.mlp .ok {color: #2ca02c}
.mlp caption {text-align: left; font-weight: 600; padding: 4px 0}
</style>"""

_FRAME = _ENV.from_string(
    """<div class="mlp">{{ style }}
<table><caption>{{ title }}: {{ windows }} window{{ "s" if windows != 1 }}{% if span %}, {{ span }}{% endif %}</caption>
<thead><tr><th>metric</th><th>trend</th><th>first</th><th>last</th><th>min</th><th>max</th></tr></thead>
<tbody>
{% for row in rows %}
<tr><td>{{ row.name }}</td><td>{{ row.svg }}</td><td>{{ row.first|num }}</td><td>{{ row.last|num }}</td><td>{{ row.min|num }}</td><td>{{ row.max|num }}</td></tr>
{% endfor %}
</tbody></table>
<details><summary>table</summary>{{ table }}</details></div>"""
)


def is_metrics_frame(frame: Any) -> bool:
    """A ``model.metrics()`` / ``model.estimate()`` frame with more than one window."""
    return (
        isinstance(frame, pd.DataFrame)
        and all(k in frame.columns for k in FRAME_KEYS)
        and len(frame) > 1
        and bool(metric_columns(frame))
    )


def frame_html(frame: pd.DataFrame, *, force: bool = False) -> str:
    """A metrics frame as a sparkline per metric (and ``n``) over the pandas table."""
    if not force and not is_metrics_frame(frame):
        return frame._repr_html_() or ""
    names = ["n", *metric_columns(frame)] if "n" in frame.columns else metric_columns(frame)
    rows = []
    for name in names:
        y = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")
        lower, upper = f"{name}_lower", f"{name}_upper"
        band = (
            (frame[lower].to_numpy(dtype="float64"), frame[upper].to_numpy(dtype="float64"))
            if lower in frame.columns and upper in frame.columns
            else None
        )
        finite = y[~pd.isna(y)]
        rows.append({
            "name": name,
            "svg": Markup(sparkline(y, band=band, color=ORANGE if name == "n" else BLUE)),
            "first": float(y[0]) if len(y) else math.nan,
            "last": float(y[-1]) if len(y) else math.nan,
            "min": float(finite.min()) if len(finite) else math.nan,
            "max": float(finite.max()) if len(finite) else math.nan,
        })  # fmt: skip
    span = ""
    if "window_start" in frame.columns and len(frame):
        span = f"{number(frame['window_start'].iloc[0])} to {number(frame['window_end'].iloc[-1])}"
    title = "estimates" if frame.attrs.get("band") is not None else "metrics"
    return _FRAME.render(
        style=Markup(_STYLE), title=title, windows=len(frame), span=span, rows=rows,
        table=Markup(frame._repr_html_() or ""),
    )  # fmt: skip


_DRIFT = _ENV.from_string(
    """<div class="mlp">{{ style }}
<p><b>Drift</b>{% if window %} {{ window }}{% endif %} against {{ against }} ({{ mode }}):
{% if dataset_drift %}<span class="bad">dataset drift</span>{% else %}<span class="ok">no dataset drift</span>{% endif %},
{{ drifted|length }} of {{ total }} columns drifted{% if drifted %} ({{ drifted|join(", ") }}){% endif %}.</p>
<table><thead><tr><th>column</th><th>kind</th><th>method</th><th>statistic</th><th>p-value</th><th>threshold</th><th>evidence</th><th>drifted</th></tr></thead>
<tbody>
{% for c in columns %}
<tr><td>{{ c.column }}</td><td>{{ c.kind }}</td><td>{{ c.method }}</td><td>{{ c.statistic|num }}</td><td>{{ c.p_value|num }}</td><td>{{ c.threshold|num }}</td><td>{{ c.svg }}</td><td class="{{ 'bad' if c.drifted else 'ok' }}">{{ "yes" if c.drifted else "no" }}</td></tr>
{% endfor %}
</tbody></table></div>"""
)


def drift_html(report: Any) -> str:
    """A ``DriftReport`` as a table with a bar per column (evidence over threshold, the
    mark at 1 is the threshold)."""
    cols = []
    for c in report.columns:
        p = c.p_adjusted if c.is_test and not math.isnan(c.p_adjusted) else c.p_value
        score = drift_score(c.statistic, p, c.threshold, c.is_test)
        cols.append({
            "column": c.column, "kind": c.kind, "method": c.method, "statistic": c.statistic,
            "p_value": c.p_value, "threshold": c.threshold, "drifted": c.drifted,
            "svg": Markup(bar(score, 2.0, color=RED if c.drifted else BLUE, mark=1.0)),
        })  # fmt: skip
    lo, hi = report.window if report.window else (None, None)
    window = f"{number(pd.Timestamp(lo))} to {number(pd.Timestamp(hi))}" if lo and hi else ""
    against = report.against if isinstance(report.against, str) else str(report.against)
    return _DRIFT.render(
        style=Markup(_STYLE), window=window, against=against, mode=report.mode,
        dataset_drift=report.dataset_drift, drifted=report.drifted_columns,
        total=len(report.columns), columns=cols,
    )  # fmt: skip


_QUALITY = _ENV.from_string(
    """<div class="mlp">{{ style }}
<p><b>Quality</b>: {% if ok %}<span class="ok">no violations</span>{% else %}<span class="bad">{{ total }} violation{{ "s" if total != 1 }}</span> of {{ broken }} rule{{ "s" if broken != 1 }}{% endif %} ({{ rules }} rules checked).</p>
{% if rows %}
<table><thead><tr><th>column</th><th>rule</th><th>violations</th><th>rows</th><th>rate</th><th></th></tr></thead>
<tbody>
{% for r in rows %}
<tr><td>{{ r.column }}</td><td>{{ r.rule }}</td><td>{{ r.violations|num }}</td><td>{{ r.rows|num }}</td><td>{{ r.rate|num }}</td><td>{{ r.svg }}</td></tr>
{% endfor %}
</tbody></table>
{% endif %}</div>"""
)


def quality_html(frame: pd.DataFrame) -> str:
    """A quality frame: the violated rules (summed over windows), with a rate bar each."""
    bad = frame[frame["violations"] > 0]
    grouped = (
        bad.groupby(["column", "rule"], sort=False)[["violations", "rows"]].sum().reset_index()
        if len(bad)
        else bad
    )
    rows = []
    for r in grouped.itertuples(index=False):
        rate = r.violations / r.rows if r.rows else math.nan
        rows.append({"column": r.column, "rule": r.rule, "violations": int(r.violations),
                     "rows": int(r.rows), "rate": rate,
                     "svg": Markup(bar(rate, 1.0, color=RED))})  # fmt: skip
    keys = frame[["column", "rule"]].drop_duplicates()
    return _QUALITY.render(
        style=Markup(_STYLE), ok=not len(bad), total=int(bad["violations"].sum()),
        broken=len(grouped), rules=len(keys), rows=rows,
    )  # fmt: skip
