"""How mlpulse results look: notebook HTML with small inline charts, plotly figures
(``.plot()``), and the plotly.js the HTML report inlines.

``model.metrics()`` and ``model.estimate()`` return plain ``pandas.DataFrame`` objects (equal
to any other frame with the same data). Importing mlpulse registers:

- the accessor ``frame.mlpulse``: ``frame.mlpulse.plot()`` is a plotly figure of the metrics
  over the windows (bands from ``ci=`` / ``band=True`` shaded), and ``frame.mlpulse`` shown
  in a notebook is the frame with a sparkline per metric;
- in IPython/Jupyter, an HTML formatter that shows a metrics-shaped frame (``window_start``,
  ``window_end``, ``n``, ``n_labeled`` and metric columns, several windows) that way by
  default; every other frame keeps pandas' own HTML.

``DriftReport`` and ``QualityReport`` have ``_repr_html_`` and ``.plot()`` themselves.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from . import charts
from .notebook import drift_html, frame_html, is_metrics_frame, quality_html

__all__ = [
    "charts",
    "drift_html",
    "frame_html",
    "is_metrics_frame",
    "plotly_js",
    "plotly_js_path",
    "quality_html",
]


def plotly_js_path() -> Path:
    """``plotly.min.js`` of the installed plotly wheel (no CDN: works offline)."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


@functools.cache
def plotly_js() -> str:
    """The text of :func:`plotly_js_path` (read once per process)."""
    return plotly_js_path().read_text(encoding="utf-8")


class MetricsAccessor:
    """``frame.mlpulse``: charts of a ``model.metrics()`` / ``model.estimate()`` frame."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def plot(self, metrics: list[str] | None = None, estimate: pd.DataFrame | None = None,
             title: str | None = None) -> Any:
        """A plotly figure: one line per metric over the windows (``estimate``: a frame of
        ``model.estimate()`` drawn dashed beside them)."""
        spec = charts.metrics_figure(self._frame, metrics, estimate=estimate, title=title)
        return charts.figure(spec)

    def html(self) -> str:
        """The frame as an HTML table with a sparkline per metric."""
        return frame_html(self._frame, force=True)

    def _repr_html_(self) -> str:
        return self.html()


def _register_accessor() -> None:
    if "mlpulse" not in getattr(pd.DataFrame, "_accessors", set()):
        pd.api.extensions.register_dataframe_accessor("mlpulse")(MetricsAccessor)


def _ipython_frame_html(frame: pd.DataFrame) -> str | None:
    if is_metrics_frame(frame):
        return frame_html(frame)
    return frame._repr_html_()


def register_ipython(shell: Any = None) -> bool:
    """Show metrics-shaped frames with sparklines in this IPython shell (done on import when
    one runs); returns whether a shell was found."""
    if shell is None:
        ipython = sys.modules.get("IPython")
        get = getattr(ipython, "get_ipython", None)
        shell = get() if get is not None else None
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters or "text/html" not in formatters:
        return False
    formatters["text/html"].for_type(pd.DataFrame, _ipython_frame_html)
    return True


_register_accessor()
register_ipython()
