"""Plotly figure specifications (plain dicts) for mlpulse results.

The same dicts become a ``plotly.graph_objects.Figure`` for ``.plot()`` and are embedded
as JSON in the HTML report, so a chart looks the same in a notebook and in a report. They
are built from aggregates only (one point per window, per bin, per column), never from raw
rows, and carry no template, which keeps them a few kilobytes each.

>>> import pandas as pd
>>> frame = pd.DataFrame({"window_start": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
...                       "window_end": pd.to_datetime(["2026-01-02", "2026-01-03"], utc=True),
...                       "n": [10, 12], "n_labeled": [5, 6], "accuracy": [0.9, 0.8]})
>>> spec = metrics_figure(frame)
>>> [t["name"] for t in spec["data"]], spec["data"][0]["y"]
(['accuracy'], [0.9, 0.8])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .svg import BLUE, GREY, ORANGE, RED

#: Columns of a metrics / estimate frame that are not metrics.
FRAME_KEYS = ("window_start", "window_end", "n", "n_labeled")
_BAND_SUFFIXES = ("_lower", "_upper")


def rounded(values: Any, digits: int = 4) -> list[Any]:
    """Floats to ``digits`` significant digits, NaN/inf as None (JSON null): small files."""
    out: list[Any] = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def _times(frame: pd.DataFrame) -> list[str]:
    starts = pd.to_datetime(frame["window_start"], utc=True)
    return [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in starts]


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The metric columns of a metrics or estimate frame (no bands, no counts)."""
    out = []
    for c in frame.columns:
        if c in FRAME_KEYS or str(c).endswith(_BAND_SUFFIXES):
            continue
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]):
            out.append(str(c))
    return out


def _layout(title: str | None, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "margin": {"l": 50, "r": 20, "t": 40 if title else 20, "b": 40},
        "height": 320,
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"gridcolor": "#eee"},
        "yaxis": {"gridcolor": "#eee", "zeroline": False},
    }
    if title:
        layout["title"] = {"text": title, "x": 0, "font": {"size": 14}}
    layout.update(extra)
    return layout


def metrics_figure(
    frame: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    estimate: pd.DataFrame | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Lines per metric over the windows (with ``<m>_lower``/``_upper`` as a band), and the
    label-free ``estimate`` frame's metrics dashed beside them."""
    names = list(metrics) if metrics is not None else metric_columns(frame)
    x = _times(frame) if "window_start" in frame.columns else list(range(len(frame)))
    data: list[dict[str, Any]] = []
    palette = [BLUE, ORANGE, "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for i, name in enumerate(names):
        color = palette[i % len(palette)]
        if name in frame.columns:
            data += _band(frame, name, x, color, name)
            data.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": x,
                         "y": rounded(frame[name]), "line": {"color": color},
                         "marker": {"size": 4}})  # fmt: skip
        if estimate is not None and name in estimate.columns:
            ex = _times(estimate)
            data += _band(estimate, name, ex, color, f"{name} (estimated)")
            data.append({"type": "scatter", "mode": "lines", "name": f"{name} (estimated)",
                         "x": ex, "y": rounded(estimate[name]),
                         "line": {"color": color, "dash": "dash"}})  # fmt: skip
    return {"data": data, "layout": _layout(title, yaxis={"gridcolor": "#eee", "title": "value"})}


def _band(frame: pd.DataFrame, name: str, x: list[Any], color: str, label: str) -> list[dict]:
    lower, upper = f"{name}_lower", f"{name}_upper"
    if lower not in frame.columns or upper not in frame.columns:
        return []
    common = {"type": "scatter", "mode": "lines", "x": x, "line": {"width": 0, "color": color},
              "showlegend": False, "hoverinfo": "skip", "legendgroup": label}  # fmt: skip
    return [
        {**common, "y": rounded(frame[upper]), "name": f"{label} upper"},
        {**common, "y": rounded(frame[lower]), "name": f"{label} lower", "fill": "tonexty",
         "fillcolor": _alpha(color, 0.15)},
    ]  # fmt: skip


def _alpha(color: str, a: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{a})"


def volume_figure(frame: pd.DataFrame, title: str | None = "Volume") -> dict[str, Any]:
    """Predictions and labeled predictions per window."""
    x = _times(frame)
    data = [
        {"type": "bar", "name": "predictions", "x": x, "y": frame["n"].astype(int).tolist(),
         "marker": {"color": BLUE}},
        {"type": "bar", "name": "labeled", "x": x, "y": frame["n_labeled"].astype(int).tolist(),
         "marker": {"color": ORANGE}},
    ]  # fmt: skip
    return {"data": data, "layout": _layout(title, barmode="overlay", height=260)}


def drift_score(statistic: float, p_value: float, threshold: float, is_test: bool) -> float:
    """A column's drift evidence relative to its threshold: 1 is the threshold, above is
    drift. Tests: log(p) / log(threshold); distances: statistic / threshold.

    >>> drift_score(0.3, float("nan"), 0.1, False), drift_score(0.2, 0.0025, 0.05, True)
    (2.9999999999999996, 2.0)
    """
    if is_test:
        if not math.isfinite(p_value) or not 0 < threshold < 1:
            return math.nan
        return math.log(max(p_value, 1e-300)) / math.log(threshold)
    if not math.isfinite(statistic) or not threshold > 0:
        return math.nan
    return statistic / threshold


def drift_figure(columns: Sequence[Any], title: str | None = "Drift by column") -> dict[str, Any]:
    """Horizontal bars, one per column (``ColumnDrift`` objects): evidence over threshold."""
    names, scores, colors, texts = [], [], [], []
    for c in columns:
        p = c.p_adjusted if c.is_test and math.isfinite(c.p_adjusted) else c.p_value
        score = drift_score(c.statistic, p, c.threshold, c.is_test)
        names.append(str(c.column))
        scores.append(score)
        colors.append(RED if c.drifted else BLUE)
        detail = f"{c.method}: statistic {c.statistic:.4g}"
        if c.is_test:
            detail += f", p {c.p_value:.3g}"
        texts.append(f"{detail}, threshold {c.threshold:.4g}")
    data = [{"type": "bar", "orientation": "h", "y": names, "x": rounded(scores),
             "marker": {"color": colors}, "hovertext": texts, "hoverinfo": "y+text",
             "name": "evidence / threshold"}]  # fmt: skip
    height = max(200, 24 * len(names) + 80)
    shapes = [{"type": "line", "x0": 1, "x1": 1, "yref": "paper", "y0": 0, "y1": 1,
               "line": {"color": "#000", "dash": "dot", "width": 1}}]  # fmt: skip
    layout = _layout(title, height=height, shapes=shapes, hovermode="closest",
                     xaxis={"title": "evidence / threshold (drift at 1)", "gridcolor": "#eee"},
                     yaxis={"autorange": "reversed", "type": "category", "automargin": True})  # fmt: skip
    return {"data": data, "layout": layout}


def drift_timeline_figure(windows: Sequence[Any], title: str | None = "Drift over time") -> dict:
    """Heatmap column x window of the evidence over threshold, from the per-window reports
    of a drift timeline (``DriftReport.timeline``)."""
    xs: list[str] = []
    names: list[str] = []
    cells: dict[tuple[str, str], float] = {}
    for w in windows:
        x = pd.Timestamp(w.window[0]).strftime("%Y-%m-%dT%H:%M:%SZ")
        xs.append(x)
        for c in w.columns:
            if c.column not in names:
                names.append(str(c.column))
            p = c.p_adjusted if c.is_test and math.isfinite(c.p_adjusted) else c.p_value
            cells[(str(c.column), x)] = drift_score(c.statistic, p, c.threshold, c.is_test)
    z = [rounded([cells.get((n, x), math.nan) for x in xs]) for n in names]
    data = [{"type": "heatmap", "x": xs, "y": names, "z": z, "zmin": 0, "zmax": 2,
             "colorscale": [[0, "#f7fbff"], [0.5, "#fdd49e"], [1, RED]],
             "colorbar": {"title": {"text": "evidence"}}}]  # fmt: skip
    layout = _layout(title, height=max(200, 22 * len(names) + 90), hovermode="closest",
                     yaxis={"autorange": "reversed", "type": "category", "automargin": True})  # fmt: skip
    return {"data": data, "layout": layout}


def histogram_figure(dist: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    """Reference vs current shares of one column: ``dist`` as built by
    :func:`mlpulse.report.data.distribution` (``kind``, ``x``, ``reference``, ``current``,
    ``width`` for numeric bins)."""
    common: dict[str, Any] = {"type": "bar", "x": dist["x"]}
    if dist.get("width") is not None:
        common["width"] = dist["width"]
    data = [
        {**common, "name": "reference", "y": rounded(dist["reference"]),
         "marker": {"color": GREY}, "opacity": 0.6},
        {**common, "name": "current", "y": rounded(dist["current"]),
         "marker": {"color": BLUE}, "opacity": 0.6},
    ]  # fmt: skip
    layout = _layout(title, height=240, barmode="overlay" if dist["kind"] == "numeric" else "group",
                     hovermode="x", yaxis={"title": "share", "gridcolor": "#eee"},
                     margin={"l": 45, "r": 10, "t": 30 if title else 10, "b": 40})  # fmt: skip
    if dist["kind"] != "numeric":
        layout["xaxis"] = {"type": "category"}
    return {"data": data, "layout": layout}


def quality_figure(frame: pd.DataFrame, title: str | None = "Quality violations") -> dict:
    """Violations per column and rule (stacked over windows when the frame has them)."""
    f = frame[frame["violations"] > 0]
    data: list[dict[str, Any]] = []
    if "window_start" in f.columns:
        x_all = _times(frame.drop_duplicates("window_start"))
        for (column, rule), g in f.groupby(["column", "rule"], sort=False):
            by = dict(zip(_times(g), g["violations"].astype(int).tolist(), strict=True))
            data.append({"type": "bar", "name": f"{column}: {rule}", "x": x_all,
                         "y": [by.get(t, 0) for t in x_all]})  # fmt: skip
        return {"data": data, "layout": _layout(title, barmode="stack")}
    labels = [f"{c}: {r}" for c, r in zip(f["column"], f["rule"], strict=True)]
    data = [{"type": "bar", "orientation": "h", "y": labels,
             "x": f["violations"].astype(int).tolist(), "marker": {"color": RED},
             "name": "violations"}]  # fmt: skip
    layout = _layout(title, height=max(200, 24 * len(labels) + 80), hovermode="closest",
                     yaxis={"autorange": "reversed", "type": "category", "automargin": True})  # fmt: skip
    return {"data": data, "layout": layout}


def figure(spec: dict[str, Any]) -> Any:
    """A ``plotly.graph_objects.Figure`` of a spec (what ``.plot()`` returns)."""
    import plotly.graph_objects as go

    return go.Figure(spec)
