"""Data-quality constraints: inferred from the reference, or given in YAML or through the API.

Rules (``params`` in brackets):

==================  ================================================================
``type``            values of the column's kind (numeric / categorical) [kind]
``not_null``        no missing values
``null_rate``       share of missing values at most ``max`` [max]
``range``           finite values within ``[min, max]`` [min, max]
``allowed``         categorical values from a set [values]
``max_distinct``    at most ``max`` distinct categories [max]
``finite``          no NaN or +/-inf (numeric columns and the prediction)
``new_column``      a column the reference did not have (inferred only)
``vanished_column`` a reference column with no values in the window (inferred only)
==================  ================================================================

A user's rule is a hard rule: every offending row is a violation. An inferred rule also
carries the reference's counts (``reference_rows`` and, per rule, ``reference_missing``,
``counts``, ``new_per_row``) and is broken only when its offending rows are more than chance
explains (:mod:`mlpulse.quality.significance`).

YAML (a file path or the text itself)::

    constraints:
      - {column: age, rule: range, min: 0, max: 120}
      - {column: plan, rule: allowed, values: [free, pro]}

Examples
--------
>>> [c.rule for c in parse_constraints("constraints:\\n  - {column: age, rule: range, min: 0, max: 9}")]
['range']
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

RULES = (
    "type",
    "not_null",
    "null_rate",
    "range",
    "allowed",
    "max_distinct",
    "finite",
    "new_column",
    "vanished_column",
)
ALLOWED_MAX = 100
"""Reference categories kept as an ``allowed`` set when there are at most this many."""
RANGE_MARGIN = 0.25
"""An inferred ``range`` is the reference's, widened by this share of its width each side."""


@dataclass(frozen=True)
class Constraint:
    """One rule on one column; ``source`` is 'inferred' or 'user'."""

    column: str
    rule: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    source: str = "user"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(
                f"column {self.column!r}: unknown rule {self.rule!r}; rules: {', '.join(RULES)}"
            )
        needed = {
            "null_rate": ("max",),
            "allowed": ("values",),
            "max_distinct": ("max",),
            "type": ("kind",),
        }.get(self.rule, ())
        for name in needed:
            if name not in self.params:
                raise ConfigError(f"column {self.column!r}: rule {self.rule!r} needs {name!r}")
        if self.rule == "range" and "min" not in self.params and "max" not in self.params:
            raise ConfigError(f"column {self.column!r}: rule 'range' needs 'min' and/or 'max'")

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "rule": self.rule, **self.params}


def parse_constraints(spec: Any) -> list[Constraint]:
    """Constraints from a YAML path or text, a dict with a ``constraints`` list, a list of
    dicts, or :class:`Constraint` objects."""
    if spec is None:
        return []
    if isinstance(spec, Constraint):
        return [spec]
    if isinstance(spec, str | os.PathLike):
        import yaml

        text = str(spec)
        if os.path.exists(text):
            with open(text, encoding="utf-8") as fh:
                text = fh.read()
        spec = yaml.safe_load(text)
    if isinstance(spec, dict):
        spec = spec.get("constraints", [])
    if not isinstance(spec, list):
        raise ConfigError("constraints must be a list of {column, rule, ...} entries")
    out = []
    for item in spec:
        if isinstance(item, Constraint):
            out.append(item)
            continue
        if not isinstance(item, dict) or "column" not in item or "rule" not in item:
            raise ConfigError(f"each constraint needs 'column' and 'rule', got {item!r}")
        params = {k: v for k, v in item.items() if k not in ("column", "rule")}
        out.append(Constraint(str(item["column"]), str(item["rule"]), params))
    return out


def dumps(constraints: list[Constraint]) -> str:
    return json.dumps([c.to_dict() for c in constraints])


def infer(states: dict[str, Any], kinds: dict[str, str]) -> list[Constraint]:
    """Constraints a reference profile implies, each judged against the reference (see
    ``docs/quality.md`` and :mod:`mlpulse.quality.significance`): type; ``not_null`` (or a
    null-rate bound of twice the reference's rate plus 1%); for numbers ``finite`` and
    ``range``, the reference's range widened by :data:`RANGE_MARGIN` of its width on each
    side (not past zero when the reference stays on one side of it); for categories
    ``allowed`` (up to ``ALLOWED_MAX`` values, with their reference counts) and a
    cardinality bound of 1.5 x the reference's plus 5, growing past the reference's row
    count at 1.5 x its rate of new values (singletons per row, Good-Turing).

    >>> import numpy as np
    >>> from mlpulse.profiles import NumericState
    >>> s = NumericState()
    >>> s.update(np.array([2.0, 4.0, 6.0]))
    >>> [c.to_dict() for c in infer({"x": s}, {"x": "numeric"}) if c.rule == "range"]
    [{'column': 'x', 'rule': 'range', 'min': 1.0, 'max': 7.0, 'reference_rows': 3}]
    """
    out: list[Constraint] = []
    for column, kind in kinds.items():
        state = states.get(column)
        if state is None:
            continue

        def c(rule: str, _column: str = column, **p: Any) -> Constraint:
            return Constraint(_column, rule, p, "inferred")

        out.append(c("type", kind=kind))
        rows = int(state.rows)
        missing = int(state.nulls + (getattr(state, "nan", 0) if kind == "numeric" else 0))
        if rows and missing == 0:
            out.append(c("not_null", reference_rows=rows))
        elif rows:
            out.append(
                c(
                    "null_rate",
                    max=round(min(1.0, 2 * missing / rows + 0.01), 6),
                    reference_rows=rows,
                    reference_missing=missing,
                )
            )
        if kind == "numeric":
            if state.pos_inf + state.neg_inf == 0 and getattr(state, "nan", 0) == 0:
                out.append(c("finite", reference_rows=rows))
            if state.count:
                lo, hi = float(state.min), float(state.max)
                margin = RANGE_MARGIN * (hi - lo)
                low = max(lo - margin, 0.0) if lo >= 0 else lo - margin
                high = min(hi + margin, 0.0) if hi <= 0 else hi + margin
                out.append(c("range", min=low, max=high, reference_rows=int(state.count)))
        else:
            frequencies = state.frequencies()
            if state.is_exact and state.distinct <= ALLOWED_MAX:
                values = sorted(frequencies)
                out.append(
                    c(
                        "allowed",
                        values=values,
                        counts=[int(frequencies[v]) for v in values],
                        reference_rows=int(state.count),
                    )
                )
            if state.count:
                # the rate at which further rows bring values the reference lacks: the share
                # of singletons (Good-Turing) while counts are exact, else distinct per row
                new = (
                    sum(1 for n in frequencies.values() if n == 1)
                    if state.is_exact
                    else state.distinct
                )
                out.append(
                    c(
                        "max_distinct",
                        max=int(math.ceil(1.5 * state.distinct)) + 5,
                        reference_rows=int(state.count),
                        new_per_row=round(1.5 * new / state.count, 6),
                    )
                )
            else:
                out.append(c("max_distinct", max=int(math.ceil(1.5 * state.distinct)) + 5))
    return out
