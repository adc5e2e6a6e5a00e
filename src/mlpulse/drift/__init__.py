"""Drift: per-column tests and distances, dataset-level decisions, multivariate detectors.

See ``docs/drift.md``; ``Model.drift`` is the entry point.
"""

from mlpulse.drift.methods import METHODS, auto_method
from mlpulse.drift.report import ColumnDrift, DriftReport, adjust
from mlpulse.drift.samples import Counts, NumericSample

__all__ = [
    "METHODS",
    "ColumnDrift",
    "Counts",
    "DriftReport",
    "NumericSample",
    "adjust",
    "auto_method",
]
