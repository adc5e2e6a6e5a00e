"""Alert rules: the format, its validation, and the templates of labels and annotations.

A rule compares one value of one model over the window ending at evaluation time with a
threshold, fixed or derived from a baseline. Rules come from YAML (a path or text), from a
list of dicts, or over HTTP, and every mistake is a :class:`~mlpulse.errors.RuleError`
naming the rule and the field.

>>> rules = parse_rules('''
... rules:
...   - name: churn-accuracy-low
...     model: churn
...     metric: accuracy
...     window: 1h
...     op: "<"
...     threshold: 0.8
...     for: 10m
...     labels: {severity: page}
...     annotations: {summary: "{{model}} accuracy {{value}} < {{threshold}}"}
... ''').rules
>>> rule = rules[0]
>>> rule.window, rule.for_, rule.breached(0.7, 0.8), rule.breached(0.9, 0.8)
(3600.0, 600.0, True, False)
>>> render(rule.annotations["summary"], {"model": "churn", "value": 0.71234, "threshold": 0.8})
'churn accuracy 0.7123 < 0.8'
>>> parse_rules([{"name": "x", "model": "churn", "metric": "accuracy", "op": "<"}])
Traceback (most recent call last):
...
mlpulse.errors.RuleError: rule 'x': field 'threshold': a rule needs a threshold or a baseline
"""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._time import MICROS_PER_SECOND, parse_duration
from ..errors import ConfigError, RuleError
from ..schema import check_path_name

#: Comparison operators of a rule: the rule is breached when ``value OP threshold``.
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
#: Baselines a threshold can be derived from.
BASELINES = ("reference", "previous_version")
#: Prefixes of the values that are not a metric of ``model.metrics()``.
VALUE_PREFIXES = ("drift:", "quality:", "estimate:")
#: Values of whole-model analyses.
ANALYSIS_VALUES = ("drift_share", "quality_violations")
#: Prefixes named in the design for later analyses (anomaly scores, forecasts).
PLANNED_PREFIXES = ("anomaly:", "forecast:")
#: Names a template may use, and ``labels.<name>``.
TEMPLATE_NAMES = frozenset(
    {"rule", "model", "version", "metric", "value", "threshold", "baseline", "window", "rows", "op"}
)
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_FIELDS = {
    "name", "model", "version", "segment", "metric", "window", "op", "threshold", "baseline",
    "tolerance", "band", "baseline_window", "for", "keep_firing_for", "min_rows", "labels",
    "annotations", "enabled", "source", "active_within",
}  # fmt: skip
_MAX_TEXT = 2000


@dataclass(frozen=True)
class Rule:
    """One validated rule (durations in seconds). See the module docstring."""

    name: str
    model: str
    metric: str
    op: str
    window: float = 3600.0
    threshold: float | None = None
    baseline: str | None = None
    tolerance: float = 0.0
    band: float = 3.0
    baseline_window: float = 7 * 86400.0
    for_: float = 0.0
    keep_firing_for: float = 0.0
    min_rows: int | None = None
    version: str | None = None
    segment: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    source: str = "user"
    # judge a model only if it logged a prediction within this long before evaluation
    # (a "traffic stopped" rule stays quiet for a model that never had any)
    active_within: float | None = None

    def breached(self, value: float, threshold: float) -> bool:
        """Whether ``value OP threshold`` holds (never for NaN)."""
        if math.isnan(value) or math.isnan(threshold):
            return False
        return OPS[self.op](value, threshold)

    def applies_to(self, model: str) -> bool:
        return self.model == "*" or self.model == model

    def to_dict(self) -> dict[str, Any]:
        """The rule as it is written in YAML (durations as seconds)."""
        out = asdict(self)
        out["for"] = out.pop("for_")
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class RuleSet:
    """Rules and notifier configurations parsed from one source."""

    rules: list[Rule]
    notifiers: list[dict[str, Any]]


def parse_rules(source: Any) -> RuleSet:
    """Parse rules from a path, YAML/JSON text, a list of rule dicts or a dict with ``rules``
    (and ``notifiers``). Names must be unique within the source."""
    document = _load(source)
    if isinstance(document, list):
        document = {"rules": document}
    if not isinstance(document, Mapping):
        raise RuleError("rules: expected a mapping with 'rules' (and 'notifiers') or a list of rules")
    unknown = set(document) - {"rules", "notifiers"}
    if unknown:
        raise RuleError(f"rules: unknown top-level key {sorted(unknown)[0]!r} (expected 'rules', 'notifiers')")
    raw_rules = document.get("rules") or []
    raw_notifiers = document.get("notifiers") or []
    if not isinstance(raw_rules, list):
        raise RuleError("rules: 'rules' must be a list")
    if not isinstance(raw_notifiers, list):
        raise RuleError("rules: 'notifiers' must be a list")
    rules = [rule_from_dict(item, position=i) for i, item in enumerate(raw_rules)]
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise RuleError(f"rule {rule.name!r}: field 'name': defined twice")
        seen.add(rule.name)
    notifiers = [_notifier(item, i) for i, item in enumerate(raw_notifiers)]
    names = [n["name"] for n in notifiers]
    for name in names:
        if names.count(name) > 1:
            raise RuleError(f"notifier {name!r}: field 'name': defined twice")
    return RuleSet(rules, notifiers)


def _load(source: Any) -> Any:
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RuleError(f"rules: cannot read {str(path)!r}: {exc.strerror or exc}") from None
        return _yaml(text, str(path))
    if isinstance(source, str):
        if "\n" not in source and os.path.isfile(source):
            return _load(Path(source))
        return _yaml(source, "text")
    if isinstance(source, Rule):
        return [source.to_dict()]
    if isinstance(source, list | tuple):
        return [item.to_dict() if isinstance(item, Rule) else item for item in source]
    if isinstance(source, Mapping):
        return dict(source)
    raise RuleError(f"rules: expected a path, YAML text or a list of dicts, got {type(source).__name__}")


def _yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RuleError(f"rules: invalid YAML in {where}{at}: {getattr(exc, 'problem', exc)}") from None


def rule_from_dict(item: Any, position: int = 0) -> Rule:
    """Validate one rule written as a dict."""
    if isinstance(item, Rule):
        return item
    if not isinstance(item, Mapping):
        raise RuleError(f"rule #{position + 1}: expected a mapping, got {type(item).__name__}")
    raw_name = item.get("name")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise RuleError(f"rule #{position + 1}: field 'name': a non-empty string is required")
    who = f"rule {raw_name!r}"

    def fail(key: str, why: str) -> RuleError:
        return RuleError(f"{who}: field {key!r}: {why}")

    try:
        name = check_path_name(raw_name, "rule name")
    except ConfigError as exc:
        raise fail("name", str(exc)) from None
    unknown = set(item) - _FIELDS
    if unknown:
        raise fail(sorted(unknown)[0], f"unknown field (allowed: {', '.join(sorted(_FIELDS))})")

    def text(key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = item.get(key, default)
        if value is None:
            if required:
                raise fail(key, "is required")
            return None
        if not isinstance(value, str) or not value:
            raise fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def number(key: str, default: float | None, *, minimum: float | None = None) -> float | None:
        value = item.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise fail(key, f"expected a finite number, got {value!r}")
        if minimum is not None and value < minimum:
            raise fail(key, f"must be >= {minimum:g}, got {value!r}")
        return float(value)

    def duration(key: str, default: float, *, allow_zero: bool = True) -> float:
        value = item.get(key)
        if value is None:
            return default
        if allow_zero and (value == 0 or value == "0"):
            return 0.0
        try:
            return parse_duration(value) / MICROS_PER_SECOND
        except ConfigError as exc:
            raise fail(key, str(exc)) from None

    model = text("model", required=True)
    assert model is not None
    if model != "*":
        try:
            check_path_name(model, "model name")
        except ConfigError as exc:
            raise fail("model", str(exc)) from None
    metric = text("metric", required=True)
    assert metric is not None
    _check_metric(metric, fail)
    op = text("op", required=True)
    if op not in OPS:
        raise fail("op", f"expected one of {' '.join(OPS)}, got {op!r}")
    threshold = number("threshold", None)
    baseline = text("baseline")
    if baseline is not None and baseline not in BASELINES:
        raise fail("baseline", f"expected one of {', '.join(BASELINES)}, got {baseline!r}")
    if (threshold is None) == (baseline is None):
        why = "give a threshold or a baseline, not both" if baseline else "a rule needs a threshold or a baseline"
        raise fail("threshold", why)
    if baseline is not None and op in ("==", "!="):
        raise fail("op", f"a baseline needs one of < <= > >=, got {op!r}")
    min_rows = item.get("min_rows")
    if min_rows is not None and (isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 0):
        raise fail("min_rows", f"expected a non-negative integer, got {min_rows!r}")
    version = text("version")
    if version is not None:
        try:
            check_path_name(version, "version")
        except ConfigError as exc:
            raise fail("version", str(exc)) from None
    segment = text("segment")
    if segment is not None and ("=" not in segment or segment.startswith("=")):
        raise fail("segment", f"expected 'column=value', got {segment!r}")
    labels = _strings(item.get("labels"), fail, "labels")
    annotations = _strings(item.get("annotations"), fail, "annotations")
    for key, value in annotations.items():
        _check_template(value, fail, f"annotations.{key}")
    for key, value in labels.items():
        _check_template(value, fail, f"labels.{key}")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"expected true or false, got {enabled!r}")
    source = item.get("source", "user")
    if source not in ("user", "recommended"):
        raise fail("source", f"expected 'user' or 'recommended', got {source!r}")
    rule = Rule(
        name=name,
        model=model,
        metric=metric,
        op=op,
        window=duration("window", 3600.0, allow_zero=False),
        threshold=threshold,
        baseline=baseline,
        tolerance=number("tolerance", 0.0, minimum=0.0) or 0.0,
        band=number("band", 3.0, minimum=0.0) or 0.0,
        baseline_window=duration("baseline_window", 7 * 86400.0, allow_zero=False),
        for_=duration("for", 0.0),
        keep_firing_for=duration("keep_firing_for", 0.0),
        min_rows=min_rows,
        version=version,
        segment=segment,
        labels=labels,
        annotations=annotations,
        enabled=enabled,
        source=source,
        active_within=duration("active_within", 0.0, allow_zero=False) or None,
    )
    if rule.baseline is not None:
        from .baseline import check_baseline  # baseline imports this module

        check_baseline(rule)
    return rule


def _check_metric(metric: str, fail: Callable[[str, str], RuleError]) -> None:
    if metric.startswith(PLANNED_PREFIXES):
        raise fail("metric", f"{metric!r}: anomaly and forecast values are not available yet")
    for prefix in VALUE_PREFIXES:
        if metric.startswith(prefix) and not metric[len(prefix) :]:
            raise fail("metric", f"{metric!r} names no {'column' if prefix != 'estimate:' else 'metric'}")
    if any(ord(c) < 32 for c in metric) or len(metric) > 300:
        raise fail("metric", f"invalid metric name {metric!r}")


def _strings(value: Any, fail: Callable[[str, str], RuleError], key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(key, f"expected a mapping of names to strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise fail(key, f"invalid name {k!r} (letters, digits and '_', not first a digit)")
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise fail(f"{key}.{k}", f"expected a string, got {type(v).__name__}")
        v = str(v)
        if len(v) > _MAX_TEXT:
            raise fail(f"{key}.{k}", f"longer than {_MAX_TEXT} characters")
        out[k] = v
    return out


def _check_template(text: str, fail: Callable[[str, str], RuleError], key: str) -> None:
    for match in _TEMPLATE.finditer(text):
        name = match.group(1)
        if name not in TEMPLATE_NAMES and not name.startswith("labels."):
            raise fail(key, f"unknown template name {{{{{name}}}}} (known: {', '.join(sorted(TEMPLATE_NAMES))}, labels.<name>)")


def render(template: str, context: Mapping[str, Any]) -> str:
    """Fill ``{{name}}`` placeholders; numbers are shown with 4 significant digits."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("labels."):
            found: Any = context.get("labels", {}).get(name[len("labels.") :], "")
        else:
            found = context.get(name, "")
        if isinstance(found, float):
            return "NaN" if math.isnan(found) else f"{found:.4g}"
        return "" if found is None else str(found)

    return _TEMPLATE.sub(value, template)


def _notifier(item: Any, position: int) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise RuleError(f"notifier #{position + 1}: expected a mapping, got {type(item).__name__}")
    from .notifiers import validate_notifier

    return validate_notifier(dict(item))


__all__ = ["OPS", "Rule", "RuleSet", "parse_rules", "render", "rule_from_dict"]
