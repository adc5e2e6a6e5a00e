"""Drift results: one :class:`ColumnDrift` per column, multiple-testing control over
columns, and the dataset-level decision.

Examples
--------
>>> adjust([0.01, 0.04, 0.03], "bonferroni").round(2).tolist()
[0.03, 0.12, 0.09]
>>> adjust([0.01, 0.04, 0.03], "bh").round(2).tolist()
[0.03, 0.04, 0.04]

A report travels as JSON (the HTTP API): ``to_dict`` is JSON-safe, with NaN as ``null`` and
infinities as ``"Infinity"`` / ``"-Infinity"``, and ``from_dict`` rebuilds it exactly:

>>> import json
>>> col = ColumnDrift("age", "numeric", "ks", 0.25, math.nan, 0.05, False)
>>> d = json.loads(json.dumps(DriftReport([col]).to_dict(), allow_nan=False))
>>> d["columns"][0]["p_value"] is None, DriftReport.from_dict(d).columns[0].p_value
(True, nan)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
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
    #: evidence of drift, Φ⁻¹(1 - p), N(0, 1) on clean data (see ``methods.evidence``)
    score: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-safe (see :func:`float_to_json`)."""
        return {
            "column": str(self.column),
            "kind": str(self.kind),
            "method": str(self.method),
            "statistic": float_to_json(self.statistic),
            "p_value": float_to_json(self.p_value),
            "threshold": float_to_json(self.threshold),
            "drifted": bool(self.drifted),
            "is_test": bool(self.is_test),
            "p_adjusted": float_to_json(self.p_adjusted),
            "n_reference": int(self.n_reference),
            "n_current": int(self.n_current),
            "mode": str(self.mode),
            "note": str(self.note),
            "score": float_to_json(self.score),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnDrift:
        """The column :meth:`to_dict` described (NaN back from ``null``)."""
        return cls(
            column=data["column"],
            kind=data["kind"],
            method=data["method"],
            statistic=float_from_json(data.get("statistic")),
            p_value=float_from_json(data.get("p_value")),
            threshold=float_from_json(data.get("threshold")),
            drifted=bool(data["drifted"]),
            is_test=bool(data.get("is_test", True)),
            p_adjusted=float_from_json(data.get("p_adjusted")),
            n_reference=int(data.get("n_reference", 0)),
            n_current=int(data.get("n_current", 0)),
            mode=data.get("mode", "sketch"),
            note=data.get("note", ""),
            score=float_from_json(data.get("score")),
        )


_INFINITY = {"Infinity": math.inf, "+Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


def float_to_json(value: Any) -> float | str | None:
    """A float for JSON: NaN (and None) -> ``None``, infinities -> ``"Infinity"`` /
    ``"-Infinity"`` (as protobuf's JSON mapping writes them), others unchanged (``repr``
    round-trips, so the value comes back bit for bit)."""
    if value is None:
        return None
    x = float(value)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def float_from_json(value: Any) -> float:
    """The inverse of :func:`float_to_json`: ``None`` -> NaN."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        if value in _INFINITY:
            return _INFINITY[value]
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def to_json(value: Any) -> Any:
    """A nested value (dicts, lists, numbers, times) as JSON-safe Python: numpy scalars as
    Python numbers, floats through :func:`float_to_json`, datetimes as ISO 8601."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float_to_json(value)
    if isinstance(value, datetime | date):  # pandas.Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_json(v) for v in value]
    return str(value)


def _numbers_from_json(value: Any) -> Any:
    """Undo :func:`to_json` on a structure whose ``null``s were NaN floats."""
    if value is None or (isinstance(value, str) and value in _INFINITY):
        return float_from_json(value)
    if isinstance(value, dict):
        return {k: _numbers_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_from_json(v) for v in value]
    return value


def _time_from_json(value: Any) -> Any:
    if value is None:
        return None
    t = datetime.fromisoformat(value)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


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

    With a ``step``, ``timeline`` holds one report per window (each window against the same
    baseline): :meth:`to_pandas` is their blocks with ``window_start`` and ``window_end``
    first, :attr:`windows` one row per window, :meth:`change_points` when each column
    changed. ``columns``, ``dataset_drift`` and ``drifted_columns`` stay the whole span's
    (:attr:`overall` is that report alone).
    """

    columns: list[ColumnDrift]
    correction: str | None = "bh"
    drift_share: float = 0.0
    window: tuple[Any, Any] = (None, None)
    against: Any = "reference"
    mode: str = "sketch"
    multivariate: dict[str, dict[str, Any]] = field(default_factory=dict)
    step: str | None = None
    timeline: list[DriftReport] = field(default_factory=list)

    @property
    def overall(self) -> DriftReport:
        """The whole span's report, without the timeline (the report itself without step)."""
        return replace(self, step=None, timeline=[])

    @property
    def windows(self) -> pd.DataFrame:
        """One row per window: window_start, window_end, n (rows compared: the most of any
        column), drifted (columns), share_drifted, dataset_drift, drifted_columns (a list).
        Without a step, one row for the span."""
        from .timeline import windows_frame

        return windows_frame(self.timeline if self.step is not None else [self])

    def change_points(self, k: float = 1.0, h: float = 6.0) -> pd.DataFrame:
        """When each column changed, from a CUSUM over its per-window evidence (needs a
        step): column, method, change_point, first_drifted, detected, statistic,
        drifted_windows, cusum. See :func:`mlpulse.drift.timeline.change_points`."""
        if self.step is None:
            raise ConfigError(
                "change_points needs a timeline: call model.drift(..., step='1h') (any step)"
            )
        from .timeline import change_points

        return change_points(self.timeline, k=k, h=h)

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
        (``details=True`` adds p_adjusted, n_reference, n_current, mode and note). With a
        step, one such block per window, with ``window_start`` and ``window_end`` first."""
        if self.step is not None:
            from .timeline import timeline_frame

            return timeline_frame(self.timeline, details)
        rows = [asdict(c) for c in self.columns]
        names = COLUMNS + (
            ["p_adjusted", "n_reference", "n_current", "mode", "note"] if details else []
        )
        frame = pd.DataFrame(rows, columns=[*names, "is_test"])[names]
        frame["drifted"] = frame["drifted"].astype(bool)
        for c in ("statistic", "p_value", "threshold"):
            frame[c] = frame[c].astype("float64")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe data; :meth:`from_dict` rebuilds it exactly.

        ``columns`` (each :meth:`ColumnDrift.to_dict`), ``correction``, ``drift_share``,
        ``window`` (two ISO 8601 times), ``against`` (times in it as ISO 8601), ``mode``,
        ``multivariate``, ``step`` and ``timeline`` (one such dict per window); ``dataset_drift`` and ``drifted_columns`` are there for readers
        of the JSON and ignored by :meth:`from_dict` (they follow from the rest)."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "correction": self.correction,
            "drift_share": float_to_json(self.drift_share),
            "window": [to_json(t) for t in self.window],
            "against": to_json(self.against),
            "mode": self.mode,
            "multivariate": to_json(self.multivariate),
            "dataset_drift": self.dataset_drift,
            "drifted_columns": self.drifted_columns,
            "step": self.step,
            "timeline": [w.to_dict() for w in self.timeline],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """The report :meth:`to_dict` described: floats as they were (``null`` -> NaN), the
        window as timezone-aware UTC datetimes."""
        window = data.get("window") or (None, None)
        return cls(
            [ColumnDrift.from_dict(c) for c in data.get("columns", [])],
            correction=data.get("correction"),
            drift_share=float_from_json(data.get("drift_share", 0.0)),
            window=(_time_from_json(window[0]), _time_from_json(window[1])),
            against=data.get("against", "reference"),
            mode=data.get("mode", "sketch"),
            multivariate=_numbers_from_json(data.get("multivariate") or {}),
            step=data.get("step"),
            timeline=[cls.from_dict(w) for w in data.get("timeline") or []],
        )

    def __repr__(self) -> str:
        windows = f", windows={len(self.timeline)}" if self.step is not None else ""
        return (
            f"DriftReport(dataset_drift={self.dataset_drift}, drifted={self.drifted_columns}, "
            f"columns={len(self.columns)}, mode={self.mode!r}{windows})"
        )

    def _repr_html_(self) -> str:
        """Notebook display: the verdict, then one row per column with an evidence bar."""
        from ..display import drift_html

        return drift_html(self)

    def plot(self) -> Any:
        """A plotly figure: evidence over threshold per column (a heatmap column x window
        with a step)."""
        from ..display import charts

        if self.step is not None and self.timeline:
            return charts.figure(charts.drift_timeline_figure(self.timeline))
        return charts.figure(charts.drift_figure(self.columns))


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
