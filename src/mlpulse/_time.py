"""Durations, timestamps and bucket alignment.

Everything is UTC. Internally, instants are integer microseconds since the Unix epoch
(``int`` or ``numpy.int64``), the unit DuckDB and Arrow use for ``TIMESTAMP``.

>>> parse_duration("5m")
300000000
>>> to_micros("2026-01-01T00:00:00Z")
1767225600000000
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from .errors import ConfigError

MICROS_PER_SECOND = 1_000_000
MINUTE = 60 * MICROS_PER_SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

#: Stored bucket resolutions, finest first, with their width in microseconds. The 10-minute
#: level keeps an unaligned one-hour window down to ~15 buckets instead of ~60 minutes.
RESOLUTIONS: dict[str, int] = {"minute": MINUTE, "10min": 10 * MINUTE, "hour": HOUR, "day": DAY}

_UNITS = {
    "us": 1,
    "ms": 1_000,
    "s": MICROS_PER_SECOND,
    "m": MINUTE,
    "min": MINUTE,
    "h": HOUR,
    "d": DAY,
    "w": 7 * DAY,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|m|h|d|w)\s*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The instants mlpulse can name: those a ``datetime`` holds, 0001-01-01 to 9999-12-31 (UTC).
#: Anything outside (``"-100000000000h"``, 1e20 seconds) is refused before any work is done.
MIN_MICROS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
MAX_MICROS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_RANGE_TEXT = "0001-01-01 to 9999-12-31 (UTC)"


def parse_duration(value: str | timedelta | int | float) -> int:
    """Return a duration in microseconds from ``"90s"``, ``"5m"``, ``"24h"``, ``"7d"`` or a timedelta.

    Plain numbers are taken as seconds.
    """
    if isinstance(value, timedelta):
        return int(value / timedelta(microseconds=1))
    if isinstance(value, bool):
        raise ConfigError(f"invalid duration {value!r}: expected e.g. '5m', '1h', '7d'")
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) * MICROS_PER_SECOND > MAX_MICROS - MIN_MICROS:
            raise ConfigError(f"invalid duration {value!r}: longer than the span {_RANGE_TEXT}")
        return int(value * MICROS_PER_SECOND)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f"invalid duration {value!r}: expected e.g. '30s', '5m', '1h', '7d'")
    number, unit = match.groups()
    micros = float(number) * _UNITS[unit]
    if micros <= 0:
        raise ConfigError(f"invalid duration {value!r}: must be positive")
    if micros > MAX_MICROS - MIN_MICROS:  # also catches inf from a thousand-digit number
        raise ConfigError(f"invalid duration {value!r}: longer than the span {_RANGE_TEXT}")
    return int(micros)


def now_micros() -> int:
    """The current instant in microseconds since the epoch (UTC)."""
    return to_micros(datetime.now(UTC))


def to_micros(value: object, *, now: int | None = None) -> int:
    """Return microseconds since the epoch for a datetime, ISO string, relative string or number.

    Accepted: ``datetime`` (naive means UTC), ``pandas.Timestamp``, ``numpy.datetime64``,
    ISO-8601 strings (``"2026-01-01"``, ``"2026-01-01T12:00:00+02:00"``), ``"now"``, and
    relative strings such as ``"-24h"`` or ``"+5m"`` (relative to ``now``). Numbers are
    seconds since the epoch. Instants outside :data:`MIN_MICROS` .. :data:`MAX_MICROS`
    (years 1 to 9999) raise :class:`~mlpulse.errors.ConfigError`.

    >>> to_micros("-100000000000h")
    Traceback (most recent call last):
    ...
    mlpulse.errors.ConfigError: timestamp '-100000000000h' is out of range: mlpulse handles times from 0001-01-01 to 9999-12-31 (UTC)
    """
    micros = _to_micros(value, now)
    if not MIN_MICROS <= micros <= MAX_MICROS:
        raise ConfigError(
            f"timestamp {value!r} is out of range: mlpulse handles times from {_RANGE_TEXT}"
        )
    return micros


def _to_micros(value: object, now: int | None) -> int:
    if isinstance(value, datetime) and value != value:  # pandas.NaT
        raise ConfigError(f"invalid timestamp {value!r}: not a time (NaT)")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // timedelta(microseconds=1)
    if isinstance(value, str):
        text = value.strip()
        if text == "now":
            return now_micros() if now is None else now
        if text[:1] in "+-" and _DURATION.match(text[1:]):
            base = now_micros() if now is None else now
            number, unit = _DURATION.match(text[1:]).groups()  # type: ignore[union-attr]
            delta = float(number) * _UNITS[unit]
            if delta > MAX_MICROS - MIN_MICROS:  # out of range whatever the base
                return MIN_MICROS - 1
            return base - int(delta) if text[0] == "-" else base + int(delta)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"invalid timestamp {value!r}: expected a datetime, an ISO-8601 string, "
                "'now', or a relative time such as '-24h'"
            ) from None
        return to_micros(parsed)
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"invalid timestamp {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"invalid timestamp {value!r}")
        return int(round(value * MICROS_PER_SECOND))
    # numpy.datetime64, pandas.Timestamp and friends
    try:
        import numpy as np

        if isinstance(value, np.datetime64):
            if np.isnat(value):
                raise ConfigError(f"invalid timestamp {value!r}: not a time (NaT)")
            return int(value.astype("datetime64[us]").astype("int64"))
        to_pydatetime = getattr(value, "to_pydatetime", None)
        if to_pydatetime is not None:
            return to_micros(to_pydatetime())
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"invalid timestamp {value!r} of type {type(value).__name__}")


def is_relative(value: object) -> bool:
    """Whether ``value`` names a time relative to now: ``"now"``, ``"-24h"``, ``"+5m"``.

    >>> is_relative("-12h"), is_relative("now"), is_relative("2026-01-01"), is_relative(0)
    (True, True, False, False)
    """
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text == "now" or (text[:1] in "+-" and _DURATION.match(text[1:]) is not None)


def aligned_start(start: object, lo: int, step: object, align: bool = True) -> int:
    """The first window's start: ``lo`` (``start`` resolved) moved down to a whole multiple
    of ``step`` since the Unix epoch (UTC) when ``start`` is relative and ``align`` is on,
    so that ``start="-12h", step="1h"`` gives windows on whole hours, as Prometheus and
    Grafana align a range to its step. An absolute start, no step or ``align=False``
    leaves ``lo`` as it is.

    >>> aligned_start("-12h", 90 * MINUTE + 7, "1h") == HOUR
    True
    >>> aligned_start("1970-01-01T01:30:00", 90 * MINUTE, "1h") == 90 * MINUTE
    True
    """
    if not align or step is None or not is_relative(start):
        return lo
    return align_down(lo, parse_duration(step))  # type: ignore[arg-type]


def from_micros(micros: int) -> datetime:
    """Return the timezone-aware UTC datetime for microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=int(micros))


def align_down(micros: int, width: int) -> int:
    """Start of the bucket of ``width`` microseconds that contains ``micros``."""
    return micros - (micros % width)


def align_up(micros: int, width: int) -> int:
    """Smallest bucket boundary of ``width`` at or after ``micros``."""
    return -((-micros) // width) * width


def decompose(
    start: int, end: int, finest: str = "minute"
) -> tuple[list[tuple[str, int]], list[tuple[int, int]]]:
    """Cover ``[start, end)`` with the fewest aligned stored buckets.

    Returns ``(buckets, partial)``: ``buckets`` is a list of ``(resolution, bucket_start)``
    that tile the interior aligned to the ``finest`` stored resolution, coarsest buckets
    where they fit, and ``partial`` the ranges at either edge that no stored bucket covers
    exactly (to be computed from raw rows). The list is as long as the cover: callers
    bound it first (:func:`cover_size` counts it without building it).

    >>> decompose(0, 2 * HOUR + MINUTE)
    ([('hour', 0), ('hour', 3600000000), ('minute', 7200000000)], [])
    """
    runs, partial = cover_runs(start, end, finest)
    buckets = [
        (name, t) for name, first, stop in runs for t in range(first, stop, RESOLUTIONS[name])
    ]
    return buckets, partial


def cover_runs(
    start: int, end: int, finest: str = "minute"
) -> tuple[Iterator[tuple[str, int, int]], list[tuple[int, int]]]:
    """The cover of :func:`decompose` as runs, computed lazily.

    Returns ``(runs, partial)``: ``runs`` yields ``(resolution, first, stop)`` in time
    order, each standing for the buckets ``range(first, stop, width)``; at most a few dozen
    runs whatever the window's length, so nothing is materialised per bucket.

    >>> runs, partial = cover_runs(30 * 1_000_000, 2 * DAY + HOUR)
    >>> [(name, first // MINUTE, stop // MINUTE) for name, first, stop in runs]
    [('minute', 1, 10), ('10min', 10, 60), ('hour', 60, 1440), ('day', 1440, 2880), ('hour', 2880, 2940)]
    >>> partial
    [(30000000, 60000000)]
    """
    if end <= start:
        return iter(()), []
    levels = list(RESOLUTIONS.items())
    levels = levels[[name for name, _ in levels].index(finest) :]
    unit = levels[0][1]
    lo = align_up(start, unit)
    hi = align_down(end, unit)
    if lo >= hi:  # the window lies inside a single minute (or straddles one boundary)
        if lo == hi and start < lo < end:
            return iter(()), [(start, lo), (lo, end)]
        return iter(()), [(start, end)]
    partial: list[tuple[int, int]] = []
    if start < lo:
        partial.append((start, lo))
    if hi < end:
        partial.append((hi, end))
    return _runs(lo, hi, levels[::-1]), partial


def cover_size(start: int, end: int, finest: str = "minute") -> int:
    """How many buckets :func:`decompose` would return, by arithmetic on the runs.

    >>> cover_size(0, 10_000 * 365 * DAY)  # ten thousand years: one bucket a day
    3650000
    """
    runs, _partial = cover_runs(start, end, finest)
    return sum((stop - first) // RESOLUTIONS[name] for name, first, stop in runs)


def _runs(lo: int, hi: int, levels: list[tuple[str, int]]) -> Iterator[tuple[str, int, int]]:
    """Greedy tiling of [lo, hi) by the coarsest aligned buckets, recursing into the edges
    (``levels`` coarsest first); yields runs in time order."""
    name, width = levels[0]
    if len(levels) == 1:
        if lo < hi:
            yield name, lo, hi
        return
    first = align_up(lo, width)
    last = align_down(hi, width)
    if first >= last:
        yield from _runs(lo, hi, levels[1:])
        return
    if lo < first:
        yield from _runs(lo, first, levels[1:])
    yield name, first, last
    if last < hi:
        yield from _runs(last, hi, levels[1:])
