"""The recommended rules: the editable default set created when a model is registered with
a reference.

Every rule is named ``"<model>:<what>"``, has ``source="recommended"`` and the labels
``severity`` (``page`` or ``warning``) and ``recommended: "true"``. They are ordinary
rules: list, edit, disable or delete them like any other.

=============================  ===========================================================
rule (``<model>:...``)         when it fires
=============================  ===========================================================
``<metric>-vs-reference``      performance over the last 6h (labeled rows, at least 100)
                               is worse than the reference by more than 4 standard
                               deviations of a 6h window's value (``baseline: reference``,
                               see :mod:`mlpulse.alerts.baseline`), for 1h. Binary:
                               accuracy, roc_auc; multiclass: accuracy, f1_macro;
                               regression: mae, rmse (``>``). Needs the prediction and
                               label in the reference. Severity ``page``: 4 rather than
                               NannyML's 3 standard deviations, as a page must be rare on
                               clean data (3 sd is breached by one clean window in 740,
                               4 sd by one in 31,000; overlapping 6h windows make ``for``
                               little help).
``estimated-roc_auc-vs-``      binary models: CBPE's label-free ROC AUC over the last hour
``reference``                  below the reference's band, for 1h (100 rows). ``warning``.
``drift-share``                at least 30% of the columns drifted over the last hour
                               (after the Benjamini-Hochberg correction), for 30m (100
                               rows). A column drifting alone is ``drift:<column>``'s job.
``data-quality``               an inferred or user constraint is broken in the last hour
                               (``quality_violations > 0``), for 30m. NaN and inf are the
                               inferred ``not_null``, ``null_rate`` and ``finite``
                               constraints' business, so no rule of their own.
``latency-p99``                p99 latency above 1 s over the last hour (100 rows with a
                               latency), for 15m; models that log no latency are never
                               judged. Edit the threshold to your SLO.
``no-traffic``                 no prediction in the last hour, for 1h (``page``); judged
                               only for a model that logged a prediction within the last
                               7 days (``active_within``): quiet before the first one, and
                               resolved once a model has been retired for a week.
``labels-stopped``             no prediction of the last 24 hours has a label, for 6h
                               (100 rows): label lag of a few hours, or a daily label job,
                               keeps the coverage of a 24h window above zero.
=============================  ===========================================================

>>> from mlpulse.schema import ModelSpec
>>> spec = ModelSpec(name="churn", task="binary", prediction="score", features={"x": "numeric"})
>>> [r.name for r in recommended_rules(spec, ["x", "score", "label"])][:3]
['churn:accuracy-vs-reference', 'churn:roc_auc-vs-reference', 'churn:estimated-roc_auc-vs-reference']
>>> recommended_rules(spec, None)
[]
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

from ..schema import MAX_MODEL_NAME, ModelSpec
from .rules import Rule, rule_from_dict

#: Performance metrics judged against the reference band, per task: (metric, op).
PERFORMANCE: dict[str, tuple[tuple[str, str], ...]] = {
    "binary": (("accuracy", "<"), ("roc_auc", "<")),
    "multiclass": (("accuracy", "<"), ("f1_macro", "<")),
    "regression": (("mae", ">"), ("rmse", ">")),
}
#: Width of the performance rules' reference band, in standard deviations.
PERFORMANCE_BAND = 4.0
#: Share of drifted columns (after the BH correction) that makes a dataset drift alert.
DRIFT_SHARE = 0.3
#: p99 latency (milliseconds) above which the latency rule fires.
LATENCY_P99_MS = 1000.0
#: Rows a window needs before a statistical rule judges it.
MIN_ROWS = 100

_SOURCE = "recommended"


def recommended_rules(spec: ModelSpec, reference_columns: Collection[str] | None) -> list[Rule]:
    """The recommended rules of a model whose reference has ``reference_columns`` (None or
    empty: no reference, no rules). Performance rules need the prediction and label columns
    in the reference; the others need only a reference."""
    columns = set(reference_columns) if reference_columns is not None else set()
    if not columns:
        return []
    labeled = spec.prediction in columns and spec.label in columns
    model = spec.name
    rules: list[dict[str, Any]] = []
    if labeled:
        for metric, op in PERFORMANCE[spec.task]:
            worse = "below" if op == "<" else "above"
            rules.append(
                {
                    "name": _name(model, f"{metric}-vs-reference"),
                    "metric": metric,
                    "op": op,
                    "baseline": "reference",
                    "band": PERFORMANCE_BAND,
                    "window": "6h",
                    "for": "1h",
                    "min_rows": MIN_ROWS,
                    "labels": {"severity": "page"},
                    "annotations": {
                        "summary": f"{{{{model}}}} {metric} {{{{value}}}} is {worse} the "
                        "reference band ({{threshold}}; reference {{baseline}})",
                        "description": f"{metric} over the last {{{{window}}}} "
                        f"({{{{rows}}}} labeled rows) is {worse} the reference value by more "
                        f"than {PERFORMANCE_BAND:g} standard deviations of a window of that size.",
                    },
                }
            )
        if spec.task == "binary":
            rules.append(
                {
                    "name": _name(model, "estimated-roc_auc-vs-reference"),
                    "metric": "estimate:roc_auc",
                    "op": "<",
                    "baseline": "reference",
                    "band": 3.0,
                    "window": "1h",
                    "for": "1h",
                    "min_rows": MIN_ROWS,
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": "{{model}} estimated ROC AUC {{value}} is below the "
                        "reference band ({{threshold}}; reference {{baseline}})",
                        "description": "CBPE's label-free ROC AUC estimate over the last "
                        "{{window}} ({{rows}} rows) is below the reference's estimate by more "
                        "than 3 standard deviations: performance has probably dropped before "
                        "the labels show it.",
                    },
                }
            )
    rules += [
        {
            "name": _name(model, "drift-share"),
            "metric": "drift_share",
            "op": ">=",
            "threshold": DRIFT_SHARE,
            "window": "1h",
            "for": "30m",
            "min_rows": MIN_ROWS,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{model}}: {{value}} of the columns drifted from the reference "
                "(>= {{threshold}})",
                "description": "Share of the columns whose distribution over the last {{window}} "
                "differs from the reference (Benjamini-Hochberg corrected).",
            },
        },
        {
            "name": _name(model, "data-quality"),
            "metric": "quality_violations",
            "op": ">",
            "threshold": 0.0,
            "window": "1h",
            "for": "30m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{model}}: {{value}} data-quality violations over the last {{window}}",
                "description": "Rows break an inferred or user constraint (type, missing, "
                "NaN or inf, range, allowed values, new or vanished columns) more often than "
                "the reference explains.",
            },
        },
        {
            "name": _name(model, "latency-p99"),
            "metric": "latency_p99",
            "op": ">",
            "threshold": LATENCY_P99_MS,
            "window": "1h",
            "for": "15m",
            "min_rows": MIN_ROWS,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{model}} p99 latency {{value}} ms > {{threshold}} ms",
                "description": "p99 of latency_ms over the last {{window}}; set the threshold "
                "to the service's objective.",
            },
        },
        {
            "name": _name(model, "no-traffic"),
            "metric": "count",
            "op": "<=",
            "threshold": 0.0,
            "window": "1h",
            "for": "1h",
            "min_rows": 0,
            "active_within": "7d",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "{{model}} received no predictions in the last {{window}}",
                "description": "Volume dropped to zero: the service, its logging or the "
                "network path to mlpulse is down.",
            },
        },
    ]
    if labeled:
        rules.append(
            {
                "name": _name(model, "labels-stopped"),
                "metric": "label_coverage",
                "op": "<=",
                "threshold": 0.0,
                "window": "24h",
                "for": "6h",
                "min_rows": MIN_ROWS,
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "{{model}}: no labels for the {{rows}} predictions of the last "
                    "{{window}}",
                    "description": "Labels stopped arriving: no prediction of the last "
                    "{{window}} has feedback, so performance cannot be measured.",
                },
            }
        )
    out = []
    for i, item in enumerate(rules):
        item["model"] = model
        item["source"] = _SOURCE
        item["labels"]["recommended"] = "true"
        out.append(rule_from_dict(item, position=i))
    return out


def recommended_for(service: Any, name: str, version: str) -> list[Rule]:
    """The recommended rules of a registered model version, from its stored reference (none
    without one). ``service`` is a :class:`mlpulse.service.Service`."""
    from ..drift.sources import reference_version
    from ..store.reference import reference_columns

    spec = service.registry.get(name)
    if reference_version(service.store, spec, version) is None:
        return []
    return recommended_rules(spec, reference_columns(service.store, spec))


def _name(model: str, what: str) -> str:
    """``model:what``; a model name too long for that is cut and given a short hash, so
    rule names stay within the name limit and distinct per model."""
    name = f"{model}:{what}"
    if len(name) <= MAX_MODEL_NAME:
        return name
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    keep = MAX_MODEL_NAME - len(what) - len(digest) - 2
    return f"{model[:keep]}~{digest}:{what}"


__all__ = [
    "DRIFT_SHARE",
    "LATENCY_P99_MS",
    "PERFORMANCE",
    "PERFORMANCE_BAND",
    "recommended_for",
    "recommended_rules",
]
