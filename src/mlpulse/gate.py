"""``mlpulse check SUITE.yaml``: a CI gate over a stored model's window or two files.

A suite is a list of conditions on any value an alert rule can read (a metric of
``model.metrics()``, ``estimate:<metric>``, ``drift_share``, ``drift:<column>``,
``quality_violations``, ``quality:<column>``), plus ``dataset_drift`` and boolean
``drift:<column> == false`` (the column's drift verdict)::

    # suite.yaml
    model: churn              # with --db (or --model); ignored for --reference/--current
    window: {start: -24h, end: now}
    min_rows: 100             # fewer rows behind a value: the condition fails ("too few rows")
    conditions:
      - accuracy >= 0.8
      - estimate:roc_auc > 0.7
      - drift_share < 0.3
      - drift:monthly_charges == false
      - quality_violations == 0
      - {name: f1 floor, metric: f1, op: ">=", threshold: 0.75}

Values come from :func:`mlpulse.alerts.values.group_values`, the alert rules' resolution
(one query per analysis), so a gate and an alert on the same window agree.

>>> suite = parse_suite('''
... conditions:
...   - accuracy >= 0.8
...   - drift:age == false
... ''')
>>> [(c.metric, c.op, c.threshold) for c in suite.conditions]
[('accuracy', '>=', 0.8), ('drift:age', '==', False)]
>>> parse_suite("conditions: [accuracy >> 0.8]")
Traceback (most recent call last):
...
mlpulse.errors.ConfigError: suite: condition 1 'accuracy >> 0.8': expected '<value> <op> <threshold>' with op one of < <= > >= == !=
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pandas as pd
import yaml

from ._time import to_micros
from .alerts.rules import OPS
from .alerts.values import group_values, kind
from .errors import ConfigError, MlpulseError

_CONDITION = re.compile(
    r"^\s*(?P<metric>[^<>=!]*[^<>=!\s])\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<threshold>[^<>=!\s]+)\s*$"
)
_SUITE_KEYS = {"model", "version", "segment", "window", "min_rows", "conditions", "name"}
_CONDITION_KEYS = {"name", "metric", "op", "threshold", "min_rows"}
#: Result columns (``check().frame``), also the CLI table.
COLUMNS = ["condition", "value", "rows", "passed", "note"]


@dataclass(frozen=True)
class Condition:
    """``metric op threshold``; a boolean threshold compares a verdict (drift)."""

    name: str
    metric: str
    op: str
    threshold: float | bool
    min_rows: int | None = None

    def passes(self, value: float | bool) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        return bool(OPS[self.op](value, self.threshold))


@dataclass
class Suite:
    conditions: list[Condition]
    model: str | None = None
    version: str | None = None
    segment: str | None = None
    start: Any = None
    end: Any = None
    min_rows: int = 1
    name: str = "mlpulse"


@dataclass
class Outcome:
    """What :func:`run` found: one row per condition; ``ok`` when all passed."""

    frame: pd.DataFrame
    model: str
    version: str
    start: Any
    end: Any
    suite: Suite
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.frame["passed"].all()) if len(self.frame) else True


def _threshold(text: Any, where: str) -> float | bool:
    if isinstance(text, bool):
        return text
    if isinstance(text, int | float):
        return float(text)
    low = str(text).strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return float(low)
    except ValueError:
        raise ConfigError(f"{where}: threshold {text!r} is not a number, true or false") from None


def _condition(item: Any, position: int, where: str) -> Condition:
    label = f"{where}: condition {position}"
    if isinstance(item, str):
        found = _CONDITION.match(item)
        if not found:
            raise ConfigError(
                f"{label} {item!r}: expected '<value> <op> <threshold>' with op one of "
                "< <= > >= == !="
            )
        metric, op = found["metric"], found["op"]
        threshold = _threshold(found["threshold"], f"{label} {item!r}")
        name, min_rows = item.strip(), None
    elif isinstance(item, Mapping):
        unknown = set(item) - _CONDITION_KEYS
        if unknown:
            raise ConfigError(f"{label}: unknown keys {sorted(unknown)}; known: "
                              f"{', '.join(sorted(_CONDITION_KEYS))}")  # fmt: skip
        missing = [k for k in ("metric", "op", "threshold") if k not in item]
        if missing:
            raise ConfigError(f"{label}: missing {', '.join(missing)}")
        metric, op = str(item["metric"]), str(item["op"])
        if op not in OPS:
            raise ConfigError(f"{label}: op {op!r} is not one of < <= > >= == !=")
        threshold = _threshold(item["threshold"], label)
        name = str(item.get("name") or f"{metric} {op} {item['threshold']}")
        min_rows = item.get("min_rows")
    else:
        raise ConfigError(f"{label}: expected a string such as 'accuracy >= 0.8' or a mapping")
    if isinstance(threshold, bool):
        if op not in ("==", "!="):
            raise ConfigError(f"{label} {name!r}: a true/false threshold needs == or !=")
        if not (metric == "dataset_drift" or metric.startswith("drift:")):
            raise ConfigError(f"{label} {name!r}: only dataset_drift and drift:<column> "
                              "compare with true/false")  # fmt: skip
    elif metric == "dataset_drift":
        raise ConfigError(f"{label} {name!r}: dataset_drift is true or false")
    if min_rows is not None and (not isinstance(min_rows, int) or min_rows < 0):
        raise ConfigError(f"{label} {name!r}: min_rows must be a whole number >= 0")
    return Condition(name, metric, op, threshold, min_rows)


def parse_suite(source: Any) -> Suite:
    """A suite from a YAML/JSON path, YAML text, a mapping or a list of conditions; every
    mistake is a :class:`~mlpulse.errors.ConfigError` naming the condition."""
    where = "suite"
    data: Any = source
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source
                                    and source.endswith((".yaml", ".yml", ".json"))):  # fmt: skip
        where = f"suite {str(source)!r}"
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it: {exc.strerror or exc}") from None
        data = _yaml(text, where)
    elif isinstance(source, str):
        data = _yaml(source, where)
    if isinstance(data, list):
        data = {"conditions": data}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'conditions' (or a list of them)")
    unknown = set(data) - _SUITE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: "
                          f"{', '.join(sorted(_SUITE_KEYS))}")  # fmt: skip
    items = data.get("conditions")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: 'conditions' must be a non-empty list")
    window = data.get("window") or {}
    if not isinstance(window, Mapping) or set(window) - {"start", "end"}:
        raise ConfigError(f"{where}: window must look like {{start: -24h, end: now}}")
    min_rows = data.get("min_rows", 1)
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 0:
        raise ConfigError(f"{where}: min_rows must be a whole number >= 0")
    conditions = [_condition(item, i, where) for i, item in enumerate(items, 1)]
    return Suite(
        conditions,
        model=None if data.get("model") is None else str(data["model"]),
        version=None if data.get("version") is None else str(data["version"]),
        segment=data.get("segment"),
        start=window.get("start"),
        end=window.get("end"),
        min_rows=min_rows,
        name=str(data.get("name") or "mlpulse"),
    )


def _yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: invalid YAML{at}: {getattr(exc, 'problem', exc)}") from None


def validate(suite: Suite, service: Any, model: str) -> None:
    """Every condition names a value ``model`` has (raises ConfigError naming it)."""
    from .drift.sources import model_columns
    from .estimation.cbpe import METRICS as ESTIMABLE
    from .metrics.catalog import metric_names
    from .metrics.custom import registered

    spec = service.spec(model)
    columns = {c.name for c in model_columns(spec)}
    known = metric_names(spec.task)
    for i, c in enumerate(suite.conditions, 1):
        label = f"suite: condition {i} {c.name!r}"
        k = kind(c.metric)
        if c.metric in ("drift_share", "dataset_drift", "quality_violations"):
            continue
        if k == "metrics" and c.metric not in known and c.metric not in registered():
            raise ConfigError(f"{label}: model {model!r} ({spec.task}) has no metric "
                              f"{c.metric!r}; known: {', '.join(known)}")  # fmt: skip
        if k in ("drift", "quality"):
            column = c.metric.split(":", 1)[1]
            if column not in columns:
                raise ConfigError(f"{label}: model {model!r} has no column {column!r}")
        if k == "estimate":
            metric = c.metric.split(":", 1)[1]
            if spec.task != "binary":
                raise ConfigError(f"{label}: estimates need a binary model; {model!r} is {spec.task}")
            if metric not in ESTIMABLE:
                raise ConfigError(f"{label}: cannot estimate {metric!r}; estimable: "
                                  f"{', '.join(ESTIMABLE)}")  # fmt: skip


def evaluate(suite: Suite, service: Any, model: str, version: str, start: Any, end: Any) -> pd.DataFrame:
    """One row per condition: condition, value, rows, passed, note."""
    lo, hi = to_micros(start), to_micros(end)
    if hi <= lo:
        raise ConfigError(f"suite: the window is empty ({start} to {end})")
    names = [c.metric for c in suite.conditions]
    verdicts = {n for n, c in zip(names, suite.conditions, strict=True)
                if isinstance(c.threshold, bool)}  # fmt: skip
    plain = [n for n in names if n not in verdicts]
    values = group_values(service, model, version, suite.segment, hi - lo, hi, plain) if plain else {}
    drift_verdicts: dict[str, tuple[Any, int, str | None]] = {}
    if verdicts:
        drift_verdicts = _verdicts(service, model, version, suite.segment, start, end, verdicts)
    rows = []
    for c in suite.conditions:
        need = suite.min_rows if c.min_rows is None else c.min_rows
        if c.metric in drift_verdicts:
            value, n, note = drift_verdicts[c.metric]
        else:
            v = values[c.metric]
            value, n, note = v.value, v.rows, v.note
        if note is None and n < need:
            note = f"too few rows: {n} < min_rows {need}"
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        if note is None and missing:
            note = "no value in the window"
        passed = note is None and c.passes(value)
        rows.append({"condition": c.name, "value": value, "rows": int(n), "passed": bool(passed),
                     "note": note or ""})  # fmt: skip
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["value"] = frame["value"].astype(object)
    return frame


def _verdicts(service: Any, model: str, version: str, segment: Any, start: Any, end: Any,
              names: set[str]) -> dict[str, tuple[Any, int, str | None]]:  # fmt: skip
    """dataset_drift and drift:<column> as the report's true/false verdicts."""
    try:
        report = service.drift(model, version, start=start, end=end, segment=segment)
    except MlpulseError as exc:
        return {n: (math.nan, 0, str(exc)) for n in names}
    n = max((c.n_current for c in report.columns), default=0)
    by_column = {c.column: c for c in report.columns}
    out: dict[str, tuple[Any, int, str | None]] = {}
    for name in names:
        if name == "dataset_drift":
            out[name] = (bool(report.dataset_drift), n, None if n else "no rows in the window")
            continue
        found = by_column.get(name.split(":", 1)[1])
        if found is None:
            out[name] = (math.nan, n, f"no drift result for column {name.split(':', 1)[1]!r}")
        else:
            out[name] = (bool(found.drifted), int(found.n_current), None)
    return out


def run_service(suite: Suite, service: Any, model: str | None = None, version: str | None = None,
                start: Any = None, end: Any = None) -> Outcome:  # fmt: skip
    """Check ``suite`` on a model of ``service`` over ``[start, end)`` (the suite's window,
    else the last 24 hours)."""
    import time

    from ._time import from_micros

    model = model or suite.model
    if model is None:
        models = service.models()
        if len(models) != 1:
            raise ConfigError(
                f"suite: which model? pass --model (or 'model:' in the suite); the database has "
                f"{len(models)} models"
            )
        model = models[0]
    version = version or suite.version
    if version is None:
        versions = service.versions(model)
        if not versions:
            raise ConfigError(f"model {model!r} has no version")
        version = versions[-1]
    validate(suite, service, model)
    lo = to_micros(start if start is not None else (suite.start or "-24h"))
    hi = to_micros(end if end is not None else (suite.end or "now"))
    started = time.perf_counter()
    frame = evaluate(suite, service, model, version, from_micros(lo), from_micros(hi))
    return Outcome(frame, model, version, from_micros(lo), from_micros(hi), suite,
                   seconds=time.perf_counter() - started)  # fmt: skip


def junit_xml(outcome: Outcome) -> str:
    """The outcome as JUnit XML: one ``<testsuite>`` (the suite), one ``<testcase>`` per
    condition, a ``<failure>`` for each one that failed."""
    frame = outcome.frame
    failures = int((~frame["passed"]).sum())
    suites = ET.Element("testsuites", name="mlpulse check", tests=str(len(frame)),
                        failures=str(failures), errors="0", time=f"{outcome.seconds:.3f}")  # fmt: skip
    suite = ET.SubElement(suites, "testsuite", name=outcome.suite.name, tests=str(len(frame)),
                          failures=str(failures), errors="0", skipped="0",
                          time=f"{outcome.seconds:.3f}",
                          timestamp=pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S"))  # fmt: skip
    props = ET.SubElement(suite, "properties")
    for key, value in (("model", outcome.model), ("version", outcome.version),
                       ("start", str(outcome.start)), ("end", str(outcome.end))):  # fmt: skip
        ET.SubElement(props, "property", name=key, value=str(value))
    classname = f"mlpulse.{outcome.model}.{outcome.version}"
    for row in frame.itertuples(index=False):
        case = ET.SubElement(suite, "testcase", name=str(row.condition), classname=classname,
                             time="0")  # fmt: skip
        shown = _shown(row.value)
        if not row.passed:
            message = row.note or f"value {shown} does not satisfy {row.condition}"
            failure = ET.SubElement(case, "failure", message=message, type="ConditionFailed")
            failure.text = f"{row.condition}: value {shown} over {row.rows} rows. {row.note}".strip()
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"value {shown} over {row.rows} rows"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "none" if math.isnan(value) else f"{value:.6g}"
    return str(value)


__all__ = ["COLUMNS", "Condition", "Outcome", "Suite", "evaluate", "junit_xml", "parse_suite",
           "run_service", "validate"]  # fmt: skip
