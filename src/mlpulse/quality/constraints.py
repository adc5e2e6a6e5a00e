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
    """Constraints a reference profile implies: type, nullability (or a null-rate bound of
    twice the reference's rate plus 1%), numeric range and finiteness, allowed categories
    (up to ``ALLOWED_MAX``) and a cardinality bound of 1.5 x the reference's plus 5."""
    out: list[Constraint] = []
    for column, kind in kinds.items():
        state = states.get(column)
        if state is None:
            continue

        def c(rule: str, _column: str = column, **p: Any) -> Constraint:
            return Constraint(_column, rule, p, "inferred")

        out.append(c("type", kind=kind))
        rows = state.rows
        missing = state.nulls + (getattr(state, "nan", 0) if kind == "numeric" else 0)
        if rows and missing == 0:
            out.append(c("not_null"))
        elif rows:
            out.append(c("null_rate", max=round(min(1.0, 2 * missing / rows + 0.01), 6)))
        if kind == "numeric":
            if state.pos_inf + state.neg_inf == 0 and getattr(state, "nan", 0) == 0:
                out.append(c("finite"))
            if state.count:
                out.append(c("range", min=float(state.min), max=float(state.max)))
        else:
            if state.is_exact and state.distinct <= ALLOWED_MAX:
                out.append(c("allowed", values=sorted(state.frequencies())))
            out.append(c("max_distinct", max=int(math.ceil(1.5 * state.distinct)) + 5))
    return out
