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
from .significance import (
    ALPHA,
    beyond_extremes_pvalue,
    more_often_pvalue,
    unseen_categories_pvalue,
)

COLUMNS = ["column", "rule", "violations", "rows", "rate"]


def count(rule: Constraint, kind: str, state: Any, rows: int, values: np.ndarray | None) -> int:
    """Rows of one window that break ``rule`` (``values``: exact finite values, if read).

    An inferred rule counts its offending rows only when they are more than chance explains
    against the reference (:func:`significant`); a user's rule counts every one."""
    broken, at_least = _offending(rule, kind, state, rows, values)
    if broken and rule.source == "inferred" and not significant(rule, kind, state, rows, at_least):
        return 0
    return broken


def _offending(
    rule: Constraint, kind: str, state: Any, rows: int, values: np.ndarray | None
) -> tuple[int, int]:
    """(offending rows, the fewest the sketch allows): the two differ only for a ``range``
    estimated from a KLL sketch in estimation mode."""
    p = rule.params
    if rule.rule == "type":
        return 0, 0  # filled from the core part's type errors by the caller
    if state is None:
        n = rows if rule.rule in ("not_null", "vanished_column") else 0
        return n, n
    missing = state.nulls + (state.nan if kind == NUMERIC else 0)
    n = 0
    if rule.rule == "not_null":
        n = int(missing)
    elif rule.rule == "null_rate":
        n = int(missing) if rows and missing / rows > float(p["max"]) else 0
    elif rule.rule == "finite":
        n = int(state.nan + state.pos_inf + state.neg_inf) if kind == NUMERIC else 0
    elif rule.rule == "range":
        if kind != NUMERIC or state.count == 0:
            return 0, 0
        lo = float(p.get("min", -math.inf))
        hi = float(p.get("max", math.inf))
        if values is not None:
            n = int(np.count_nonzero((values < lo) | (values > hi)))
            return n, n
        if state.min >= lo and state.max <= hi:
            return 0, 0
        below = state.kll.get_rank(lo, False) if lo > -math.inf else 0.0  # rank of < lo
        above = 1.0 - state.kll.get_rank(hi, True) if hi < math.inf else 0.0
        n = int(round((below + above) * state.count))
        if state.kll.is_estimation_mode():  # each rank is within the sketch's rank error
            sides = int(state.min < lo) + int(state.max > hi)
            return n, max(0, n - math.ceil(sides * state.rank_error * state.count))
        return n, n
    elif rule.rule == "allowed":
        if kind == NUMERIC:
            return 0, 0
        allowed = {str(v) for v in p["values"]}
        n = int(sum(c for v, c in state.frequencies().items() if v not in allowed))
    elif rule.rule == "max_distinct":
        if kind == NUMERIC:
            return 0, 0
        limit = float(p["max"])
        if rule.source == "inferred" and "reference_rows" in p:
            # a window larger than the reference may hold more values than it did
            grown = max(0, int(state.count) - int(p["reference_rows"]))
            limit += float(p.get("new_per_row", 0.0)) * grown
        n = max(0, int(state.distinct) - int(math.floor(limit)))
    elif rule.rule == "new_column":
        n = int(state.rows - missing)
    elif rule.rule == "vanished_column":
        n = rows if state.rows - missing == 0 else 0
    else:
        raise ConfigError(f"unknown rule {rule.rule!r}")
    return n, n


def significant(rule: Constraint, kind: str, state: Any, rows: int, k: int) -> bool:
    """Whether ``k`` offending rows of an inferred rule are more than chance explains, were
    the window another sample of the reference's distribution (level ``ALPHA``)."""
    p = rule.params
    m = p.get("reference_rows")
    if m is None or rule.rule in ("type", "new_column", "max_distinct"):
        return True  # no test: a schema change, or a bound that already scales
    m = int(m)
    if k <= 0:
        return False
    if rule.rule in ("not_null", "finite"):
        n = rows if state is None else int(state.rows)
        return beyond_extremes_pvalue(k, n, m, tails=1) < ALPHA
    if rule.rule == "null_rate":
        return more_often_pvalue(k, rows, int(p["reference_missing"]), m) < ALPHA
    if rule.rule == "range":
        return beyond_extremes_pvalue(k, int(state.count), m, tails=2) < ALPHA
    if rule.rule == "allowed":
        reference = {str(v): int(c) for v, c in zip(p["values"], p["counts"], strict=True)}
        window = state.frequencies()
        new = [c for v, c in window.items() if v not in reference]
        pooled = [*new, *(c + int(window.get(v, 0)) for v, c in reference.items())]
        return unseen_categories_pvalue(new, pooled, int(state.count), m) < ALPHA
    if rule.rule == "vanished_column":
        # every one of the reference's present values fell in the reference, none here
        present = int(p["reference_present"])
        return beyond_extremes_pvalue(present, m, rows, tails=1) < ALPHA
    return True


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
        for column, state in reference.items():
            if column in spec.features:
                missing = state.nulls + getattr(state, "nan", 0)
                params = {
                    "reference_rows": int(state.rows),
                    "reference_present": int(state.rows - missing),
                }
                out.append(Constraint(column, "vanished_column", params, "inferred"))
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
    rule with ``violations``, ``rows`` and ``rate``; ``ok`` is True when nothing is violated.

    With a step the frame starts with ``window_start`` and ``window_end``; :attr:`windows`
    has one row per window and :meth:`first_violations` when each rule was first broken.
    Inferred rules count a window's violations only when chance cannot explain them (level
    ``ALPHA`` = 1e-4 per window and rule), so clean windows stay silent."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def to_pandas(self) -> pd.DataFrame:
        return self._frame.copy()

    @property
    def stepped(self) -> bool:
        """Whether the report has one block per window (the query had a step)."""
        return "window_start" in self._frame.columns

    @property
    def windows(self) -> pd.DataFrame:
        """One row per window: window_start, window_end, rows (the window's rows), violated
        (rules broken), violations (their offending rows), ok. Without a step, one row for
        the span without the window columns."""
        frame = self._frame.assign(
            broken=(self._frame["violations"] > 0).astype("int64"),
            counted=self._frame["rows"].where(self._frame["rule"] != "max_distinct", 0),
        )
        keys = ["window_start", "window_end"] if self.stepped else []
        if keys:
            out = frame.groupby(keys, sort=True, dropna=False).agg(
                rows=("counted", "max"), violated=("broken", "sum"), violations=("violations", "sum")
            ).reset_index()
        else:
            out = pd.DataFrame(
                {
                    "rows": [int(frame["counted"].max()) if len(frame) else 0],
                    "violated": [int(frame["broken"].sum())],
                    "violations": [int(frame["violations"].sum())],
                }
            )
        for name in ("rows", "violated", "violations"):
            out[name] = out[name].astype("int64")
        out["ok"] = out["violated"] == 0
        return out

    def first_violations(self) -> pd.DataFrame:
        """Per broken rule (needs a step): column, rule, first_violated and last_violated
        (window starts), windows (how many broken), violations (offending rows in all),
        earliest first. Empty when nothing was violated."""
        if not self.stepped:
            raise ConfigError(
                "first_violations needs windows: call model.quality(..., step='1h') (any step)"
            )
        bad = self._frame[self._frame["violations"] > 0]
        out = (
            bad.groupby(["column", "rule"], sort=False)
            .agg(
                first_violated=("window_start", "min"),
                last_violated=("window_start", "max"),
                windows=("window_start", "nunique"),
                violations=("violations", "sum"),
            )
            .reset_index()
        )
        out = out.reindex(
            columns=["column", "rule", "first_violated", "last_violated", "windows", "violations"]
        )
        for name in ("first_violated", "last_violated"):
            out[name] = pd.to_datetime(out[name], utc=True)
        for name in ("windows", "violations"):
            out[name] = out[name].astype("int64")
        return out.sort_values(["first_violated", "column", "rule"]).reset_index(drop=True)

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

    def _repr_html_(self) -> str:
        """Notebook display: the verdict and the violated rules with their rates."""
        from ..display import quality_html

        return quality_html(self._frame)

    def plot(self) -> Any:
        """A plotly figure of the violations per column and rule (stacked over windows
        with a step)."""
        from ..display import charts

        return charts.figure(charts.quality_figure(self._frame))
