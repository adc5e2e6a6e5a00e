"""Data quality: constraints (inferred, YAML, API) and their violations per window.

See ``docs/quality.md``; ``Model.quality`` is the entry point.
"""

from mlpulse.quality.constraints import RULES, Constraint, infer, parse_constraints

__all__ = ["RULES", "Constraint", "infer", "parse_constraints"]
