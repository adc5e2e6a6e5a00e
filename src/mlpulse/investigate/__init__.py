"""Investigation: which segment moved a metric (:mod:`.segments`), which slice of the
feature space concentrates the errors (:mod:`.slices`), and the raw rows behind them
(:mod:`.drill`). See ``docs/investigation.md``."""

from __future__ import annotations

from typing import Any

__all__ = ["DECOMPOSABLE", "compute_segments", "compute_slices"]


def __getattr__(name: str) -> Any:
    # imported on first use: the analyses need SciPy, which the server's routes (importing
    # the drill-down's page size from this package) should not load at start-up
    if name in ("DECOMPOSABLE", "compute_segments"):
        from . import segments

        return getattr(segments, name)
    if name == "compute_slices":
        from .slices import compute_slices

        return compute_slices
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
