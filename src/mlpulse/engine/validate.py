"""Vectorised validation of incoming batches.

A batch becomes a clean Arrow table in the raw table's layout plus a list of quarantined
rows, each with a reason. Row-level problems never raise: the row is quarantined (missing or
malformed id, timestamp, prediction or label) or, for a feature value of the wrong type,
stored as null and counted as a type violation. Only problems with the batch as a whole
(a missing id column, say) raise :class:`~mlpulse.errors.SchemaError`.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._time import MINUTE
from ..errors import ConfigError, SchemaError
from ..schema import CATEGORICAL, NUMERIC, ModelSpec

TIMESTAMP = pa.timestamp("us")


@dataclass
class Quarantine:
    """Rows of a batch that could not be stored, with the reason for each."""

    rows: np.ndarray  # positions in the batch as sent
    ids: list[str | None]
    reasons: list[str]
    payloads: list[str]

    @classmethod
    def empty(cls) -> Quarantine:
        return cls(np.zeros(0, dtype=np.int64), [], [], [])

    def __len__(self) -> int:
        return len(self.reasons)


@dataclass
class CleanBatch:
    """Valid rows in the layout of the raw (or feedback) table."""

    table: pa.Table
    quarantine: Quarantine
    type_errors: dict[str, np.ndarray] = field(default_factory=dict)  # column -> bool per clean row
    new_features: dict[str, str] = field(default_factory=dict)


#: How the internal columns of ``Model.log`` / ``log_feedback`` are named in reasons.
_DISPLAY = {"__log_id": "id", "__log_ts": "timestamp", "__log_label": "label"}


def _name(column: str) -> str:
    return repr(_DISPLAY.get(column, column))


class _Reasons:
    """First reason wins: a code per row, 0 meaning valid."""

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int16)
        self.messages: list[str] = [""]

    def flag(self, mask: np.ndarray, message: str) -> None:
        mask = np.asarray(mask, dtype=bool) & (self.code == 0)
        if mask.any():
            self.messages.append(message)
            self.code[mask] = len(self.messages) - 1

    @property
    def bad(self) -> np.ndarray:
        return self.code != 0


def _column(table: pa.Table, name: str, model: str, role: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise SchemaError(
            f"model {model!r}: the batch has no {role} column {name!r}; "
            f"its columns are: {', '.join(table.column_names) or 'none'}"
        )
    return table.column(name)


def _null_mask(array: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype=bool)


def to_float(array: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(values, null, malformed)``: float64 values (NaN where null or malformed)."""
    dtype = array.type
    null = _null_mask(array)
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_boolean(dtype)
    ):
        values = (
            pc.cast(array, pa.float64())
            .to_numpy(zero_copy_only=False)
            .astype(np.float64, copy=False)
        )
        return values, null, np.zeros(len(values), dtype=bool)
    if pa.types.is_null(dtype):
        return np.full(len(array), np.nan), null, np.zeros(len(array), dtype=bool)
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_dictionary(dtype)
    ):
        series = pd.Series(pc.cast(array, pa.string()).to_numpy(zero_copy_only=False), dtype=object)
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        malformed = (
            np.isnan(values) & ~null & ~series.str.strip().str.lower().isin(["nan"]).to_numpy()
        )
        return values, null, malformed
    # nested or otherwise unconvertible values
    return np.full(len(array), np.nan), null, ~null


def to_string(array: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Return ``(strings, malformed)`` where values that cannot be turned into text are null."""
    dtype = array.type
    if pa.types.is_string(dtype):
        return array.combine_chunks() if array.num_chunks != 1 else array.chunk(0), np.zeros(
            len(array), bool
        )
    try:
        if pa.types.is_floating(dtype):
            # 3.0 -> "3" so a float-typed category column matches its integer spelling
            values = array.to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore"):  # NaN compares false: not integral
                integral = np.isfinite(values) & (np.floor(values) == values)
                integral &= np.abs(values) < 2**53
            # cast only the integral values: NaN or inf -> int64 is undefined (and warns)
            whole = np.where(integral, values, 0.0).astype(np.int64)
            text = np.where(integral, whole.astype(str), values.astype(str))
            strings = pa.array(text, type=pa.string(), mask=_null_mask(array))
        else:
            strings = pc.cast(array, pa.string())
            if isinstance(strings, pa.ChunkedArray):
                strings = strings.combine_chunks()
        return strings, np.zeros(len(array), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        null = _null_mask(array)
        return pa.nulls(len(array), pa.string()), ~null


#: Event and label times outside ``[MLPULSE_MIN_TIMESTAMP, MLPULSE_MAX_TIMESTAMP)`` are
#: quarantined: they are almost always a unit mistake (epoch milliseconds read as seconds
#: land in the year 58,000) and would otherwise be stored in a bucket no query ever covers.
DEFAULT_MIN_TIMESTAMP = "1970-01-01"
DEFAULT_MAX_TIMESTAMP = "2200-01-01"

# why a timestamp was refused (0: accepted)
_OUT_OF_RANGE, _MILLIS, _MICROS, _NANOS, _NOT_FINITE = 1, 2, 3, 4, 5
_HINT_FLOOR = 946_684_800.0  # 2000-01-01: a unit hint must give a recent time
_UNITS = ((_MILLIS, 1e3), (_MICROS, 1e6), (_NANOS, 1e9))
_UNIT_NAMES = {_MILLIS: "milliseconds", _MICROS: "microseconds", _NANOS: "nanoseconds"}
# Arrow's timestamp/date units: values per second
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_YEAR = re.compile(r"^\s*([+-]?\d{4,})-\d\d")  # the year of ISO text pandas cannot hold


@dataclass(frozen=True)
class TimestampRange:
    """Accepted times ``[lo, hi)`` in microseconds since the epoch.

    >>> TimestampRange.parse("1970-01-01", "2200-01-01")
    TimestampRange(lo=0, hi=7258118400000000)
    """

    lo: int
    hi: int

    @classmethod
    def parse(cls, lo: str, hi: str) -> TimestampRange:
        bounds = []
        for variable, text in (("MLPULSE_MIN_TIMESTAMP", lo), ("MLPULSE_MAX_TIMESTAMP", hi)):
            try:
                moment = datetime.fromisoformat(text.strip())
            except ValueError:
                raise ConfigError(
                    f"{variable} must be an ISO 8601 date or time (e.g. 2200-01-01), got {text!r}"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            delta = moment - _EPOCH
            bounds.append((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
        if bounds[0] >= bounds[1]:
            raise ConfigError(
                f"MLPULSE_MIN_TIMESTAMP ({lo!r}) must be before MLPULSE_MAX_TIMESTAMP ({hi!r})"
            )
        return cls(bounds[0], bounds[1])

    @classmethod
    def from_env(cls) -> TimestampRange:
        """``$MLPULSE_MIN_TIMESTAMP`` .. ``$MLPULSE_MAX_TIMESTAMP`` (1970-01-01 .. 2200-01-01)."""
        return _range(
            os.environ.get("MLPULSE_MIN_TIMESTAMP") or DEFAULT_MIN_TIMESTAMP,
            os.environ.get("MLPULSE_MAX_TIMESTAMP") or DEFAULT_MAX_TIMESTAMP,
        )

    def __str__(self) -> str:
        lo, hi = (_EPOCH + timedelta(microseconds=b) for b in (self.lo, self.hi))
        return f"[{_day_or_time(lo)}, {_day_or_time(hi)})"

    def classify(self, seconds: np.ndarray, null: np.ndarray, *, hints: bool) -> np.ndarray:
        """Why each time in seconds (float64) is refused: 0 accepted, else a reason code.
        With ``hints``, a value that is in range once read as milli-, micro- or nanoseconds
        (and then after 2000) says so."""
        lo, hi = self.lo / 1e6, self.hi / 1e6
        finite = np.isfinite(seconds)
        with np.errstate(invalid="ignore"):
            inside = (seconds >= lo) & (seconds < hi)
        problem = np.where(finite, np.where(inside, 0, _OUT_OF_RANGE), _NOT_FINITE)
        problem = np.where(null, 0, problem).astype(np.int8)
        if hints and (problem == _OUT_OF_RANGE).any():
            floor = max(lo, _HINT_FLOOR)
            for code, per_second in _UNITS:
                scaled = seconds / per_second
                fits = (problem == _OUT_OF_RANGE) & (scaled >= floor) & (scaled < hi)
                problem[fits] = code
        return problem


@functools.lru_cache(maxsize=8)
def _range(lo: str, hi: str) -> TimestampRange:
    return TimestampRange.parse(lo, hi)


def _day_or_time(moment: datetime) -> str:
    if moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return moment.isoformat().replace("+00:00", "Z")


def to_micros(
    array: pa.ChunkedArray, accepted: TimestampRange | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps as int64 microseconds (naive values are UTC).

    Returns ``(micros, null, malformed, refused)``: ``refused`` holds a reason code per row
    for times outside ``accepted`` (default :meth:`TimestampRange.from_env`), NaN or
    infinite; ``micros`` is 0 wherever a row is null, malformed or refused. Ranges are
    checked before any conversion, so no value overflows.
    """
    accepted = accepted or TimestampRange.from_env()
    dtype = array.type
    n = len(array)
    null = _null_mask(array)
    malformed = np.zeros(n, dtype=bool)
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return _native(array, accepted, null)
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        seconds = pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        seconds = np.asarray(seconds, dtype=np.float64)
        numeric = ~null
        parsed_us = np.zeros(n, dtype=np.int64)
        far = np.zeros(n, dtype=bool)
    elif pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        texts = pd.Series(array.to_numpy(zero_copy_only=False), dtype=object)
        parsed = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
        unparsed = parsed.isna().to_numpy() & ~null
        parsed_us = (
            parsed.dt.tz_convert("UTC")
            .dt.tz_localize(None)
            .astype("datetime64[us]")
            .to_numpy()
            .astype("int64")
        )
        seconds = np.where(unparsed | null, np.nan, parsed_us / 1e6)
        # text holding a number is seconds since the epoch, like a numeric column
        numbers = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        numeric = unparsed & ~np.isnan(numbers)
        seconds = np.where(numeric, numbers, seconds)
        malformed = unparsed & ~numeric
        far = _far_iso(texts, malformed, accepted)
        malformed &= ~far
    else:
        return np.zeros(n, dtype=np.int64), null, ~null, np.zeros(n, dtype=np.int8)
    refused = accepted.classify(seconds, null | malformed | far, hints=True)
    # only numbers get a unit hint; ISO text out of range is just out of range
    hinted = (refused >= _MILLIS) & (refused <= _NANOS) & ~numeric
    refused = np.where(hinted | far, _OUT_OF_RANGE, refused).astype(np.int8)
    ok = (refused == 0) & ~null & ~malformed
    from_numbers = np.round(np.where(ok & numeric, seconds, 0.0) * 1e6).astype(np.int64)
    micros = np.where(ok, np.where(numeric, from_numbers, parsed_us), 0).astype(np.int64)
    return micros, null, malformed, refused


def _native(
    array: pa.ChunkedArray, accepted: TimestampRange, null: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`to_micros` for Arrow timestamp and date columns (any unit)."""
    dtype = array.type
    if pa.types.is_date32(dtype):  # days
        raw = pc.fill_null(array.cast(pa.int32()), 0).to_numpy(zero_copy_only=False)
        raw = raw.astype(np.int64)
        per_second = None
    else:  # the stored int64 is UTC whatever the time zone
        raw = pc.fill_null(array.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        raw = raw.astype(np.int64, copy=False)
        per_second = 1_000 if pa.types.is_date64(dtype) else _PER_SECOND[dtype.unit]
    seconds = raw * 86_400.0 if per_second is None else raw / float(per_second)
    refused = accepted.classify(seconds, null, hints=False)
    raw = np.where((refused == 0) & ~null, raw, 0)
    if per_second is None:
        micros = raw * 86_400_000_000
    elif per_second >= 1_000_000:
        micros = raw // (per_second // 1_000_000)  # floor: 1 ns before the epoch is -1 us
    else:
        micros = raw * (1_000_000 // per_second)
    return micros.astype(np.int64), null, np.zeros(len(array), dtype=bool), refused


def _far_iso(texts: pd.Series, candidates: np.ndarray, accepted: TimestampRange) -> np.ndarray:
    """ISO text that pandas cannot hold (before 1677 or after 2262) but whose year is plainly
    outside the accepted range: refused as out of range rather than called malformed."""
    far = np.zeros(len(texts), dtype=bool)
    if not candidates.any():
        return far
    rows = np.flatnonzero(candidates)
    years = pd.to_numeric(
        texts.iloc[rows].str.extract(_YEAR, expand=False), errors="coerce"
    ).to_numpy(dtype=np.float64, na_value=np.nan)
    known = ~np.isnan(years)
    seconds = (years[known] - 1970.0) * 31_556_952.0  # a mean Gregorian year
    outside = accepted.classify(seconds, np.zeros(len(seconds), dtype=bool), hints=False) != 0
    far[rows[known][outside]] = True
    return far


def payloads(table: pa.Table, rows: np.ndarray) -> list[str]:
    """The given rows of the batch as JSON lines, exactly as received (for the quarantine)."""
    if len(rows) == 0:
        return []
    subset = table.take(pa.array(rows, type=pa.int64()))
    frame = subset.to_pandas(types_mapper=None)
    text = frame.to_json(orient="records", lines=True, date_format="iso", default_handler=str)
    return text.splitlines()


def _quarantine(table: pa.Table, reasons: _Reasons, ids: pa.Array | None) -> Quarantine:
    rows = np.flatnonzero(reasons.bad)
    if len(rows) == 0:
        return Quarantine.empty()
    messages = np.asarray(reasons.messages, dtype=object)[reasons.code[rows]].tolist()
    id_list = ids.take(pa.array(rows)).to_pylist() if ids is not None else [None] * len(rows)
    return Quarantine(rows, id_list, messages, payloads(table, rows))


def _ids(table: pa.Table, spec: ModelSpec, id_col: str, reasons: _Reasons) -> pa.Array:
    raw = _column(table, id_col, spec.name, "id")
    if pa.types.is_floating(raw.type):
        raise SchemaError(
            f"model {spec.name!r}: id column {_name(id_col)} holds floats; ids must be strings or integers"
        )
    ids, malformed = to_string(raw)
    null = _null_mask(ids) | (
        pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(ids)), 0).to_numpy() == 0
    )
    reasons.flag(null, f"model {spec.name!r}: column {_name(id_col)}: missing id")
    reasons.flag(malformed, f"model {spec.name!r}: column {_name(id_col)}: malformed id")
    return ids


def _timestamps(
    table: pa.Table, spec: ModelSpec, ts_col: str | None, now: int, reasons: _Reasons
) -> np.ndarray:
    if ts_col is None:
        return np.full(table.num_rows, now, dtype=np.int64)
    accepted = TimestampRange.from_env()
    micros, null, malformed, refused = to_micros(
        _column(table, ts_col, spec.name, "timestamp"), accepted
    )
    where = f"model {spec.name!r}: column {_name(ts_col)}"
    reasons.flag(null, f"{where}: missing timestamp")
    reasons.flag(malformed, f"{where}: malformed timestamp")
    reasons.flag(refused == _NOT_FINITE, f"{where}: timestamp is NaN or infinite")
    outside = (
        f"{where}: timestamp outside the accepted range {accepted} "
        "(MLPULSE_MIN_TIMESTAMP, MLPULSE_MAX_TIMESTAMP)"
    )
    for code, per_second in _UNITS:
        unit = _UNIT_NAMES[code]
        reasons.flag(
            refused == code,
            f"{outside}; it looks like {unit} since the epoch: send seconds "
            f"(divide by {per_second:,.0f}) or an ISO 8601 time",
        )
    reasons.flag(refused == _OUT_OF_RANGE, outside)
    return micros


def validate_predictions(
    table: pa.Table,
    spec: ModelSpec,
    version: str,
    *,
    id_col: str,
    ts_col: str | None,
    now: int,
) -> CleanBatch:
    """Check a batch of predictions; return the valid rows in raw-table layout.

    Duplicate ids (within the batch or already stored) are found by the ingest step, which
    can ask the store.
    """
    n = table.num_rows
    reasons = _Reasons(n)
    name = spec.name
    ids = _ids(table, spec, id_col, reasons)
    ts = _timestamps(table, spec, ts_col, now, reasons)

    pred_col = _column(table, spec.prediction, name, "prediction")
    if spec.task == "multiclass":
        prediction, malformed = to_string(pred_col)
        empty = pc.fill_null(pc.utf8_length(prediction), 0).to_numpy() == 0
        reasons.flag(
            _null_mask(pred_col) | empty,
            f"model {name!r}: column {spec.prediction!r}: missing prediction",
        )
        reasons.flag(malformed, f"model {name!r}: column {spec.prediction!r}: malformed prediction")
        if spec.classes is not None:
            unknown = ~pc.is_in(prediction, value_set=pa.array(list(spec.classes))).to_numpy(
                zero_copy_only=False
            )
            reasons.flag(
                unknown,
                f"model {name!r}: column {spec.prediction!r}: prediction is not one of the declared classes",
            )
    else:
        values, null, malformed = to_float(pred_col)
        reasons.flag(null, f"model {name!r}: column {spec.prediction!r}: missing prediction")
        reasons.flag(
            malformed, f"model {name!r}: column {spec.prediction!r}: prediction is not a number"
        )
        reasons.flag(
            ~np.isfinite(values),
            f"model {name!r}: column {spec.prediction!r}: prediction is NaN or infinite",
        )
        if spec.task == "binary":
            with np.errstate(invalid="ignore"):
                outside = (values < 0.0) | (values > 1.0)
            reasons.flag(
                outside,
                f"model {name!r}: column {spec.prediction!r}: binary prediction must be a probability in [0, 1]",
            )
        prediction = pa.array(values, type=pa.float64())

    good = ~reasons.bad
    all_good = bool(good.all())
    keep = pa.array(good)
    quarantine = _quarantine(table, reasons, ids)

    columns: dict[str, pa.Array] = {}
    columns["__row"] = pa.array(np.flatnonzero(good), type=pa.int64())
    columns["__id"] = ids.filter(keep)
    ts_good = ts[good]
    columns["__ts"] = pa.array(ts_good, type=pa.int64()).cast(TIMESTAMP)
    columns["__minute"] = pa.array(ts_good - np.mod(ts_good, MINUTE), type=pa.int64())
    columns["__prediction"] = prediction.filter(keep)

    type_errors: dict[str, np.ndarray] = {}
    if "latency_ms" in table.column_names:
        lat, lat_null, lat_bad = to_float(table.column("latency_ms"))
        with np.errstate(invalid="ignore"):
            invalid = lat_bad | (~lat_null & ~(np.isfinite(lat) & (lat >= 0)))
        lat = np.where(invalid | lat_null, np.nan, lat)
        columns["__latency_ms"] = pa.array(lat[good], type=pa.float64(), from_pandas=True)
        if invalid[good].any():
            type_errors["latency_ms"] = invalid[good]
    else:
        columns["__latency_ms"] = pa.nulls(int(good.sum()), pa.float64())
    if "trace_id" in table.column_names:
        trace, _ = to_string(table.column("trace_id"))
        columns["__trace_id"] = trace.filter(keep)
    else:
        columns["__trace_id"] = pa.nulls(int(good.sum()), pa.string())
    label_type = pa.string() if spec.task == "multiclass" else pa.float64()
    columns["__label"] = pa.nulls(int(good.sum()), label_type)
    columns["__label_ts"] = pa.nulls(int(good.sum()), TIMESTAMP)

    from ..schema import infer_features

    exclude = {id_col, spec.prediction, spec.label}
    if ts_col:
        exclude.add(ts_col)
    present = infer_features(table, exclude)
    new_features = {k: v for k, v in present.items() if k not in spec.features}
    kinds = {**spec.features, **new_features}
    names = set(table.column_names)  # (``column_names`` builds a list per call)
    for column, kind in kinds.items():
        if column not in names:
            columns[column] = pa.nulls(
                int(good.sum()), pa.float64() if kind == NUMERIC else pa.string()
            )
            continue
        source = table.column(column)
        if kind == NUMERIC:
            if pa.types.is_floating(source.type) or pa.types.is_integer(source.type):
                # already numeric: cast (zero-copy for float64) and keep Arrow's null mask
                numeric = pc.cast(source, pa.float64()).combine_chunks()
                columns[column] = numeric if all_good else numeric.filter(keep)
                continue
            values, null, malformed = to_float(source)
            columns[column] = pa.array(
                values[good], type=pa.float64(), mask=(null | malformed)[good]
            )
        else:
            strings, malformed = to_string(source)
            columns[column] = strings.filter(keep)
        if malformed[good].any():
            type_errors[column] = malformed[good]

    clean = pa.table(columns)
    return CleanBatch(clean, quarantine, type_errors, new_features)


def validate_feedback(
    table: pa.Table, spec: ModelSpec, *, id_col: str, label_col: str, ts_col: str | None, now: int
) -> CleanBatch:
    """Check a batch of feedback; return ``__id, __label, __ts`` for the valid rows.

    Within a batch, a later row for the same id replaces an earlier one.
    """
    n = table.num_rows
    reasons = _Reasons(n)
    name = spec.name
    ids = _ids(table, spec, id_col, reasons)
    ts = _timestamps(table, spec, ts_col, now, reasons)
    source = _column(table, label_col, name, "label")
    if spec.task == "multiclass":
        labels, malformed = to_string(source)
        empty = pc.fill_null(pc.utf8_length(labels), 0).to_numpy() == 0
        reasons.flag(
            _null_mask(source) | empty, f"model {name!r}: column {_name(label_col)}: missing label"
        )
        reasons.flag(malformed, f"model {name!r}: column {_name(label_col)}: malformed label")
        if spec.classes is not None:
            unknown = ~pc.is_in(labels, value_set=pa.array(list(spec.classes))).to_numpy(
                zero_copy_only=False
            )
            reasons.flag(
                unknown,
                f"model {name!r}: column {_name(label_col)}: label is not one of the declared classes",
            )
    else:
        if spec.task == "binary" and (
            pa.types.is_string(source.type) or pa.types.is_large_string(source.type)
        ):
            lowered = pc.utf8_lower(pc.utf8_trim_whitespace(source))
            source = pc.replace_substring_regex(
                pc.replace_substring_regex(lowered, "^true$", "1"), "^false$", "0"
            )
        values, null, malformed = to_float(source)
        reasons.flag(null, f"model {name!r}: column {_name(label_col)}: missing label")
        reasons.flag(
            malformed | ~np.isfinite(values),
            f"model {name!r}: column {_name(label_col)}: label is not a finite number",
        )
        if spec.task == "binary":
            reasons.flag(
                (values != 0.0) & (values != 1.0),
                f"model {name!r}: column {_name(label_col)}: binary label must be 0 or 1",
            )
        labels = pa.array(values, type=pa.float64())

    good = ~reasons.bad
    quarantine = _quarantine(table, reasons, ids)
    keep = pa.array(good)
    clean = pa.table(
        {
            "__row": pa.array(np.flatnonzero(good), type=pa.int64()),
            "__id": ids.filter(keep),
            "__label": labels.filter(keep),
            "__ts": pa.array(ts[good], type=pa.int64()).cast(TIMESTAMP),
            "__seq": pa.array(np.arange(int(good.sum()), dtype=np.int64)),
        }
    )
    return CleanBatch(clean, quarantine)


__all__ = ["CATEGORICAL", "CleanBatch", "Quarantine", "validate_feedback", "validate_predictions"]
