"""The life of one alert, with Prometheus's semantics.

An alert (one rule on one model) is *inactive* while its condition is false. When the
condition becomes true it is *pending*; if it stays true for the rule's ``for`` it is
*firing* (at once when ``for`` is 0). A pending alert whose condition turns false goes back
to inactive without a trace; a firing one is *resolved*, unless its condition was true
within the last ``keep_firing_for``. A resolved alert whose condition is true again starts a
new alert. Times are microseconds since the epoch.

>>> s = Phase()
>>> s, event = advance(s, True, at=0, for_=600_000_000, keep_firing_for=0); s.state, event
('pending', 'pending')
>>> s, event = advance(s, True, at=600_000_000, for_=600_000_000, keep_firing_for=0); s.state, event
('firing', 'firing')
>>> s, event = advance(s, False, at=900_000_000, for_=600_000_000, keep_firing_for=0); s.state, event
('resolved', 'resolved')
"""

from __future__ import annotations

from dataclasses import dataclass, replace

INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"


@dataclass(frozen=True)
class Phase:
    """Where an alert is: its state and the times that decide the next one."""

    state: str = INACTIVE
    active_since: int | None = None  # when the condition became true (start of pending)
    fired_at: int | None = None
    resolved_at: int | None = None
    last_active: int | None = None  # the last evaluation at which the condition held


def advance(
    phase: Phase, breached: bool, *, at: int, for_: int, keep_firing_for: int
) -> tuple[Phase, str | None]:
    """The phase after an evaluation at ``at`` and the transition it made (``pending``,
    ``firing``, ``resolved``, ``cleared`` for a pending alert that went quiet, or None)."""
    state = phase.state
    if breached:
        if state in (INACTIVE, RESOLVED):
            start = Phase(PENDING, active_since=at, last_active=at)
            if for_ <= 0:
                return replace(start, state=FIRING, fired_at=at), FIRING
            return start, PENDING
        if state == PENDING:
            assert phase.active_since is not None
            if at - phase.active_since >= for_:
                return replace(phase, state=FIRING, fired_at=at, last_active=at), FIRING
            return replace(phase, last_active=at), None
        return replace(phase, last_active=at), None  # firing stays firing
    if state == PENDING:
        return Phase(INACTIVE), "cleared"
    if state == FIRING:
        last = phase.last_active if phase.last_active is not None else at
        if keep_firing_for > 0 and at - last < keep_firing_for:
            return phase, None
        return replace(phase, state=RESOLVED, resolved_at=at), RESOLVED
    return phase, None


__all__ = ["FIRING", "INACTIVE", "PENDING", "RESOLVED", "Phase", "advance"]
