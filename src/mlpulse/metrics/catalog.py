"""The one catalog of built-in metric names: per task, and common to every task.

>>> metric_names("binary")[:3], metric_names("regression")[-1]
(['accuracy', 'precision', 'recall'], 'prediction_mean')
>>> "positive_rate" in metric_names("binary"), "positive_rate" in metric_names("multiclass")
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .builtin import BINARY_METRICS, MULTICLASS_METRICS, REGRESSION_METRICS

#: Metrics of the labeled state, per task (name -> function of the state).
TASK_METRICS: dict[str, dict[str, Callable[[Any], float]]] = {
    "binary": BINARY_METRICS,
    "multiclass": MULTICLASS_METRICS,
    "regression": REGRESSION_METRICS,
}
#: Built-in names valid for every task, computed from the core part (no labels needed
#: except ``label_coverage``'s count of labeled rows).
COMMON_METRICS = (
    "count",
    "label_coverage",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "prediction_mean",
)
#: Binary only, and needs no labels: the share of positive predictions.
POSITIVE_RATE = "positive_rate"
#: Built-in metrics computed from the core part's states (not just its row count).
CORE_METRICS = {"latency_p50", "latency_p95", "latency_p99", "prediction_mean", POSITIVE_RATE}
#: Built-in metrics that need no labels.
UNLABELED = {*COMMON_METRICS, POSITIVE_RATE}
#: Every built-in name of any task (custom metrics may not reuse one).
ALL_BUILTIN = frozenset({*BINARY_METRICS, *MULTICLASS_METRICS, *REGRESSION_METRICS, *UNLABELED})


def metric_names(task: str) -> list[str]:
    """Built-in metric names for a task, then the common ones."""
    names = list(TASK_METRICS[task])
    if task == "binary":
        names.append(POSITIVE_RATE)
    return names + list(COMMON_METRICS)


__all__ = [
    "ALL_BUILTIN",
    "COMMON_METRICS",
    "CORE_METRICS",
    "POSITIVE_RATE",
    "TASK_METRICS",
    "UNLABELED",
    "metric_names",
]
