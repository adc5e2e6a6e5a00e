"""A Prometheus rule file for one model over the series of mlpulse's ``/metrics``.

Two groups: recording rules (prediction and label rates, drifting columns and quality
violations per version) and alerting rules, each holding for ``for_`` before it fires:

- ``Mlpulse<Metric>Low`` / ``Mlpulse<Metric>High`` (``MlpulseAccuracyLow``, ...): a built-in
  metric over ``window`` below / above its threshold (default: accuracy below 0.9);
- ``MlpulseEstimated<Metric>Low`` / ``...High``: the same on the label-free estimate, for
  the metrics mlpulse estimates (accuracy, precision, recall, f1, roc_auc);
- ``MlpulseDriftDetected``: a column's drift test rejects the reference;
- ``MlpulseQualityViolations``: a column breaks a data-quality rule more than N times;
- ``MlpulseNoPredictions``: no predictions for 15 minutes while there were an hour earlier;
- ``MlpulseMetricsAbsent``: the model is missing from ``/metrics``;
- ``MlpulseLatencyHigh``: p99 latency above a threshold (seconds).

The model name appears only inside PromQL (as a quoted string; see
:mod:`mlpulse.export._promql`) and in the group names; annotations take it from
``$labels.model``, so no name is ever read as a template.

>>> print(rule_file_yaml("churn").splitlines()[2])
groups:
>>> groups = rule_file("churn")["groups"]
>>> [g["name"] for g in groups]
['mlpulse churn: recording', 'mlpulse churn: alerts']
>>> groups[1]["rules"][0]["expr"]
'mlpulse_metric{model="churn", name="accuracy", window="1h"} < 0.9'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from ..errors import ConfigError
from ..estimation import METRICS as ESTIMATED_METRICS
from ..metrics.catalog import ALL_BUILTIN
from ._promql import check_model_name, quote, selector

#: Thresholds used when none is given: accuracy below 0.9 over the window.
DEFAULT_BELOW: dict[str, float] = {"accuracy": 0.9}
# A Prometheus duration (https://prometheus.io/docs/prometheus/latest/configuration/configuration/)
_DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")


def _duration(option: str, value: str) -> str:
    if not isinstance(value, str) or not value or not _DURATION.match(value):
        raise ConfigError(
            f"{option} must be a Prometheus duration such as 15m or 1h, got {value!r}"
        )
    return value


def _number(option: str, value: object, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{option} must be at least {minimum:g}, got {value!r}")
    return float(value)


def _thresholds(option: str, thresholds: Mapping[str, float]) -> dict[str, float]:
    checked = {}
    for name, value in thresholds.items():
        if name not in ALL_BUILTIN:
            raise ConfigError(
                f"{option}: {name!r} is not a built-in metric (mlpulse exports built-in metrics "
                f"only); known: {', '.join(sorted(ALL_BUILTIN))}"
            )
        checked[name] = _number(f"{option} {name}", value)
    return checked


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _summary(what: str) -> str:
    """An annotation naming the model and version from the alert's own labels."""
    return "{{ $labels.model }} {{ $labels.version }}: " + what


def rule_file(
    model: str,
    *,
    below: Mapping[str, float] | None = None,
    above: Mapping[str, float] | None = None,
    window: str = "1h",
    for_: str = "15m",
    latency_p99_above: float = 1.0,
    quality_violations_above: float = 0,
) -> dict[str, Any]:
    """The rule file (a dict of ``groups``) for ``model``.

    ``below`` / ``above`` map built-in metric names to thresholds (default: accuracy below
    0.9); ``window`` is the ``mlpulse_metric`` window they watch; ``for_`` is how long a
    condition holds before its alert fires; ``latency_p99_above`` is in seconds;
    ``quality_violations_above`` is the number of violations a column may have.
    """
    model = check_model_name(model)
    low = _thresholds("below", DEFAULT_BELOW if below is None and not above else below or {})
    high = _thresholds("above", above or {})
    if not isinstance(window, str) or not window:
        raise ConfigError(f"window must be a non-empty window label such as 1h, got {window!r}")
    hold = _duration("for", for_)
    latency = _number("latency_p99_above", latency_p99_above, minimum=0)
    violations = _number("quality_violations_above", quality_violations_above, minimum=0)

    predictions = selector("mlpulse_predictions_total", model=model)
    recording = [
        {
            "record": "model_version:mlpulse_predictions:rate5m",
            "expr": f"sum by (model, version) (rate({predictions}[5m]))",
        },
        {
            "record": "model_version:mlpulse_labels:rate5m",
            "expr": "sum by (model, version) "
            f"(rate({selector('mlpulse_labels_total', model=model)}[5m]))",
        },
        {
            "record": "model_version:mlpulse_drift_detected:sum",
            "expr": f"sum by (model, version) ({selector('mlpulse_drift_detected', model=model)})",
        },
        {
            "record": "model_version:mlpulse_quality_violations:sum",
            "expr": "sum by (model, version) "
            f"({selector('mlpulse_quality_violations', model=model)})",
        },
    ]

    alerts: list[dict[str, Any]] = []
    for thresholds, op, word, suffix in ((low, "<", "below", "Low"), (high, ">", "above", "High")):
        for name, value in thresholds.items():
            series = selector("mlpulse_metric", model=model, name=name, window=window)
            alerts.append(
                {
                    "alert": f"Mlpulse{_camel(name)}{suffix}",
                    "expr": f"{series} {op} {value!r}",
                    "for": hold,
                    "labels": {"severity": "critical"},
                    "annotations": {
                        "summary": _summary(
                            f'{name} {{{{ $value | printf "%.4g" }}}} {word} {value!r} '
                            f"over the last {{{{ $labels.window }}}}"
                        ),
                        "description": f"Realised {name} (from labels) has been {word} "
                        f"{value!r} for {hold}.",
                    },
                }
            )
            if name in ESTIMATED_METRICS:
                estimate = selector("mlpulse_estimate", model=model, name=name, window=window)
                alerts.append(
                    {
                        "alert": f"MlpulseEstimated{_camel(name)}{suffix}",
                        "expr": f"{estimate} {op} {value!r}",
                        "for": hold,
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": _summary(
                                f'estimated {name} {{{{ $value | printf "%.4g" }}}} {word} '
                                f"{value!r} over the last {{{{ $labels.window }}}}"
                            ),
                            "description": f"The label-free estimate of {name} has been "
                            f"{word} {value!r} for {hold}; labels may not be here yet.",
                        },
                    }
                )
    alerts += [
        {
            "alert": "MlpulseDriftDetected",
            "expr": f"{selector('mlpulse_drift_detected', model=model)} > 0",
            "for": hold,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": _summary("column {{ $labels.column }} drifted"),
                "description": f"The drift test of a column has rejected the reference for {hold}.",
            },
        },
        {
            "alert": "MlpulseQualityViolations",
            "expr": f"{selector('mlpulse_quality_violations', model=model)} > {violations:g}",
            "for": hold,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": _summary(
                    "{{ $value }} rows of column {{ $labels.column }} break rule {{ $labels.rule }}"
                ),
                "description": f"More than {violations:g} violations for {hold}.",
            },
        },
        {
            "alert": "MlpulseNoPredictions",
            "expr": f"sum by (model) (rate({predictions}[15m])) == 0 "
            f"and sum by (model) (rate({predictions}[15m] offset 1h)) > 0",
            "for": hold,
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "{{ $labels.model }}: no predictions for 15 minutes",
                "description": "The model received predictions an hour ago and none in the "
                "last 15 minutes.",
            },
        },
        {
            "alert": "MlpulseMetricsAbsent",
            "expr": f"absent({predictions})",
            "for": hold,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model }}: not in mlpulse's /metrics",
                "description": "No mlpulse server exports the model: the server is down, the "
                "scrape fails, or the model was renamed.",
            },
        },
        {
            "alert": "MlpulseLatencyHigh",
            "expr": f"{selector('mlpulse_latency_seconds', model=model, quantile='0.99')} "
            f"> {latency!r}",
            "for": hold,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": _summary(
                    f"p99 latency {{{{ $value | humanizeDuration }}}} above {latency:g}s"
                ),
                "description": f"The 99th percentile of latency has been above {latency:g} s "
                f"for {hold}.",
            },
        },
    ]
    # the model name is only in the group names (plain YAML strings) and in PromQL strings
    return {
        "groups": [
            {"name": f"mlpulse {model}: recording", "rules": recording},
            {"name": f"mlpulse {model}: alerts", "rules": alerts},
        ]
    }


def rule_file_yaml(model: str, **options: Any) -> str:
    """:func:`rule_file` as YAML text (what ``mlpulse prometheus-rules`` writes)."""
    rules = rule_file(model, **options)
    header = (
        f"# Prometheus rules for mlpulse model {quote(model)}, written by mlpulse.\n"
        "# Check with: promtool check rules FILE\n"
    )
    return header + yaml.safe_dump(rules, sort_keys=False, allow_unicode=True, width=1_000_000)


__all__ = ["DEFAULT_BELOW", "rule_file", "rule_file_yaml"]
