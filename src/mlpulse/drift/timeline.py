"""Drift over time: the per-window frames of a stepped ``model.drift`` and when each column
changed.

Change points come from a one-sided CUSUM (Page, 1954) over each column's per-window
evidence ``z`` (:func:`mlpulse.drift.methods.evidence`: ``Φ⁻¹(1 - p)`` of the window's
test, or the distance read against its threshold). While the windows are further samples of
the baseline's distribution, ``z`` is standard normal, whatever the method or the window's
size, so the in-control behaviour is known and no parameter is fitted to the series itself:

    ``S_0 = 0``, ``S_t = max(0, S_{t-1} + min(z_t, Z_MAX) - k)``, alarm when ``S_t >= h``.

The change point is the first window of the excursion that reached ``h`` (the window after
the last ``S = 0``: the maximum-likelihood change time of Page's CUSUM); ``detected`` is the
window where ``S`` reached ``h`` (when a monitor reading the windows one by one would have
alerted); ``first_drifted`` is the first window from the change point on that the window's
own test flagged. With the defaults ``k = 1``, ``h = 6`` the average run length on clean
windows is about 10^5-10^6 windows (Siegmund's approximation), one window with
``p < 10^-15`` raises the alarm at once, windows at ``p ≈ 10^-3`` within four.

CUSUM rather than Bayesian online change-point detection because the in-control
distribution is known: Page's CUSUM is then the optimal detector of a shift in mean
(Lorden; Moustakides) with a false-alarm rate fixed by ``h``, where BOCPD needs a hazard
rate and priors on both regimes and its alarm rate depends on them.

>>> from mlpulse.drift.report import ColumnDrift, DriftReport
>>> def window(hour, z):
...     col = ColumnDrift("x", "numeric", "ks", 0.1, 0.5, 0.05, z > 3, score=z)
...     return DriftReport([col], window=(f"2026-01-01T{hour:02d}:00Z", f"2026-01-01T{hour + 1:02d}:00Z"))
>>> days = [window(h, z) for h, z in enumerate([0.3, -1.0, 0.8, 4.0, 4.5, 5.0, 0.2])]
>>> found = change_points(days).iloc[0]
>>> str(found.change_point), str(found.first_drifted), str(found.detected)
('2026-01-01 03:00:00+00:00', '2026-01-01 03:00:00+00:00', '2026-01-01 04:00:00+00:00')
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .methods import Z_MAX

if TYPE_CHECKING:
    from .report import DriftReport

WINDOW = ["window_start", "window_end"]
CHANGE_COLUMNS = [
    "column",
    "method",
    "change_point",
    "first_drifted",
    "detected",
    "statistic",
    "drifted_windows",
    "cusum",
]


def _times(values: list[Any]) -> pd.Series:
    return pd.Series(pd.to_datetime(pd.Series(values, dtype=object), utc=True))


def timeline_frame(windows: list[DriftReport], details: bool = False) -> pd.DataFrame:
    """The windows' ``to_pandas`` blocks, with ``window_start`` and ``window_end`` first."""
    blocks = []
    for w in windows:
        block = w.to_pandas(details)
        block.insert(0, "window_end", w.window[1])
        block.insert(0, "window_start", w.window[0])
        blocks.append(block)
    if not blocks:
        from .report import DriftReport

        empty = DriftReport([]).to_pandas(details)
        blocks = [empty.reindex(columns=[*WINDOW, *empty.columns])]
    frame = pd.concat(blocks, ignore_index=True)
    for name in WINDOW:
        frame[name] = _times(list(frame[name]))
    frame["drifted"] = frame["drifted"].astype(bool)
    return frame


def windows_frame(windows: list[DriftReport]) -> pd.DataFrame:
    """One row per window: window_start, window_end, n, drifted, share_drifted,
    dataset_drift, drifted_columns."""
    frame = pd.DataFrame(
        {
            "window_start": _times([w.window[0] for w in windows]),
            "window_end": _times([w.window[1] for w in windows]),
            "n": pd.Series([max((c.n_current for c in w.columns), default=0) for w in windows],
                           dtype="int64"),
            "drifted": pd.Series([len(w.drifted_columns) for w in windows], dtype="int64"),
            "share_drifted": pd.Series([w.share_drifted for w in windows], dtype="float64"),
            "dataset_drift": pd.Series([w.dataset_drift for w in windows], dtype=bool),
            "drifted_columns": pd.Series([w.drifted_columns for w in windows], dtype=object),
        }
    )
    return frame


def change_points(windows: list[DriftReport], k: float = 1.0, h: float = 6.0) -> pd.DataFrame:
    """Per column, the CUSUM change point over the windows (see the module's text): column,
    method, change_point, first_drifted, detected (window starts, NaT when the CUSUM never
    reached ``h``), statistic (in the first drifted window, else where detected),
    drifted_windows (windows flagged from the change point on), cusum (the largest ``S``).
    Columns with a change point come first, earliest first."""
    if not (math.isfinite(k) and k >= 0 and math.isfinite(h) and h > 0):
        raise ConfigError(f"change_points needs k >= 0 and h > 0, got k={k!r}, h={h!r}")
    names: list[str] = []
    for w in windows:
        for c in w.columns:
            if c.column not in names:
                names.append(c.column)
    starts = _times([w.window[0] for w in windows])
    shape = (len(names), len(windows))
    z = np.full(shape, np.nan)
    stat = np.full(shape, np.nan)
    flagged = np.zeros(shape, dtype=bool)
    methods: list[list[str | None]] = [[None] * len(windows) for _ in names]
    where = {name: i for i, name in enumerate(names)}
    for t, w in enumerate(windows):
        for c in w.columns:
            i = where[c.column]
            z[i, t], stat[i, t], flagged[i, t] = c.score, c.statistic, c.drifted
            methods[i][t] = c.method
    rows = []
    for i, name in enumerate(names):
        s, top, begin, alarm = 0.0, 0.0, 0, -1
        for t in range(len(windows)):
            if math.isnan(z[i, t]):
                continue
            if s == 0.0:
                begin = t
            s = max(0.0, s + min(float(z[i, t]), Z_MAX) - k)
            top = max(top, s)
            if s >= h:
                alarm = t
                break
        if alarm >= 0:
            later = np.flatnonzero(flagged[i, begin:]) + begin
            first = int(later[0]) if len(later) else -1
            at = first if first >= 0 else alarm
            rows.append(
                {
                    "column": name,
                    "method": methods[i][at],
                    "change_point": starts[begin],
                    "first_drifted": starts[first] if first >= 0 else pd.NaT,
                    "detected": starts[alarm],
                    "statistic": float(stat[i, at]),
                    "drifted_windows": len(later),
                    "cusum": top,
                }
            )
        else:
            seen = Counter(m for m in methods[i] if m is not None)
            rows.append(
                {
                    "column": name,
                    "method": seen.most_common(1)[0][0] if seen else None,
                    "change_point": pd.NaT,
                    "first_drifted": pd.NaT,
                    "detected": pd.NaT,
                    "statistic": math.nan,
                    "drifted_windows": 0,
                    "cusum": top,
                }
            )
    frame = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
    for name in ("change_point", "first_drifted", "detected"):
        frame[name] = _times(list(frame[name]))
    frame["statistic"] = frame["statistic"].astype("float64")
    frame["cusum"] = frame["cusum"].astype("float64")
    frame["drifted_windows"] = frame["drifted_windows"].astype("int64")
    # changed columns first, earliest change first; then the others by their largest S
    changed = frame["change_point"].notna()
    frame = pd.concat(
        [
            frame[changed].sort_values(["change_point", "cusum"], ascending=[True, False]),
            frame[~changed].sort_values("cusum", ascending=False),
        ]
    )
    return frame.reset_index(drop=True)


__all__ = ["change_points", "timeline_frame", "windows_frame"]
