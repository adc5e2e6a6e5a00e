"""Durations, timestamps and the decomposition of windows into aligned buckets."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpulse._time import (
    DAY,
    HOUR,
    MAX_MICROS,
    MIN_MICROS,
    MINUTE,
    RESOLUTIONS,
    align_down,
    align_up,
    cover_runs,
    cover_size,
    decompose,
    from_micros,
    parse_duration,
    to_micros,
)
from mlpulse.errors import ConfigError

JAN5 = 1767571200000000  # 2026-01-05T00:00:00Z in microseconds


class TestParseDuration:
    """parse_duration turns '90s', '5m', '24h', '7d', timedeltas and seconds into microseconds."""

    @pytest.mark.parametrize(
        ("text", "micros"),
        [
            ("1us", 1),
            ("250ms", 250_000),
            ("90s", 90_000_000),
            ("5m", 300_000_000),
            ("5min", 300_000_000),
            ("1h", 3_600_000_000),
            ("24h", 86_400_000_000),
            ("7d", 604_800_000_000),
            ("2w", 1_209_600_000_000),
            ("1.5h", 5_400_000_000),
            (" 3 m ", 180_000_000),
            (30, 30_000_000),
            (0.5, 500_000),
            (timedelta(minutes=2, microseconds=3), 120_000_003),
        ],
    )
    def test_valid(self, text, micros):
        assert parse_duration(text) == micros

    @pytest.mark.parametrize(
        "text", ["", "5", "m", "5x", "-5m", "0s", "five minutes", "5 mins", True, "1h30m"]
    )
    def test_invalid(self, text):
        with pytest.raises(ConfigError):
            parse_duration(text)


class TestToMicros:
    """to_micros accepts naive (UTC), aware, ISO, relative, numpy and pandas instants."""

    @pytest.mark.parametrize(
        "value",
        [
            datetime(2026, 1, 5),
            datetime(2026, 1, 5, tzinfo=UTC),
            datetime(2026, 1, 5, 2, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 1, 4, 19, tzinfo=timezone(timedelta(hours=-5))),
            "2026-01-05",
            "2026-01-05T00:00:00Z",
            "2026-01-05T00:00:00+00:00",
            "2026-01-05T01:00:00+01:00",
            "2026-01-05 00:00:00",
            "  2026-01-05T00:00:00.000000Z ",
            np.datetime64("2026-01-05T00:00:00"),
            np.datetime64("2026-01-05T00:00:00.000000000"),
            pd.Timestamp("2026-01-05"),
            pd.Timestamp("2026-01-05T09:00:00", tz="Asia/Tokyo"),
            1767571200,
            1767571200.0,
        ],
    )
    def test_same_instant(self, value):
        assert to_micros(value) == JAN5

    def test_microseconds_kept(self):
        assert to_micros("2026-01-05T00:00:00.000001Z") == JAN5 + 1
        assert to_micros(datetime(2026, 1, 5, microsecond=999999)) == JAN5 + 999999

    def test_relative(self):
        now = JAN5
        assert to_micros("now", now=now) == now
        assert to_micros("-24h", now=now) == now - DAY
        assert to_micros("+5m", now=now) == now + 5 * MINUTE
        assert to_micros("-90s", now=now) == now - 90_000_000
        real = to_micros("now")
        wall = int(datetime.now(UTC).timestamp() * 1e6)
        assert abs(real - wall) < 5_000_000
        assert abs(to_micros("-1h") - (wall - HOUR)) < 5_000_000

    @pytest.mark.parametrize(
        "value", ["yesterday", "2026-13-01", "-24x", None, True, object(), [1]]
    )
    def test_invalid(self, value):
        with pytest.raises(ConfigError):
            to_micros(value)

    def test_from_micros_round_trip(self):
        t = from_micros(JAN5 + 123)
        assert t.tzinfo is not None and t.utcoffset() == timedelta(0)
        assert t == datetime(2026, 1, 5, 0, 0, 0, 123, tzinfo=UTC)
        assert to_micros(t) == JAN5 + 123
        assert from_micros(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

    def test_align(self):
        t = JAN5 + 3 * HOUR + 17 * MINUTE + 5
        assert align_down(t, HOUR) == JAN5 + 3 * HOUR
        assert align_up(t, HOUR) == JAN5 + 4 * HOUR
        assert align_up(JAN5, DAY) == align_down(JAN5, DAY) == JAN5
        assert align_down(-1, MINUTE) == -MINUTE


def covered(buckets, partial):
    """The [lo, hi) pieces of a decomposition, sorted."""
    pieces = [(b, b + RESOLUTIONS[r]) for r, b in buckets] + list(partial)
    return sorted(pieces)


def assert_tiles(start, end, buckets, partial):
    pieces = covered(buckets, partial)
    if end <= start:
        assert pieces == []
        return
    assert pieces, "nothing covers a non-empty window"
    assert pieces[0][0] == start and pieces[-1][1] == end
    for (_lo1, hi1), (lo2, _hi2) in zip(pieces, pieces[1:], strict=False):
        assert hi1 == lo2, f"gap or overlap between {hi1} and {lo2}"
    for lo, hi in pieces:
        assert lo < hi
    for resolution, bucket in buckets:
        assert bucket % RESOLUTIONS[resolution] == 0, (resolution, bucket)
    for lo, hi in partial:
        assert hi - lo < MINUTE or (lo % MINUTE and hi - lo <= MINUTE)


instants = st.integers(min_value=JAN5 - 3 * DAY, max_value=JAN5 + 10 * DAY)
grid = st.sampled_from([1, 1_000_000, MINUTE, HOUR, DAY])


class TestDecompose:
    """decompose tiles [start, end) exactly with aligned buckets plus sub-minute edges."""

    @settings(max_examples=400, deadline=None)
    @given(instants, instants)
    def test_tiles_exactly(self, a, b):
        start, end = min(a, b), max(a, b)
        buckets, partial = decompose(start, end)
        assert_tiles(start, end, buckets, partial)

    @settings(max_examples=300, deadline=None)
    @given(
        st.integers(min_value=0, max_value=400), grid, st.integers(min_value=0, max_value=300), grid
    )
    def test_tiles_aligned_bounds(self, i, unit_a, j, unit_b):
        start = JAN5 + i * unit_a
        end = start + j * unit_b
        buckets, partial = decompose(start, end)
        assert_tiles(start, end, buckets, partial)
        if start % MINUTE == 0 and end % MINUTE == 0:
            assert partial == []

    @settings(max_examples=200, deadline=None)
    @given(instants, instants)
    def test_hour_finest(self, a, b):
        start, end = min(a, b), max(a, b)
        buckets, partial = decompose(start, end, "hour")
        assert_tiles_hour(start, end, buckets, partial)

    @settings(max_examples=200, deadline=None)
    @given(instants, instants)
    def test_coarsest_buckets(self, a, b):
        """No run of finer buckets could be replaced by one aligned coarser bucket."""
        start, end = min(a, b), max(a, b)
        buckets, _ = decompose(start, end)
        have = set(buckets)
        for name, width in (("hour", HOUR), ("day", DAY)):
            finer = {"hour": "minute", "day": "hour"}[name]
            for resolution, bucket in buckets:
                if resolution != finer:
                    continue
                parent = bucket - bucket % width
                if start <= parent and parent + width <= end:
                    raise AssertionError(f"{finer} bucket {bucket} lies in a whole {name} {parent}")
        assert len(have) == len(buckets)

    def test_examples(self):
        assert decompose(JAN5, JAN5 + DAY) == ([("day", JAN5)], [])
        assert decompose(JAN5, JAN5) == ([], [])
        assert decompose(JAN5 + 5, JAN5) == ([], [])
        assert decompose(JAN5 + 1, JAN5 + 2) == ([], [(JAN5 + 1, JAN5 + 2)])
        buckets, partial = decompose(JAN5 - 30_000_000, JAN5 + HOUR + 90_000_000)
        assert partial == [
            (JAN5 - 30_000_000, JAN5),
            (JAN5 + HOUR + MINUTE, JAN5 + HOUR + 90_000_000),
        ]
        assert buckets == [("hour", JAN5), ("minute", JAN5 + HOUR)]
        assert len(decompose(JAN5 - DAY + HOUR, JAN5 + 2 * DAY + MINUTE)[0]) == 23 + 2 + 1


def assert_tiles_hour(start, end, buckets, partial):
    pieces = covered(buckets, partial)
    if end <= start:
        assert pieces == []
        return
    assert pieces[0][0] == start and pieces[-1][1] == end
    for (_, hi1), (lo2, _) in zip(pieces, pieces[1:], strict=False):
        assert hi1 == lo2
    assert all(r in ("hour", "day") for r, _ in buckets)


class TestRange:
    """Instants outside years 1-9999 are refused with a ConfigError naming the range,
    before anything is computed from them (one such query used to eat ~1 GB a second)."""

    @pytest.mark.parametrize(
        "value",
        [
            "-100000000000h",
            "+100000000000h",
            "-3000000d",
            1e20,
            -1e20,
            10**30,
            np.datetime64("10000-01-01T00:00:00"),
            datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=2))),  # year 0 in UTC
        ],
    )
    def test_out_of_range(self, value):
        with pytest.raises(ConfigError, match="out of range.*0001-01-01 to 9999-12-31"):
            to_micros(value)

    @pytest.mark.parametrize(
        "value", [math.nan, math.inf, -math.inf, pd.NaT, np.datetime64("NaT")]
    )
    def test_not_a_time(self, value):
        with pytest.raises(ConfigError, match="invalid timestamp"):
            to_micros(value)

    def test_bounds_are_accepted(self):
        assert to_micros("0001-01-01") == MIN_MICROS
        assert to_micros(datetime.max) == MAX_MICROS
        assert from_micros(MIN_MICROS).year == 1 and from_micros(MAX_MICROS).year == 9999

    @pytest.mark.parametrize("value", ["100000000000h", "9" * 400 + "d", 1e30, math.inf])
    def test_durations_longer_than_the_range(self, value):
        with pytest.raises(ConfigError, match="invalid duration"):
            parse_duration(value)


class TestLazyCover:
    """cover_runs and cover_size describe decompose's cover without building it."""

    @settings(max_examples=300, deadline=None)
    @given(instants, instants, st.sampled_from(["minute", "hour"]))
    def test_runs_expand_to_decompose(self, a, b, finest):
        start, end = min(a, b), max(a, b)
        runs, partial = cover_runs(start, end, finest)
        expanded = [
            (name, t) for name, first, stop in runs for t in range(first, stop, RESOLUTIONS[name])
        ]
        assert (expanded, partial) == decompose(start, end, finest)
        assert cover_size(start, end, finest) == len(expanded)

    def test_longest_window_is_counted_not_built(self):
        """Year 1 to 9999 is 3.65 million day buckets: counted by arithmetic in a few runs."""
        runs, partial = cover_runs(MIN_MICROS, MAX_MICROS)
        runs = list(runs)
        assert len(runs) <= 8 and partial == [(MAX_MICROS - MAX_MICROS % MINUTE, MAX_MICROS)]
        assert cover_size(MIN_MICROS, MAX_MICROS) == 3_652_058 + 23 + 5 + 9
