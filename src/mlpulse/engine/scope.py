"""What a query reads: one model's versions, a window (cut by a step), a segment.

Every analysis (metrics, summary, drift, quality, estimation, checks) takes one
:class:`Scope` instead of the same seven loose arguments; the window bounds and the segment
key are resolved once, when first needed, and the errors name the model.

>>> from mlpulse.schema import ModelSpec
>>> spec = ModelSpec(name="churn", task="binary", segments=("plan",))
>>> scope = Scope(spec, "v1", ["v1"], start="2026-01-01", end="2026-01-01T03:00", step="1h",
...               segment={"plan": "pro"})
>>> len(scope.bounds), scope.segment_key
(3, 'plan=pro')
>>> day = scope.with_window(start="2026-01-01", end="2026-01-02")
>>> day.bounds == [day.span], day.segment_key
(True, 'plan=pro')

A relative start is aligned to the step (windows on whole multiples of the step since the
epoch, UTC); the last window ends at ``end`` (the current, partial window when ``end`` is
now). ``align=False`` starts the first window at ``start`` exactly:

>>> from mlpulse._time import from_micros
>>> scope = Scope(spec, "v1", ["v1"], start="-3h", step="1h")
>>> from_micros(scope.bounds[0][0]).minute, from_micros(scope.bounds[1][0]).second
(0, 0)
>>> scope.span == (scope.bounds[0][0], scope.bounds[-1][1])
True
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .._time import aligned_start
from ..schema import ModelSpec
from .query import parse_segment, split, windows


@dataclass(frozen=True)
class Scope:
    """The rows of ``versions`` of one model in ``[start, end)``, split by ``step``, within
    ``segment``. ``version`` is the handle's version: its reference is the baseline."""

    spec: ModelSpec
    version: str
    versions: list[str] = field(default_factory=list)
    start: Any = "-24h"
    end: Any = "now"
    step: Any = None
    segment: Any = None
    align: bool = True

    @cached_property
    def bounds(self) -> list[tuple[int, int]]:
        """Window bounds in microseconds, one per step (one window without a step)."""
        lo, hi = self.span
        return split(lo, hi, self.step)

    @cached_property
    def span(self) -> tuple[int, int]:
        """The whole ``[start, end)`` in microseconds, its start aligned to the step when
        ``start`` is relative and ``align`` is on (see :func:`mlpulse._time.aligned_start`)."""
        lo, hi = windows(self.start, self.end, None)[0]  # one "now", checked
        return aligned_start(self.start, lo, self.step, self.align), hi

    @cached_property
    def segment_key(self) -> str:
        """``''`` for all rows, else ``'column=value'`` (checked against the model)."""
        return parse_segment(self.spec, self.segment)

    def with_window(self, start: Any, end: Any, step: Any = None) -> Scope:
        """The same model, versions and segment over another window."""
        return replace(self, start=start, end=end, step=step)

    def with_versions(self, versions: list[str]) -> Scope:
        return replace(self, versions=list(versions))


__all__ = ["Scope"]
