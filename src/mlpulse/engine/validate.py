"""Vectorised validation of incoming batches.

A batch becomes a clean Arrow table in the raw table's layout plus a list of quarantined
rows, each with a reason. Row-level problems never raise: the row is quarantined (missing or
malformed id, timestamp, prediction or label) or, for a feature value of the wrong type,
stored as null and counted as a type violation. Only problems with the batch as a whole
(a missing id column, say) raise :class:`~mlpulse.errors.SchemaError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._time import MINUTE
from ..errors import SchemaError
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
            integral = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
            text = np.where(
                integral, values.astype("int64", copy=False).astype(str), values.astype(str)
            )
            strings = pa.array(text, type=pa.string(), mask=_null_mask(array))
        else:
            strings = pc.cast(array, pa.string())
            if isinstance(strings, pa.ChunkedArray):
                strings = strings.combine_chunks()
        return strings, np.zeros(len(array), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        null = _null_mask(array)
        return pa.nulls(len(array), pa.string()), ~null


def to_micros(array: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps as int64 microseconds (naive values are UTC); ``(micros, null, malformed)``."""
    dtype = array.type
    null = _null_mask(array)
    micros = np.zeros(len(array), dtype=np.int64)
    malformed = np.zeros(len(array), dtype=bool)
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        target = pa.timestamp("us", tz=dtype.tz) if pa.types.is_timestamp(dtype) else TIMESTAMP
        cast = pc.cast(array, target, safe=False)
        micros = (
            pc.fill_null(cast.cast(pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        )
    elif pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        seconds = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        malformed = ~np.isfinite(seconds) & ~null
        micros = np.where(np.isfinite(seconds), np.round(np.nan_to_num(seconds) * 1e6), 0).astype(
            np.int64
        )
    elif pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        texts = pd.Series(array.to_numpy(zero_copy_only=False), dtype=object)
        parsed = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
        micros = (
            parsed.dt.tz_convert("UTC")
            .dt.tz_localize(None)
            .astype("datetime64[us]")
            .to_numpy()
            .astype("int64")
        )
        # text holding a number is seconds since the epoch, like a numeric column
        seconds = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        numeric = np.isfinite(seconds) & parsed.isna().to_numpy()
        micros = np.where(numeric, np.round(np.nan_to_num(seconds) * 1e6), micros).astype(np.int64)
        unparsed = parsed.isna().to_numpy() & ~numeric
        malformed = unparsed & ~null
        micros = np.where(unparsed, 0, micros)
    else:
        malformed = ~null
    return micros, null, malformed


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
    micros, null, malformed = to_micros(_column(table, ts_col, spec.name, "timestamp"))
    reasons.flag(null, f"model {spec.name!r}: column {_name(ts_col)}: missing timestamp")
    reasons.flag(malformed, f"model {spec.name!r}: column {_name(ts_col)}: malformed timestamp")
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
    for column, kind in kinds.items():
        if column not in table.column_names:
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
