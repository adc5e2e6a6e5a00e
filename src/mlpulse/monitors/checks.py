"""The seven monitoring tests of Google's ML Test Score, run as checks over a window.

=========================  ============================================================
monitor                    fails when
=========================  ============================================================
``dependencies``           the version's Python or package versions differ from the
                           previous version's (the difference is in ``detail``)
``data_invariants``        a data-quality constraint is violated in the window
``training_serving_skew``  a feature's mismatch rate over ids logged in both training
                           and serving exceeds ``skew_tolerance`` (default 0)
``staleness``              the version is older than its ``max_age``
``numerical_stability``    NaN or inf appear in features or predictions
``computational``          latency p95 or memory grow by more than ``regression`` (20%)
                           or throughput falls by as much, against the previous version
``prediction_quality``     a quality metric falls by more than ``quality_drop`` (0.05)
                           against the reference or a previous version, overall or in a
                           segment of at least ``min_segment_rows`` (200) labeled rows, and
                           significantly (one-sided p below ``alpha`` (1e-4) over the
                           slices judged)
=========================  ============================================================

A check that lacks its inputs (no previous version, no labels, no training info) is
``skipped``, with the reason.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._time import from_micros
from ..engine.query import windows
from ..store.registry import raw_table
from . import training
from .significance import SliceQuality, auc_with_variance, drop_pvalue

MONITORS = (
    "dependencies",
    "data_invariants",
    "training_serving_skew",
    "staleness",
    "numerical_stability",
    "computational",
    "prediction_quality",
)
QUALITY_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
LOWER_IS_BETTER = {"rmse"}


@dataclass
class Check:
    monitor: str
    status: str  # pass | fail | skipped
    value: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: a NaN ``value`` (a skipped check) is ``null``."""
        from ..drift.report import float_to_json

        return {
            "monitor": str(self.monitor),
            "status": str(self.status),
            "value": float_to_json(self.value),
            "detail": str(self.detail),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        from ..drift.report import float_from_json

        return cls(data["monitor"], data["status"], float_from_json(data.get("value")),
                   data.get("detail", ""))


class MonitorReport:
    """What ``model.checks`` returns; ``to_pandas()``: monitor, status, value, detail."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.monitor for c in self.checks if c.status == "fail"]

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame(
            [asdict(c) for c in self.checks], columns=["monitor", "status", "value", "detail"]
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"checks": [...], "ok": ..., "failed": [...]}``, JSON-safe; :meth:`from_dict`
        rebuilds the report exactly (``ok`` and ``failed`` follow from the checks).

        >>> report = MonitorReport([Check("staleness", "skipped", math.nan, "no info")])
        >>> data = report.to_dict()
        >>> data["checks"][0]["value"] is None, MonitorReport.from_dict(data).ok
        (True, True)
        """
        return {
            "checks": [c.to_dict() for c in self.checks],
            "ok": self.ok,
            "failed": self.failed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorReport:
        return cls([Check.from_dict(c) for c in data.get("checks", [])])

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.monitor == name:
                return c
        raise KeyError(name)

    def __repr__(self) -> str:
        return f"MonitorReport(ok={self.ok}, failed={self.failed})"


def previous_version(model: Any) -> str | None:
    versions = model.versions()
    if model.version not in versions:
        return None
    i = versions.index(model.version)
    return versions[i - 1] if i > 0 else None


def environment_diff(old: dict, new: dict) -> dict[str, Any]:
    """Python and package differences between two recorded environments."""
    out: dict[str, Any] = {}
    if old.get("python") != new.get("python"):
        out["python"] = [old.get("python"), new.get("python")]
    a, b = old.get("packages", {}), new.get("packages", {})
    changed = {k: [a[k], b[k]] for k in sorted(set(a) & set(b)) if a[k] != b[k]}
    added = {k: b[k] for k in sorted(set(b) - set(a))}
    removed = {k: a[k] for k in sorted(set(a) - set(b))}
    for name, value in (("changed", changed), ("added", added), ("removed", removed)):
        if value:
            out[name] = value
    return out


def check_dependencies(model: Any) -> Check:
    prev = previous_version(model)
    if prev is None:
        return Check("dependencies", "skipped", math.nan, "no previous version to compare with")
    rows = model.service.store.fetch_all(
        "SELECT version, environment FROM versions WHERE model_id = ? AND list_contains(?, version)",
        [model.spec.model_id, [prev, model.version]],
    )
    env = {v: json.loads(e) if e else {} for v, e in rows}
    diff = environment_diff(env.get(prev, {}), env.get(model.version, {}))
    if not diff:
        return Check("dependencies", "pass", 0.0, f"same environment as {prev}")
    n = sum(len(v) if isinstance(v, dict) else 1 for v in diff.values())
    return Check("dependencies", "fail", float(n), f"differs from {prev}: {json.dumps(diff)}")


def check_invariants(model: Any, start: Any, end: Any) -> Check:
    bad = model.quality(start=start, end=end).violations
    if bad.empty:
        return Check("data_invariants", "pass", 0.0, "all constraints hold")
    parts = [f"{r.column}.{r.rule}: {r.violations}/{r.rows}" for r in bad.itertuples()]
    return Check("data_invariants", "fail", float(bad["violations"].sum()), "; ".join(parts))


def check_skew(model: Any, tolerance: float) -> Check:
    frame = model.skew()
    if frame.empty or frame["ids"].iloc[0] == 0:
        return Check(
            "training_serving_skew",
            "skipped",
            math.nan,
            "no ids logged both in training (log_training_features) and serving",
        )
    worst = frame.sort_values("rate", ascending=False).iloc[0]
    bad = frame[frame["rate"] > tolerance]
    status = "fail" if len(bad) else "pass"
    detail = ", ".join(f"{r.column}: {r.rate:.4f}" for r in bad.itertuples()) or (
        f"{int(worst['ids'])} ids, no mismatches above {tolerance}"
    )
    return Check("training_serving_skew", status, float(worst["rate"]), detail)


def check_staleness(model: Any, now_us: int) -> Check:
    trained, max_age = training.training_info(model.service.store, model.spec, model.version)
    if trained is None or max_age is None:
        return Check("staleness", "skipped", math.nan, "set trained_at and max_age first")
    age = (now_us - trained) / 1e6
    status = "fail" if age > max_age / 1e6 else "pass"
    return Check("staleness", status, age, f"age {age / 3600:.1f} h, max {max_age / 3.6e9:.1f} h")


def check_stability(model: Any, start: Any, end: Any) -> Check:
    from ..drift.sources import window_states

    lo, hi = windows(start, end, None)[0]
    store, registry, spec = model.service.store, model.service.registry, model.spec
    states = window_states(store, registry, spec, [(lo, hi)], [model.version], "")[0]
    bad = []
    total_bad = 0
    for column, state in states.items():
        if column.startswith("__") or not hasattr(state, "pos_inf"):
            continue
        k = int(state.nan + state.pos_inf + state.neg_inf)
        if k:
            total_bad += k
            bad.append(
                f"{column}: {state.nan} NaN, {state.pos_inf + state.neg_inf} inf of {state.rows}"
            )
    n = int(states.get("__rows") or 0)
    rate = total_bad / n if n else 0.0
    if bad:
        return Check("numerical_stability", "fail", rate, "; ".join(bad))
    return Check("numerical_stability", "pass", 0.0, f"no NaN or inf in {n} rows")


def _activity(model: Any, version: str, lo: int, hi: int) -> tuple[int, int, int]:
    """(rows, first, last) of a version in the window, else over its whole history."""
    store, spec = model.service.store, model.spec
    sql = (
        f"SELECT count(*), min(epoch_us(__ts)), max(epoch_us(__ts)) FROM {raw_table(spec)} "
        "WHERE __version = ?"
    )
    row = store.fetch_one(
        sql + " AND __ts >= make_timestamp(?::BIGINT) AND __ts < make_timestamp(?::BIGINT)",
        [version, lo, hi],
    )
    if not row or not row[0]:
        row = store.fetch_one(sql, [version])
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def check_computational(model: Any, start: Any, end: Any, regression: float) -> Check:
    prev = previous_version(model)
    if prev is None:
        return Check("computational", "skipped", math.nan, "no previous version to compare with")
    lo, hi = windows(start, end, None)[0]
    out, worst = [], 0.0
    figures = {}
    for v in (prev, model.version):
        n, first, last = _activity(model, v, lo, hi)
        span = (last - first) / 1e6 if n > 1 else math.nan
        frame = model.metrics(
            ["latency_p95"],
            start=from_micros(first if n else lo),
            end=from_micros(last + 1 if n else hi),
            version=v,
        )
        mem = training.memory_mb(model.service.store, model.spec, v, lo, hi)
        figures[v] = {
            "latency_p95": float(frame["latency_p95"].iloc[0]),
            "throughput": n / span if span and span > 0 else math.nan,
            "memory_mb": mem if mem is not None else math.nan,
        }
    a, b = figures[prev], figures[model.version]
    for name, worse in (("latency_p95", 1), ("memory_mb", 1), ("throughput", -1)):
        if not (math.isfinite(a[name]) and math.isfinite(b[name])) or a[name] == 0:
            continue
        change = (b[name] - a[name]) / a[name] * worse
        worst = max(worst, change)
        if change > regression:
            out.append(f"{name} {a[name]:.4g} -> {b[name]:.4g}")
    status = "fail" if out else "pass"
    detail = "; ".join(out) or f"within {regression:.0%} of {prev}: {json.dumps(b)}"
    return Check("computational", status, worst, detail)


def _reference_quality(model: Any, name: str, segment: str | None) -> SliceQuality | None:
    """The metric on the reference's labeled rows (of a segment), with its test inputs."""
    from ..drift.sources import model_columns, reference_rows, reference_version
    from ..engine.validate import to_float, to_string

    store, registry, spec = model.service.store, model.service.registry, model.spec
    ref = reference_version(store, spec, model.version)
    if ref is None:
        return None
    cols = [c for c in model_columns(spec) if c.role != "feature"]
    table = reference_rows(store, registry, spec, ref, cols, segment or "")
    if spec.prediction not in table.column_names or spec.label not in table.column_names:
        return None
    if spec.task == "multiclass":
        y_true = to_string(table.column(spec.label))[0]
        y_pred = to_string(table.column(spec.prediction))[0]
        keep = ~(
            y_true.is_null().to_numpy(zero_copy_only=False)
            | y_pred.is_null().to_numpy(zero_copy_only=False)
        )
        n = int(keep.sum())
        if not n:
            return None
        same = y_true.to_numpy(zero_copy_only=False) == y_pred.to_numpy(zero_copy_only=False)
        correct = int(np.count_nonzero(same & keep))
        return SliceQuality(name, correct / n, n, correct=correct)
    s, y = to_float(table.column(spec.prediction))[0], to_float(table.column(spec.label))[0]
    keep = np.isfinite(s) & np.isfinite(y)
    s, y = s[keep], y[keep]
    if spec.task == "regression":
        if not len(y):
            return None
        sq = (s - y) ** 2
        var = float(np.var(sq, ddof=1)) if len(sq) > 1 else math.nan
        return SliceQuality(name, float(np.sqrt(sq.mean())), len(y), sq_error_var=var)
    levels, level = np.unique(s, return_inverse=True)
    positive = y == 1
    pos = np.bincount(level[positive], minlength=len(levels))
    neg = np.bincount(level[~positive], minlength=len(levels))
    auc, var = auc_with_variance(pos, neg)
    if not math.isfinite(auc):
        return None
    return SliceQuality(name, auc, len(y), variance=var)


def _window_quality(
    model: Any, name: str, start: Any, end: Any, segment: str | None, version: str | None = None
) -> SliceQuality | None:
    """The metric on the labeled rows of a window (of a segment, of a version)."""
    from ..engine.query import WindowQuery
    from ..metrics.catalog import TASK_METRICS
    from ..profiles.bucket import CORE, LABELED

    service = model.service
    scope = service.scope(
        model.name, model.version, start=start, end=end, segment=segment, versions=version
    )
    query = WindowQuery(service.store, service.registry, scope.spec)
    [parts] = query.merged(
        [scope.span], [CORE, LABELED], versions=scope.versions, segment=scope.segment_key,
        decode={LABELED},
    )
    state, n = parts[LABELED], int(parts[f"n_{LABELED}"] or 0)
    if state is None or not n:
        return None
    value = float(TASK_METRICS[scope.spec.task][name](state))
    if not math.isfinite(value):
        return None
    if name == "roc_auc":
        pos, neg = state.class_counts()
        return SliceQuality(name, value, n, variance=auc_with_variance(pos, neg)[1])
    if name == "accuracy":
        return SliceQuality(name, value, n, correct=int(state.correct))
    return SliceQuality(name, value, n)


def check_quality(
    model: Any,
    start: Any,
    end: Any,
    against: Any,
    drop: float,
    min_segment_rows: int = 200,
    alpha: float = 1e-4,
) -> Check:
    """Fails when a slice's metric is worse than the baseline's by more than ``drop`` and
    significantly so: one-sided p-value below ``alpha`` over the slices judged (Bonferroni).
    Segments with fewer than ``min_segment_rows`` labeled rows in the window are not judged;
    all rows always are."""
    spec = model.spec
    name = QUALITY_METRIC[spec.task]
    sign = -1.0 if name in LOWER_IS_BETTER else 1.0
    segments: list[str | None] = [None]
    registry = model.service.registry
    for column in spec.segments:
        segments += [f"{column}={v}" for v in sorted(registry.segment_values(spec, column))]
    prev = previous_version(model) if against != "reference" else None
    base_name = against if isinstance(against, str) and against != "reference" else prev
    judged: list[tuple[str, str, SliceQuality, SliceQuality]] = []
    small = 0
    for seg in segments:
        now = _window_quality(model, name, start, end, seg)
        if now is None:
            continue
        if seg is not None and now.n < min_segment_rows:
            small += 1  # too few labeled rows to tell a drop from chance on its own
            continue
        if against == "reference" or base_name is None:
            base = _reference_quality(model, name, seg)
            label = "reference"
        else:
            lo, hi = windows(start, end, None)[0]
            n, first, last = _activity(model, base_name, lo, hi)
            base = (
                _window_quality(
                    model, name, from_micros(first), from_micros(last + 1), seg, base_name
                )
                if n
                else None
            )
            label = base_name
        if base is None or not (math.isfinite(base.value) and math.isfinite(now.value)):
            continue
        judged.append((seg or "all rows", label, base, now))
    not_judged = (
        f"; {small} segment(s) with fewer than {min_segment_rows} labeled rows not judged"
        if small
        else ""
    )
    if not judged:
        return Check(
            "prediction_quality",
            "skipped",
            math.nan,
            "no labeled rows or no baseline with labels to compare with" + not_judged,
        )
    level = alpha / len(judged)
    lines, worst = [], 0.0
    for where, label, base, now in judged:
        loss = sign * (base.value - now.value)
        worst = max(worst, loss)
        p = drop_pvalue(base, now)
        if loss > drop and p < level:
            lines.append(
                f"{where}: {name} {base.value:.4f} ({label}) -> {now.value:.4f} "
                f"over {now.n} labeled rows (p={p:.2g})"
            )
    status = "fail" if lines else "pass"
    detail = "; ".join(lines) or (
        f"{name} not worse than the baseline by more than {drop} and significantly in "
        f"{len(judged)} slice(s)" + not_judged
    )
    return Check("prediction_quality", status, worst, detail)


def run_checks(
    model: Any,
    start: Any = "-24h",
    end: Any = "now",
    *,
    against: Any = "reference",
    monitors: Any = None,
    skew_tolerance: float = 0.0,
    regression: float = 0.2,
    quality_drop: float = 0.05,
    min_segment_rows: int = 200,
    alpha: float = 1e-4,
    now: Any = None,
) -> MonitorReport:
    from .._time import to_micros
    from ..errors import ConfigError

    wanted = list(monitors) if monitors is not None else list(MONITORS)
    unknown = [m for m in wanted if m not in MONITORS]
    if unknown:
        raise ConfigError(f"unknown monitors {unknown}; monitors: {', '.join(MONITORS)}")
    if isinstance(min_segment_rows, bool) or not isinstance(min_segment_rows, int | np.integer):
        raise ConfigError(f"min_segment_rows must be a whole number, not {min_segment_rows!r}")
    if min_segment_rows < 0:
        raise ConfigError(f"min_segment_rows must be >= 0, not {min_segment_rows}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha <= 1:
        raise ConfigError(f"alpha must be a number in (0, 1], not {alpha!r}")
    now_us = to_micros(now) if now is not None else int(time.time() * 1e6)
    runners = {
        "dependencies": lambda: check_dependencies(model),
        "data_invariants": lambda: check_invariants(model, start, end),
        "training_serving_skew": lambda: check_skew(model, skew_tolerance),
        "staleness": lambda: check_staleness(model, now_us),
        "numerical_stability": lambda: check_stability(model, start, end),
        "computational": lambda: check_computational(model, start, end, regression),
        "prediction_quality": lambda: check_quality(
            model, start, end, against, quality_drop, min_segment_rows, alpha
        ),
    }
    out = []
    for name in wanted:
        try:
            out.append(runners[name]())
        except Exception as exc:  # a check that cannot run is reported, not raised
            out.append(Check(name, "skipped", math.nan, f"could not run: {exc}"))
    return MonitorReport(out)


__all__ = ["MONITORS", "Check", "MonitorReport", "run_checks"]
