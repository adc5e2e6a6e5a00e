"""``model.quality``: count constraint violations per window and column.

Sketch mode reads merged profiles: missing/NaN/inf counts, category counts and type errors
are exact there; ``range`` violations come from the KLL sketch's ranks (exact when the
window's min and max are inside the range, else within the sketch's rank error). Exact mode
reads raw rows and counts everything exactly.

Examples
--------
>>> import numpy as np
>>> from mlpulse.profiles import NumericState
>>> s = NumericState()
>>> s.update(np.array([1.0, 5.0, np.nan, 12.0]))
>>> count(Constraint("x", "range", {"min": 0, "max": 10}), "numeric", s, 4, None)
1
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._time import from_micros
from ..engine.scope import Scope
from ..errors import ConfigError
from ..profiles import build_categorical, build_numeric
from ..schema import NUMERIC, ModelSpec
from ..store.database import Store
from ..store.registry import Registry
from .constraints import Constraint, infer, parse_constraints

COLUMNS = ["column", "rule", "violations", "rows", "rate"]


def count(rule: Constraint, kind: str, state: Any, rows: int, values: np.ndarray | None) -> int:
    """Rows of one window that break ``rule`` (``values``: exact finite values, if read)."""
    p = rule.params
    if rule.rule == "type":
        return 0  # filled from the core part's type errors by the caller
    if state is None:
        return rows if rule.rule in ("not_null", "vanished_column") else 0
    missing = state.nulls + (state.nan if kind == NUMERIC else 0)
    if rule.rule == "not_null":
        return int(missing)
    if rule.rule == "null_rate":
        return int(missing) if rows and missing / rows > float(p["max"]) else 0
    if rule.rule == "finite":
        return int(state.nan + state.pos_inf + state.neg_inf) if kind == NUMERIC else 0
    if rule.rule == "range":
        if kind != NUMERIC or state.count == 0:
            return 0
        lo = float(p.get("min", -math.inf))
        hi = float(p.get("max", math.inf))
        if values is not None:
            return int(np.count_nonzero((values < lo) | (values > hi)))
        if state.min >= lo and state.max <= hi:
            return 0
        below = state.kll.get_rank(lo, False) if lo > -math.inf else 0.0  # rank of < lo
        above = 1.0 - state.kll.get_rank(hi, True) if hi < math.inf else 0.0
        return int(round((below + above) * state.count))
    if rule.rule == "allowed":
        if kind == NUMERIC:
            return 0
        allowed = {str(v) for v in p["values"]}
        return int(sum(n for v, n in state.frequencies().items() if v not in allowed)) + (
            0 if state.is_exact else 0
        )
    if rule.rule == "max_distinct":
        return max(0, int(state.distinct) - int(p["max"])) if kind != NUMERIC else 0
    if rule.rule == "new_column":
        return int(state.rows - missing)
    if rule.rule == "vanished_column":
        return rows if state.rows - missing == 0 else 0
    raise ConfigError(f"unknown rule {rule.rule!r}")


def _rows_for(rule: Constraint, state: Any, rows: int) -> int:
    if rule.rule == "max_distinct":
        return int(state.distinct) if state is not None else 0
    return rows


def constraints_for(
    spec: ModelSpec, reference: dict[str, Any] | None, user: list[Constraint], infer_rules: bool
) -> list[Constraint]:
    """Inferred constraints (with new-column rules for columns the reference lacks), then
    user constraints, which replace an inferred rule of the same column and name."""
    kinds = dict(spec.features)
    kinds[spec.prediction] = "categorical" if spec.task == "multiclass" else NUMERIC
    out: list[Constraint] = []
    if infer_rules and reference is not None:
        out = infer(reference, kinds)
        for column in spec.features:
            if column not in reference:
                out.append(Constraint(column, "new_column", {}, "inferred"))
        for column in reference:
            if column in spec.features:
                out.append(Constraint(column, "vanished_column", {}, "inferred"))
    given = {(c.column, c.rule) for c in user}
    out = [c for c in out if (c.column, c.rule) not in given]
    known = set(kinds)
    for c in user:
        if c.column not in known:
            raise ConfigError(f"model {spec.name!r}: constraint on unknown column {c.column!r}")
    return out + list(user)


def compute_quality(
    store: Store,
    registry: Registry,
    scope: Scope,
    *,
    mode: str = "sketch",
    constraints: Any = None,
    stored: list[Constraint] | None = None,
    infer_rules: bool = True,
) -> pd.DataFrame:
    """See ``Model.quality``: one row per (window,) column and rule."""
    from ..drift.sources import (
        model_columns,
        reference_states,
        reference_version,
        window_rows,
        window_states,
    )

    if mode not in ("sketch", "exact"):
        raise ConfigError(f"mode must be 'sketch' or 'exact', got {mode!r}")
    spec, version, versions, step = scope.spec, scope.version, scope.versions, scope.step
    seg = scope.segment_key
    bounds = scope.bounds
    ref_version = reference_version(store, spec, version)
    reference = (
        reference_states(store, registry, spec, ref_version) if ref_version is not None else None
    )
    if reference is not None:
        reference = {k: v for k, v in reference.items() if not k.startswith("__")}
        reference.pop(spec.label, None)
    rules = constraints_for(
        spec, reference, [*(stored or []), *parse_constraints(constraints)], infer_rules
    )
    kinds = dict(spec.features)
    kinds[spec.prediction] = "categorical" if spec.task == "multiclass" else NUMERIC
    per_window = window_states(store, registry, spec, bounds, versions, seg)
    exact_values: list[dict[str, Any]] = [{} for _ in bounds]
    if mode == "exact":
        cols = [c for c in model_columns(spec) if c.role != "label"]
        lo, hi = bounds[0][0], bounds[-1][1]
        table = window_rows(store, registry, spec, cols, lo, hi, versions, seg, extra=("__ts",))
        ts = (
            pc.cast(table.column("__ts"), pa.int64()).to_numpy()
            if table.num_rows
            else np.zeros(0, np.int64)
        )
        starts = np.array([b[0] for b in bounds], dtype=np.int64)
        group = np.searchsorted(starts, ts, side="right") - 1
        from ..engine.validate import to_float, to_string

        for c in cols:
            if c.name not in table.column_names:
                continue
            array = table.column(c.name)
            states: list[Any]
            if c.kind == NUMERIC:
                vals, null, bad = to_float(array)
                states = build_numeric(vals, group, len(bounds), nulls=null | bad)
                for i in range(len(bounds)):
                    x = vals[(group == i) & ~(null | bad)]
                    exact_values[i][c.name] = x[np.isfinite(x)]
            else:
                strings, _ = to_string(array)
                states = build_categorical(strings, group, len(bounds))
            for i, one in enumerate(states):
                per_window[i][c.name] = one
    rows_out = []
    for (lo, hi), window, values in zip(bounds, per_window, exact_values, strict=True):
        n = int(window.get("__rows") or 0)
        core = window.get("__core")
        type_errors = core.type_errors if core is not None else {}
        for rule in rules:
            kind = kinds.get(rule.column, NUMERIC)
            state = window.get(rule.column)
            if rule.rule == "type":
                violations = int(type_errors.get(rule.column, 0))
            else:
                violations = count(rule, kind, state, n, values.get(rule.column))
            total = _rows_for(rule, state, n)
            rows_out.append(
                {
                    "window_start": from_micros(lo),
                    "window_end": from_micros(hi),
                    "column": rule.column,
                    "rule": rule.rule,
                    "violations": violations,
                    "rows": total,
                    "rate": violations / total if total else math.nan,
                    "source": rule.source,
                }
            )
    names = (["window_start", "window_end"] if step is not None else []) + COLUMNS
    frame = pd.DataFrame(rows_out, columns=["window_start", "window_end", *COLUMNS, "source"])
    frame = frame[names]
    if step is not None:
        for name in ("window_start", "window_end"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
    frame["violations"] = frame["violations"].astype("int64")
    frame["rows"] = frame["rows"].astype("int64")
    frame["rate"] = frame["rate"].astype("float64")
    return frame


class QualityReport:
    """What ``model.quality`` returns: ``to_pandas()`` has one row per (window,) column and
    rule with ``violations``, ``rows`` and ``rate``; ``ok`` is True when nothing is violated."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def to_pandas(self) -> pd.DataFrame:
        return self._frame.copy()

    @property
    def violations(self) -> pd.DataFrame:
        """Only the rows with at least one violation."""
        return self._frame[self._frame["violations"] > 0].reset_index(drop=True)

    @property
    def ok(self) -> bool:
        return bool((self._frame["violations"] == 0).all())

    def __repr__(self) -> str:
        bad = self.violations
        return f"QualityReport(rules={len(self._frame)}, violated={len(bad)})"
