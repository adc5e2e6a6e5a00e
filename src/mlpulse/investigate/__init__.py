"""Investigation: which segment moved a metric (:mod:`.segments`), which slice of the
feature space concentrates the errors (:mod:`.slices`), and the raw rows behind them
(:mod:`.drill`). See ``docs/investigation.md``."""

from __future__ import annotations

from .segments import DECOMPOSABLE, compute_segments
from .slices import compute_slices

__all__ = ["DECOMPOSABLE", "compute_segments", "compute_slices"]
