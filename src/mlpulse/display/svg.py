"""Tiny inline SVG charts for notebook tables: a sparkline and a bar, no JavaScript.

Everything here returns markup built from numbers only; text never enters the SVG.

>>> sparkline([1.0, 3.0, 2.0], width=40, height=10).startswith('<svg')
True
>>> sparkline([1.0, 2.0, float("nan"), 2.0, 3.0]).count('polyline')
2
>>> sparkline([])
''
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Colours shared by the notebook display, the report and the CLI.
BLUE = "#1f77b4"
ORANGE = "#ff7f0e"
RED = "#d62728"
GREEN = "#2ca02c"
GREY = "#7f7f7f"


def sparkline(
    values: Sequence[float] | np.ndarray,
    *,
    width: int = 120,
    height: int = 24,
    color: str = BLUE,
    band: tuple[Sequence[float], Sequence[float]] | None = None,
) -> str:
    """A line through ``values`` (NaN leaves a gap), optionally over a shaded ``band``
    (lower, upper); '' when nothing is finite."""
    y = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(y)
    if not finite.any():
        return ""
    lows = highs = None
    if band is not None:
        lows = np.asarray(band[0], dtype=np.float64)
        highs = np.asarray(band[1], dtype=np.float64)
    pool = [y[finite]]
    if lows is not None and highs is not None:
        pool += [lows[np.isfinite(lows)], highs[np.isfinite(highs)]]
    lo = float(min(p.min() for p in pool if p.size))
    hi = float(max(p.max() for p in pool if p.size))
    span = hi - lo if hi > lo else 1.0
    n = len(y)
    pad = 2.0

    def px(i: int) -> float:
        return pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)

    def py(v: float) -> float:
        return pad + (height - 2 * pad) * (1.0 - (v - lo) / span)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-hidden="true">'
    ]
    if lows is not None and highs is not None:
        ok = np.isfinite(lows) & np.isfinite(highs)
        if ok.any():
            idx = np.flatnonzero(ok).tolist()
            upper = " ".join(f"{px(i):.1f},{py(highs[i]):.1f}" for i in idx)
            lower = " ".join(f"{px(i):.1f},{py(lows[i]):.1f}" for i in idx[::-1])
            parts.append(f'<polygon points="{upper} {lower}" fill="{color}" opacity="0.2"/>')
    # one polyline per run of finite values
    run: list[str] = []
    for i in range(n):
        if finite[i]:
            run.append(f"{px(i):.1f},{py(y[i]):.1f}")
        elif run:
            parts.append(_line(run, color))
            run = []
    if run:
        parts.append(_line(run, color))
    last = int(np.flatnonzero(finite)[-1])
    parts.append(f'<circle cx="{px(last):.1f}" cy="{py(y[last]):.1f}" r="2" fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _line(points: list[str], color: str) -> str:
    if len(points) == 1:
        x, y = points[0].split(",")
        return f'<circle cx="{x}" cy="{y}" r="1.5" fill="{color}"/>'
    return (
        f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" '
        'stroke-width="1.5"/>'
    )


def bar(value: float, scale: float, *, width: int = 80, height: int = 12, color: str = BLUE,
        mark: float | None = None) -> str:
    """A horizontal bar of ``value / scale`` of ``width`` (clipped), with an optional
    vertical ``mark`` (a threshold, in the same units)."""
    if not (isinstance(value, int | float) and math.isfinite(value)) or scale <= 0:
        return ""
    frac = min(1.0, max(0.0, float(value) / scale))
    out = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-hidden="true">'
        f'<rect x="0" y="1" width="{width}" height="{height - 2}" fill="#eee"/>'
        f'<rect x="0" y="1" width="{frac * width:.1f}" height="{height - 2}" fill="{color}"/>'
    )
    if mark is not None and math.isfinite(mark):
        x = min(1.0, max(0.0, mark / scale)) * width
        out += f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#000"/>'
    return out + "</svg>"
