"""A Grafana dashboard for one model over the series of mlpulse's ``/metrics``.

The dashboard is the model page in Grafana: prediction volume, label coverage, the task's
key metrics realised (``mlpulse_metric``) beside their label-free estimates
(``mlpulse_estimate``), latency quantiles, drift per column, data-quality violations and
firing alerts. It uses the classic dashboard JSON model (``schemaVersion`` 39, imported by
Grafana 10.4 and later; newer versions migrate it on load) and four variables:
``datasource`` (any Prometheus data source), ``version`` (the model's versions, all by
default), ``window`` (the trailing window of ``mlpulse_metric``) and ``metric`` (any
metric, for the last panel). The model name is written into every query as a quoted PromQL
string (see :mod:`mlpulse.export._promql`), so any name is safe.

>>> board = dashboard("churn", datasource_uid="prom-main", task="binary")
>>> board["title"], board["uid"]
('mlpulse: churn', 'mlpulse-churn-88b2072e3e17')
>>> [t["name"] for t in board["templating"]["list"]]
['datasource', 'version', 'window', 'metric']
>>> [p["title"] for p in board["panels"] if p["type"] == "timeseries"][:3]
['Prediction volume', 'Label coverage', 'accuracy: realised and estimated']
>>> board["panels"][1]["targets"][0]["expr"]
'sum by (version) (rate(mlpulse_predictions_total{model="churn", version=~"$version"}[$__rate_interval]))'
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..errors import ConfigError
from ._promql import check_model_name, quote

#: Dashboard JSON model version written (Grafana 10.4 / 11.0; later versions migrate it).
SCHEMA_VERSION = 39
#: Key metrics per task: one panel each, realised and (where mlpulse estimates it) estimated.
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "f1", "roc_auc"),
    "multiclass": ("accuracy", "f1_macro"),
    "regression": ("mae", "rmse", "r2"),
}
#: Metrics whose values are shares in [0, 1] (shown as percentages).
_RATIOS = {
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_micro",
    "f1_weighted",
    "label_coverage",
    "positive_rate",
}
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH = 24  # Grafana's grid is 24 columns wide
_HEIGHT = 8


def _uid(model: str) -> str:
    """A stable dashboard uid (at most 40 characters of ``[a-z0-9-]``) for a model name."""
    digest = hashlib.sha256(model.encode("utf-8")).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:18].strip("-")
    return f"mlpulse-{slug}-{digest}" if slug else f"mlpulse-{digest}"


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {
        "datasource": dict(_DATASOURCE),
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": True,
        "refId": ref,
    }


def _series(metric: str, model: str, **extra: str) -> str:
    """A selector for the model with more matchers given as ready PromQL (``=~"$version"``)."""
    matchers = [f"model={quote(model)}", *(f"{label}{rhs}" for label, rhs in extra.items())]
    return f"{metric}{{{', '.join(matchers)}}}"


class _Layout:
    """Places panels left to right, two per row, with a full-width row header per section."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._y = 0
        self._x = 0

    def section(self, title: str) -> None:
        if self._x:
            self._y += _HEIGHT
            self._x = 0
        self.panels.append(
            {
                "collapsed": False,
                "gridPos": {"h": 1, "w": _WIDTH, "x": 0, "y": self._y},
                "id": len(self.panels) + 1,
                "panels": [],
                "title": title,
                "type": "row",
            }
        )
        self._y += 1

    def timeseries(
        self,
        title: str,
        description: str,
        targets: list[tuple[str, str]],
        *,
        unit: str = "short",
        bounds: tuple[float, float] | None = None,
        steps: bool = False,
        dashed: str | None = None,
    ) -> None:
        """A time-series panel; ``targets`` are (expr, legend) pairs; series whose name
        matches the regex ``dashed`` are drawn dashed (estimates beside realised values)."""
        defaults: dict[str, Any] = {
            "custom": {
                "drawStyle": "line",
                "fillOpacity": 0,
                "lineInterpolation": "stepAfter" if steps else "linear",
                "lineWidth": 1,
                "showPoints": "never",
                "spanNulls": False,
            },
            "unit": unit,
        }
        if bounds is not None:
            defaults["min"], defaults["max"] = bounds
        overrides = []
        if dashed is not None:
            overrides.append(
                {
                    "matcher": {"id": "byRegexp", "options": dashed},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}}
                    ],
                }
            )
        self.panels.append(
            {
                "datasource": dict(_DATASOURCE),
                "description": description,
                "fieldConfig": {"defaults": defaults, "overrides": overrides},
                "gridPos": {"h": _HEIGHT, "w": _WIDTH // 2, "x": self._x, "y": self._y},
                "id": len(self.panels) + 1,
                "options": {
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "none"},
                },
                "targets": [
                    _target(chr(ord("A") + i), expr, legend)
                    for i, (expr, legend) in enumerate(targets)
                ],
                "title": title,
                "type": "timeseries",
            }
        )
        self._x += _WIDTH // 2
        if self._x >= _WIDTH:
            self._x = 0
            self._y += _HEIGHT


def _query_variable(name: str, label: str, query: str, **options: Any) -> dict[str, Any]:
    return {
        "current": options.pop("current", {}),
        "datasource": dict(_DATASOURCE),
        "definition": query,
        "hide": 0,
        "includeAll": False,
        "label": label,
        "multi": False,
        "name": name,
        "options": [],
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor"},
        "refresh": 2,  # on time range change: versions come and go
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
        **options,
    }


def _selected(value: str) -> dict[str, Any]:
    return {"selected": True, "text": value, "value": value}


def dashboard(
    model: str, *, datasource_uid: str | None = None, task: str | None = None
) -> dict[str, Any]:
    """The dashboard JSON model (a dict) for ``model``.

    ``datasource_uid`` preselects a Prometheus data source (any can be chosen in the
    ``datasource`` variable); ``task`` (``binary``, ``multiclass``, ``regression``) gives
    each of the task's key metrics its own panel; without it one panel shows whichever key
    metrics of any task the model has.
    """
    model = check_model_name(model)
    if task is not None and task not in KEY_METRICS:
        raise ConfigError(
            f"model {model!r}: task must be one of {', '.join(KEY_METRICS)}, got {task!r}"
        )
    if datasource_uid is not None and (not isinstance(datasource_uid, str) or not datasource_uid):
        raise ConfigError(f"datasource uid must be a non-empty string, got {datasource_uid!r}")

    version = '=~"$version"'
    window = '="$window"'

    def windowed(metric: str, name: str) -> str:
        """The model's ``metric`` over the chosen versions and window; ``name`` is the
        matcher's right-hand side, e.g. ``="accuracy"``."""
        return _series(metric, model, version=version, window=window, name=name)

    layout = _Layout()

    layout.section("Traffic")
    predictions = _series("mlpulse_predictions_total", model, version=version)
    labels = _series("mlpulse_labels_total", model, version=version)
    quarantined = _series("mlpulse_quarantined_total", model)
    layout.timeseries(
        "Prediction volume",
        "Predictions, labels and quarantined rows received per second.",
        [
            (
                f"sum by (version) (rate({predictions}[$__rate_interval]))",
                "predictions/s {{version}}",
            ),
            (f"sum by (version) (rate({labels}[$__rate_interval]))", "labels/s {{version}}"),
            (f"sum(rate({quarantined}[$__rate_interval]))", "quarantined/s"),
        ],
    )
    layout.timeseries(
        "Label coverage",
        "Share of the window's predictions that have a label (labels arrive late).",
        [
            (
                windowed("mlpulse_metric", '="label_coverage"'),
                "{{version}}",
            )
        ],
        unit="percentunit",
        bounds=(0, 1),
    )

    layout.section("Performance")
    key_metrics = KEY_METRICS[task] if task else None
    if key_metrics is not None:
        for name in key_metrics:
            layout.timeseries(
                f"{name}: realised and estimated",
                f"{name} over the trailing window: realised from labels (solid) and "
                "estimated without labels (dashed, binary models).",
                [
                    (
                        windowed("mlpulse_metric", f"={quote(name)}"),
                        "realised {{version}}",
                    ),
                    (
                        windowed("mlpulse_estimate", f"={quote(name)}"),
                        "estimated {{version}}",
                    ),
                ],
                unit="percentunit" if name in _RATIOS else "short",
                dashed="^estimated",
            )
    else:
        names = sorted({n for names in KEY_METRICS.values() for n in names})
        pattern = f"=~{quote('|'.join(names))}"
        layout.timeseries(
            "Key metrics: realised and estimated",
            "The task's key metrics over the trailing window: realised from labels (solid) "
            "and estimated without labels (dashed, binary models).",
            [
                (
                    windowed("mlpulse_metric", pattern),
                    "{{name}} realised {{version}}",
                ),
                (
                    windowed("mlpulse_estimate", pattern),
                    "{{name}} estimated {{version}}",
                ),
            ],
            dashed="estimated",
        )
    layout.timeseries(
        "Metric: $metric",
        "Any metric mlpulse exports for the model (choose it in the metric variable): "
        "realised, and estimated where mlpulse estimates it.",
        [
            (
                windowed("mlpulse_metric", '="$metric"'),
                "realised {{version}}",
            ),
            (
                windowed("mlpulse_estimate", '="$metric"'),
                "estimated {{version}}",
            ),
        ],
        dashed="^estimated",
    )

    layout.section("Latency")
    layout.timeseries(
        "Latency p50 / p95 / p99",
        "Latency quantiles from mlpulse's latency sketch (no predefined buckets).",
        [
            (
                _series("mlpulse_latency_seconds", model, version=version, quantile=f"={quote(q)}"),
                f"{label} {{{{version}}}}",
            )
            for q, label in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))
        ],
        unit="s",
    )

    layout.section("Drift and data quality")
    layout.timeseries(
        "Drift statistic per column",
        "Each column's drift statistic against the reference (method in brackets).",
        [
            (
                _series("mlpulse_drift_statistic", model, version=version),
                "{{column}} ({{method}}) {{version}}",
            )
        ],
    )
    layout.timeseries(
        "Drift detected",
        "1 while a column's drift test rejects the reference distribution.",
        [(_series("mlpulse_drift_detected", model, version=version), "{{column}} {{version}}")],
        bounds=(0, 1),
        steps=True,
    )
    layout.timeseries(
        "Quality violations",
        "Rows that break a data-quality rule, per column and rule.",
        [
            (
                _series("mlpulse_quality_violations", model, version=version),
                "{{column}} {{rule}} {{version}}",
            )
        ],
    )
    layout.timeseries(
        "Firing alerts",
        "Alert rules of the model: 1 while firing, 0 while pending.",
        [(_series("mlpulse_alert_firing", model), "{{rule}}")],
        bounds=(0, 1),
        steps=True,
    )

    model_query = _series("mlpulse_metric", model)
    templating = [
        {
            "current": _selected(datasource_uid) if datasource_uid else {},
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
            "type": "datasource",
        },
        _query_variable(
            "version",
            "Version",
            f"label_values({model_query}, version)",
            includeAll=True,
            multi=True,
            allValue=".*",
            current={"selected": True, "text": ["All"], "value": ["$__all"]},
        ),
        _query_variable(
            "window", "Window", f"label_values({model_query}, window)", current=_selected("1h")
        ),
        _query_variable(
            "metric",
            "Metric",
            f"label_values({model_query}, name)",
            current=_selected(key_metrics[0] if key_metrics else "accuracy"),
        ),
    ]
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "datasource": dict(_DATASOURCE),
                    "enable": True,
                    "expr": f"{_series('mlpulse_alert_firing', model)} > 0",
                    "iconColor": "red",
                    "name": "mlpulse alerts",
                    "step": "60s",
                    "titleFormat": "{{rule}}",
                    "useValueForTime": False,
                },
            ]
        },
        "description": f"mlpulse model {model}",
        "editable": True,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": layout.panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["mlpulse"],
        "templating": {"list": templating},
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": f"mlpulse: {model}",
        "uid": _uid(model),
        "version": 1,
    }


def dashboard_json(
    model: str, *, datasource_uid: str | None = None, task: str | None = None
) -> str:
    """:func:`dashboard` as indented JSON text (what ``mlpulse grafana-dashboard`` prints)."""
    board = dashboard(model, datasource_uid=datasource_uid, task=task)
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


__all__ = ["KEY_METRICS", "SCHEMA_VERSION", "dashboard", "dashboard_json"]
