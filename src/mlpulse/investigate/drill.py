"""Drill-down: the raw rows behind a number, page by page.

``Model.rows(start, end, where=..., ids=..., limit=...)`` returns stored predictions with
event time in ``[start, end)``, ordered by (timestamp, id, version): id, version, timestamp,
the prediction and label columns (under the model's names), label_timestamp, latency_ms,
trace_id, then the features. ``where`` maps a column (a feature, the prediction or label
column, ``trace_id``) to a value, a list of values (any of them) or None (missing); values
are SQL parameters and column names quoted identifiers. ``include_quarantined=True`` appends
the quarantined prediction rows *received* in the window (their event time may be what was
wrong) with ``quarantine_reason`` and the row as sent in ``payload`` (``where`` matches the
payload's fields).

``frame.attrs["next"]`` is an opaque cursor (None at the end): pass it back as ``cursor=``
for the rows after the last one (keyset pagination over stored rows, then an offset over
quarantined ones).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from ..errors import ConfigError
from ..schema import NUMERIC, ModelSpec, shown
from ..store.rows import SYSTEM_COLUMNS, quarantined_rows, stored_rows

if TYPE_CHECKING:
    from ..engine.scope import Scope
    from ..store.database import Store

#: Most rows one call returns (the HTTP API pages at :data:`PAGE_ROWS`).
MAX_ROWS = 100_000
PAGE_ROWS = 1_000
#: Most ids one call may name.
MAX_IDS = 10_000


def _text(spec: ModelSpec, what: str, value: Any) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"model {spec.name!r}: {what}: {shown(value)} is not valid Unicode"
        ) from None
    return value


def where_columns(spec: ModelSpec) -> dict[str, tuple[str, bool]]:
    """User column name -> (raw column, numeric) for ``where=``."""
    numeric_outputs = spec.task != "multiclass"
    out = {c: (c, kind == NUMERIC) for c, kind in spec.features.items()}
    out[spec.prediction] = ("__prediction", numeric_outputs)
    out[spec.label] = ("__label", numeric_outputs)
    out["trace_id"] = ("__trace_id", False)
    return out


def _value(spec: ModelSpec, column: str, numeric: bool, value: Any) -> Any:
    if value is None:
        return None
    if numeric:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(
                f"model {spec.name!r}: where: column {shown(column)} is numeric; {value!r} is not a finite number"
            )
        return float(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(
            f"model {spec.name!r}: where: column {shown(column)} holds text; {value!r} is not a string"
        )
    return _text(spec, f"where: column {shown(column)}", str(value))


def parse_where(spec: ModelSpec, where: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``where`` as (raw column -> value) for stored rows and (user column -> value) for
    quarantined payloads; unknown columns and ill-typed values raise ConfigError."""
    if where is None:
        return {}, {}
    if not isinstance(where, dict):
        raise ConfigError(
            f"model {spec.name!r}: where must be a mapping column -> value, not {where!r}"
        )
    known = where_columns(spec)
    raw: dict[str, Any] = {}
    user: dict[str, Any] = {}
    for column, value in where.items():
        if not isinstance(column, str) or column not in known:
            raise ConfigError(
                f"model {spec.name!r}: where: no column {shown(column)}; columns: "
                f"{', '.join(map(repr, known))}"
            )
        name, numeric = known[column]
        if isinstance(value, list | tuple):
            if len(value) > MAX_IDS:
                raise ConfigError(
                    f"model {spec.name!r}: where: at most {MAX_IDS:,} values per column"
                )
            parsed: Any = [_value(spec, column, numeric, v) for v in value]
        else:
            parsed = _value(spec, column, numeric, value)
        raw[name] = parsed
        user[column] = parsed
    return raw, user


def parse_ids(spec: ModelSpec, ids: Any) -> list[str] | None:
    if ids is None:
        return None
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids):
        raise ConfigError(f"model {spec.name!r}: ids must be a list of strings")
    if len(ids) > MAX_IDS:
        raise ConfigError(f"model {spec.name!r}: ids: at most {MAX_IDS:,} per call")
    return [_text(spec, "ids", i) for i in ids]


def encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_cursor(spec: ModelSpec, cursor: Any) -> dict[str, Any]:
    problem = (
        f"model {spec.name!r}: cursor {shown(cursor)} is not a cursor from frame.attrs['next']"
    )
    if cursor is None:
        return {"p": "raw"}
    if not isinstance(cursor, str) or len(cursor) > 4096:
        raise ConfigError(problem)
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise ConfigError(problem) from None
    ok = isinstance(state, dict) and (
        (state.get("p") == "raw" and isinstance(state.get("at"), int) and isinstance(state.get("id"), str)
         and isinstance(state.get("v"), str))
        or (state.get("p") == "q" and isinstance(state.get("o"), int) and state["o"] >= 0)
    )  # fmt: skip
    if not ok:
        raise ConfigError(problem)
    return state


def _columns(spec: ModelSpec, include_quarantined: bool) -> dict[str, str]:
    """Raw column -> shown name, in the frame's order (a feature whose name a system column
    has is shown as ``"<name> (feature)"``)."""
    shown_names = {
        "__id": "id", "__version": "version", "__ts": "timestamp",
        "__prediction": spec.prediction, "__label": spec.label,
        "__label_ts": SYSTEM_COLUMNS["__label_ts"], "__latency_ms": "latency_ms",
        "__trace_id": "trace_id",
    }  # fmt: skip
    taken = set(shown_names.values()) | (
        {"quarantine_reason", "payload"} if include_quarantined else set()
    )
    for feature in spec.features:
        shown_names[feature] = f"{feature} (feature)" if feature in taken else feature
    return shown_names


def _frame(table: pa.Table, names: dict[str, str]) -> pd.DataFrame:
    data = {}
    for raw, name in names.items():
        if raw in table.column_names:
            data[name] = table.column(raw).to_pandas()
        else:  # a feature never logged in this table's life
            data[name] = pd.Series([None] * table.num_rows, dtype=object)
    frame = pd.DataFrame(data, index=pd.RangeIndex(table.num_rows))
    for column in ("timestamp", SYSTEM_COLUMNS["__label_ts"]):
        frame[column] = pd.to_datetime(frame[column]).dt.tz_localize("UTC")
    return frame


def drill_rows(
    store: Store,
    scope: Scope,
    where: Any,
    ids: Any,
    limit: Any,
    *,
    include_quarantined: bool = False,
    cursor: Any = None,
) -> pd.DataFrame:
    """One page of at most ``limit`` rows (module docstring)."""
    spec = scope.spec
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
        raise ConfigError(
            f"model {spec.name!r}: limit must be an integer in 1..{MAX_ROWS:,}, got {limit!r}"
        )
    if not isinstance(include_quarantined, bool):
        raise ConfigError(f"model {spec.name!r}: include_quarantined must be True or False")
    raw_where, user_where = parse_where(spec, where)
    id_list = parse_ids(spec, ids)
    state = decode_cursor(spec, cursor)
    lo, hi = scope.span
    names = _columns(spec, include_quarantined)
    stored_frame: pd.DataFrame | None = None
    quarantine_frame: pd.DataFrame | None = None
    next_state: dict[str, Any] | None = None
    remaining = limit
    if state["p"] == "raw":
        after = (state["at"], state["id"], state["v"]) if "at" in state else None
        table = stored_rows(
            store, spec, lo, hi, scope.versions, raw_where, id_list, limit + 1, after
        )
        page = table.slice(0, limit)
        stored_frame = _frame(page, names)
        remaining -= page.num_rows
        if table.num_rows > limit:
            last = page.slice(page.num_rows - 1, 1).to_pylist()[0]
            next_state = {
                "p": "raw",
                "at": int(last["__at"]),
                "id": last["__id"],
                "v": last["__version"],
            }
        offset = 0
    else:
        offset = state["o"]
    if include_quarantined and next_state is None:
        q = quarantined_rows(
            store, spec, lo, hi, scope.versions, user_where, id_list, remaining + 1, offset
        )
        taken = q.slice(0, remaining)
        if q.num_rows > remaining:
            next_state = {"p": "q", "o": offset + remaining}
        quarantine_frame = pd.DataFrame(
            {
                "id": taken.column("id").to_pandas(),
                "version": taken.column("version").to_pandas(),
                "quarantine_reason": taken.column("reason").to_pandas(),
                "payload": taken.column("payload").to_pandas(),
            }
        )
    frame = _combine(stored_frame, quarantine_frame, names, include_quarantined)
    frame.attrs = {"next": encode_cursor(next_state) if next_state else None}
    return frame


def _combine(
    stored: pd.DataFrame | None,
    quarantined: pd.DataFrame | None,
    names: dict[str, str],
    include: bool,
) -> pd.DataFrame:
    """Stored rows, then quarantined rows (their stored-row columns empty)."""
    order = list(names.values()) + (["quarantine_reason", "payload"] if include else [])
    if stored is None:
        stored = _frame(pa.table({}), names)
    if include:
        stored = stored.assign(quarantine_reason=pd.Series([None] * len(stored), dtype=object),
                               payload=pd.Series([None] * len(stored), dtype=object))  # fmt: skip
    if quarantined is None or not len(quarantined):
        return stored[order].reset_index(drop=True)
    extra = quarantined.reindex(columns=order)
    for column in order:  # the stored rows' dtypes (times stay times, numbers numbers)
        if column not in quarantined.columns:
            extra[column] = pd.Series([None] * len(extra), dtype=object).astype(
                stored[column].dtype
            )
    if not len(stored):
        return extra.reset_index(drop=True)
    return pd.concat([stored[order], extra], ignore_index=True)


def follow_pages(
    fetch: Any, limit: int, cursor: str | None = None, page: int = PAGE_ROWS
) -> pd.DataFrame:
    """Call ``fetch(limit, cursor)`` page by page until ``limit`` rows or the end (what the
    HTTP client does with the API's pages)."""
    frames = []
    remaining = limit
    next_cursor = cursor
    while True:
        frame = fetch(min(remaining, page), next_cursor)
        frames.append(frame)
        remaining -= len(frame)
        next_cursor = frame.attrs.get("next")
        if not next_cursor or remaining <= 0:
            break
    nonempty = [f for f in frames if len(f)] or frames[:1]
    out = nonempty[0] if len(nonempty) == 1 else pd.concat(nonempty, ignore_index=True)
    out.attrs = {"next": next_cursor}
    return out


__all__ = [
    "MAX_ROWS",
    "PAGE_ROWS",
    "decode_cursor",
    "drill_rows",
    "encode_cursor",
    "follow_pages",
    "parse_where",
    "where_columns",
]
