"""Drift results: one :class:`ColumnDrift` per column, multiple-testing control over
columns, and the dataset-level decision.

Examples
--------
>>> adjust([0.01, 0.04, 0.03], "bonferroni").round(2).tolist()
[0.03, 0.12, 0.09]
>>> adjust([0.01, 0.04, 0.03], "bh").round(2).tolist()
[0.03, 0.04, 0.04]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError

COLUMNS = ["column", "kind", "method", "statistic", "p_value", "threshold", "drifted"]
CORRECTIONS = ("bh", "bonferroni", None)


@dataclass
class ColumnDrift:
    """The drift of one column."""

    column: str
    kind: str
    method: str
    statistic: float
    p_value: float
    threshold: float
    drifted: bool
    is_test: bool = True
    p_adjusted: float = math.nan
    n_reference: int = 0
    n_current: int = 0
    mode: str = "sketch"  # sketch | exact | exact-fallback
    note: str = ""


def adjust(p_values: Any, correction: str | None) -> np.ndarray:
    """Adjusted p-values: Bonferroni, Benjamini-Hochberg (``scipy.stats.false_discovery_control``)
    or none."""
    p = np.asarray(p_values, dtype=np.float64)
    if correction is None or len(p) == 0:
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(1.0, p * len(p))
    if correction == "bh":
        from scipy.stats import false_discovery_control

        return np.asarray(false_discovery_control(p, method="bh"), dtype=np.float64)
    raise ConfigError(f"correction must be 'bh', 'bonferroni' or None, got {correction!r}")


@dataclass
class DriftReport:
    """What ``model.drift`` returns.

    ``dataset_drift`` is True when, after the multiple-testing ``correction`` over the
    columns tested with p-values, at least ``drift_share`` of the columns drifted (the
    default share, 0 -- "any column" -- makes it a family-wise / FDR-controlled decision).
    """

    columns: list[ColumnDrift]
    correction: str | None = "bh"
    drift_share: float = 0.0
    window: tuple[Any, Any] = (None, None)
    against: Any = "reference"
    mode: str = "sketch"
    multivariate: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        scored = [c for c in self.columns if not _nan(c.statistic) or not _nan(c.p_value)]
        return len(self.drifted_columns) / len(scored) if scored else 0.0

    @property
    def dataset_drift(self) -> bool:
        if not self.drifted_columns:
            return False
        if self.drift_share <= 0:
            return True
        return self.share_drifted >= self.drift_share

    def to_pandas(self, details: bool = False) -> pd.DataFrame:
        """One row per column: column, kind, method, statistic, p_value, threshold, drifted
        (``details=True`` adds p_adjusted, n_reference, n_current, mode and note)."""
        rows = [asdict(c) for c in self.columns]
        names = COLUMNS + (
            ["p_adjusted", "n_reference", "n_current", "mode", "note"] if details else []
        )
        frame = pd.DataFrame(rows, columns=[*names, "is_test"])[names]
        frame["drifted"] = frame["drifted"].astype(bool)
        for c in ("statistic", "p_value", "threshold"):
            frame[c] = frame[c].astype("float64")
        return frame

    def __repr__(self) -> str:
        return (
            f"DriftReport(dataset_drift={self.dataset_drift}, drifted={self.drifted_columns}, "
            f"columns={len(self.columns)}, mode={self.mode!r})"
        )


def _nan(x: float) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def decide(columns: list[ColumnDrift], correction: str | None) -> None:
    """Set ``p_adjusted`` and ``drifted`` on every column (in place)."""
    if correction not in CORRECTIONS:
        raise ConfigError(f"correction must be 'bh', 'bonferroni' or None, got {correction!r}")
    tests = [c for c in columns if c.is_test and not _nan(c.p_value)]
    for c, p in zip(tests, adjust([c.p_value for c in tests], correction), strict=True):
        c.p_adjusted = float(p)
        c.drifted = bool(p < c.threshold)
    for c in columns:
        if not c.is_test:
            c.drifted = bool(not _nan(c.statistic) and c.statistic >= c.threshold)
        elif _nan(c.p_value):
            c.drifted = False
