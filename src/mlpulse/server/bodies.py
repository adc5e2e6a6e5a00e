"""Request bodies: read within limits, decompress, and turn into Arrow tables.

Ingest bodies come as JSON (``{"rows": [{...}, ...]}``), NDJSON (one object per line) or
Arrow IPC (stream or file format, the fast path); reference data as Arrow IPC or Parquet.
Every failure is an :class:`~mlpulse.server.errors.ApiError` with the right 4xx status,
raised before anything is stored.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .._arrow import rows_to_table
from .errors import ApiError
from .schemas import check_name

JSON = "application/json"
NDJSON = "application/x-ndjson"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"

NDJSON_ALIASES = {NDJSON, "application/jsonl", "application/jsonlines", "application/ndjson"}
PARQUET_ALIASES = {PARQUET, "application/x-parquet"}
INGEST_TYPES = (JSON, NDJSON, ARROW_STREAM, ARROW_FILE)
REFERENCE_TYPES = (ARROW_STREAM, ARROW_FILE, PARQUET)


@dataclass(frozen=True)
class Limits:
    """Per-request limits (see ``ServerConfig``)."""

    max_body_bytes: int
    max_rows: int
    max_features: int
    max_string_length: int


def media_type(content_type: str | None) -> str:
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in NDJSON_ALIASES:
        return NDJSON
    if base in PARQUET_ALIASES:
        return PARQUET
    return base


async def read_body(request: Any, limits: Limits) -> bytes:
    """The request body, decompressed (``Content-Encoding: gzip``), at most
    ``max_body_bytes`` before and after decompression (413 beyond)."""
    return decode_body(*await read_encoded(request, limits), limits)


async def read_encoded(request: Any, limits: Limits) -> tuple[bytes, str]:
    """The request body as sent and its content encoding (checked: 415 for one other than
    gzip), for :func:`decode_body` to decompress off the event loop: inflating a batch takes
    tens of milliseconds, which on the event loop would stall every other request."""
    limit = limits.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, f"invalid Content-Length {declared!r}") from None
        if size > limit:
            raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body, "identity"
    if encoding not in ("gzip", "x-gzip"):
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    return body, "gzip"


def decode_body(body: bytes, encoding: str, limits: Limits) -> bytes:
    """A body from :func:`read_encoded`, decompressed within ``max_body_bytes`` (zlib
    releases the GIL while it inflates, so a worker thread does this alongside queries)."""
    return body if encoding == "identity" else gunzip(body, limits.max_body_bytes)


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress gzip without ever holding more than ``limit`` bytes (no zip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise _too_large(limit, " after decompression")
        out += inflater.flush()
    except zlib.error as exc:
        raise ApiError(400, f"the body is not valid gzip: {exc}") from None
    if not inflater.eof:
        raise ApiError(400, "the gzip body is truncated")
    if len(out) > limit:
        raise _too_large(limit, " after decompression")
    return out


def _too_large(limit: int, what: str = "") -> ApiError:
    return ApiError(413, f"the body is larger than {limit} bytes{what} (max_body_bytes)")


# -- parsing --------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; send null for a missing value")


def loads(text: str) -> Any:
    """Strict JSON: no NaN or Infinity (numbers that overflow to infinity are caught per
    column afterwards, see :func:`_reject_overflow`, which is much faster than a hook).
    Nesting deeper than the interpreter's recursion limit is a 400, not a crash."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(
            400,
            "the JSON is nested too deeply; rows are objects of plain values "
            '(numbers, strings, booleans or null): {"rows": [{...}, ...]}',
            "invalid_json",
        ) from None


def _reject_overflow(table: pa.Table) -> None:
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_floating(column.type) and pc.any(pc.is_inf(column)).as_py():
            row = pc.index(pc.is_inf(column), True).as_py()
            raise ApiError(
                400,
                f"column {name!r}, row {row}: the number is out of range for a 64-bit float",
                "invalid_json",
                errors=[
                    {
                        "loc": ["body", "rows", row, name],
                        "msg": "out of range",
                        "type": "float_overflow",
                    }
                ],
            )


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, f"the body is not valid UTF-8 (byte {exc.start})", "invalid_utf8"
        ) from None


def _rows_table(rows: list[Any], where: list[str | int], limits: Limits) -> pa.Table:
    if len(rows) > limits.max_rows:
        raise _too_many_rows(len(rows), limits)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ApiError(
                422,
                f"row {i} must be a JSON object, not {type(row).__name__}",
                errors=[{"loc": [*where, i], "msg": "expected an object", "type": "object_type"}],
            )
        if len(row) > limits.max_features + 8:
            raise _too_many_columns(len(row), limits, [*where, i])
    if not rows:
        return pa.table({})
    table = _to_table(rows)
    _reject_overflow(table)
    return table


def _to_table(rows: list[dict[str, Any]]) -> pa.Table:
    try:  # every key of every row, not only the first row's
        return rows_to_table(rows)
    except UnicodeEncodeError:
        raise ApiError(
            400, "the body holds an invalid Unicode escape (a lone surrogate)", "invalid_unicode"
        ) from None


def parse_table(body: bytes, kind: str, limits: Limits, *, accept: tuple[str, ...]) -> pa.Table:
    """Turn a body of media type ``kind`` into a checked Arrow table."""
    if kind not in accept:
        raise ApiError(
            415,
            f"unsupported Content-Type {kind or 'none'!r}; send one of: {', '.join(accept)}",
        )
    if kind == JSON:
        try:
            data = loads(_decode(body))
        except ValueError as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}", "invalid_json") from None
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise ApiError(
                422,
                'the body must be a JSON object with a "rows" list: {"rows": [{...}, ...]}',
                errors=[
                    {
                        "loc": ["body", "rows"],
                        "msg": "field required: a list of objects",
                        "type": "missing",
                    }
                ],
            )
        table = _rows_table(data["rows"], ["body", "rows"], limits)
    elif kind == NDJSON:
        text = _decode(body)
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(loads(line))
            except ValueError as exc:
                raise ApiError(
                    400, f"line {number} is not valid JSON: {exc}", "invalid_json"
                ) from None
            if len(rows) > limits.max_rows:
                raise _too_many_rows(len(rows), limits)
        table = _rows_table(rows, ["body", "line"], limits)
    elif kind in (ARROW_STREAM, ARROW_FILE):
        try:
            if kind == ARROW_STREAM:
                table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
            else:
                table = pa.ipc.open_file(pa.BufferReader(body)).read_all()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ApiError(
                400,
                f"the body is not a valid Arrow IPC {kind.rsplit('.', 1)[1]}: {exc}",
                "invalid_arrow",
            ) from None
    else:  # Parquet
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(pa.BufferReader(body))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ApiError(
                400, f"the body is not a valid Parquet file: {exc}", "invalid_parquet"
            ) from None
    check_table(table, limits)
    return table


def _too_many_rows(n: int, limits: Limits) -> ApiError:
    return ApiError(
        413, f"{n} rows in one request; the limit is {limits.max_rows} (max_rows): split the batch"
    )


def _too_many_columns(n: int, limits: Limits, loc: list[str | int]) -> ApiError:
    return ApiError(
        422,
        f"{n} columns; the limit is {limits.max_features} features per row (max_features)",
        errors=[{"loc": loc, "msg": "too many features", "type": "too_many_features"}],
    )


_RESERVED_EXTRA = 8  # id, timestamp, prediction, label, latency_ms, trace_id, ...


def _allowed(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        return _allowed(dtype.value_type)
    return (
        pa.types.is_null(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_timestamp(dtype)
        or pa.types.is_date(dtype)
    )


def _short(dtype: pa.DataType, limit: int = 80) -> str:
    """A type for messages; a deeply nested one is cut short."""
    text = str(dtype)
    return text if len(text) <= limit else text[:limit] + "..."


def check_table(table: pa.Table, limits: Limits) -> None:
    """Rows, columns, column types, UTF-8 validity and string lengths within limits."""
    if table.num_rows > limits.max_rows:
        raise _too_many_rows(table.num_rows, limits)
    if table.num_columns > limits.max_features + _RESERVED_EXTRA:
        raise _too_many_columns(table.num_columns, limits, ["body"])
    names = table.column_names
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ApiError(
            422,
            f"duplicate column names: {dup}",
            errors=[
                {"loc": ["body", d], "msg": "duplicate column", "type": "duplicate"} for d in dup
            ],
        )
    for name in names:
        try:
            check_name(name)
        except ValueError as exc:
            raise ApiError(
                422,
                f"column name {name[:40]!r}: {exc}",
                errors=[{"loc": ["body", name[:40]], "msg": str(exc), "type": "column_name"}],
            ) from None
    try:
        table.validate(full=True)  # e.g. invalid UTF-8 inside an Arrow string column
    except pa.ArrowInvalid as exc:
        raise ApiError(400, f"the table is malformed: {exc}", "invalid_arrow") from None
    for name, column in zip(names, table.columns, strict=True):
        dtype = column.type
        if not _allowed(dtype):
            raise ApiError(
                422,
                f"column {name!r}: type {_short(dtype)} is not supported; send numbers, "
                "strings, booleans or timestamps (nested objects and lists are not features)",
                errors=[
                    {
                        "loc": ["body", name],
                        "msg": f"unsupported type {_short(dtype)}",
                        "type": "type",
                    }
                ],
            )
        values = column
        if pa.types.is_dictionary(dtype):
            values = pa.chunked_array([c.dictionary for c in column.chunks], dtype.value_type)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            if len(values) == 0:
                continue
            lengths = pc.utf8_length(values)
            longest = pc.max(lengths).as_py()
            if longest is not None and longest > limits.max_string_length:
                row = pc.index(pc.greater(lengths, limits.max_string_length), True).as_py()
                raise ApiError(
                    422,
                    f"column {name!r}, row {row}: a string of {longest} characters; the limit "
                    f"is {limits.max_string_length} (max_string_length)",
                    errors=[
                        {
                            "loc": ["body", "rows", row, name],
                            "msg": "string too long",
                            "type": "string_too_long",
                        }
                    ],
                )


def decode_kinds_error(exc: Exception) -> ApiError:
    return ApiError(422, f"cannot convert the batch: {exc}", "conversion_error")


__all__ = [
    "ARROW_FILE",
    "ARROW_STREAM",
    "INGEST_TYPES",
    "JSON",
    "NDJSON",
    "PARQUET",
    "REFERENCE_TYPES",
    "Limits",
    "check_table",
    "decode_body",
    "gunzip",
    "loads",
    "media_type",
    "parse_table",
    "read_body",
    "read_encoded",
]
